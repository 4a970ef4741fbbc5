/**
 * Plain-text rendering of results for operators. Everything here returns strings; the CLI decides
 * where they go.
 */
import type { RunOutcome } from '../jobs/types.js';
import { failedPipelineError } from '../jobs/pipeline-error.js';
import type { PipelineResult } from '../pipeline/result.js';
import type { RunDetail, RunRow } from '../runs/store/runs.js';

/** Pads columns of a text table. */
export function table(header: string[], rows: (string | number | null)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * What `erp run` shows of a run: its steps, each pipeline's files with their first rejects (values
 * in line order) and report path, each SQL step's result and each EDI step's counts. The same view
 * is built from a run's records ({@link viewOfRecords}), wherever it ran, and from a dry run's
 * outcome ({@link viewOfOutcome}), which records nothing; {@link formatRunView} writes either.
 */
export interface RunView {
  name: string;
  params: Record<string, unknown>;
  /** null for a dry run. */
  runId: number | null;
  steps: StepView[];
  status: string;
  error: string | null;
}

interface StepView {
  kind: string;
  name: string;
  status: string;
  /** A pipeline step's files. */
  files?: FileView[];
  sql?: {
    file: string;
    command: string | null;
    rowCount: number;
    dryRun: boolean;
    results: { columns: string[]; rows: Record<string, unknown>[]; rowCount: number }[];
  };
  edi?: { summary: string; lines: string[] };
  /** A `compliance: purge` step: what it removed (or would). */
  purge?: { summary: string };
}

interface FileView {
  file: string;
  status: string;
  rowsRead: number;
  rowsLoaded: number;
  rowsRejected: number;
  message: string | null;
  rejectReport: string | null;
  rejects: { line: number | null; field: string | null; value: string | null; reason: string }[];
}

/** The lines of a pipeline's files and its totals; `dryRun` counts valid rows instead of loaded ones. */
function pipelineLines(files: FileView[], dryRun: boolean, status: string, error?: string | null): string[] {
  const out: string[] = [];
  if (files.length === 0) out.push('  no input files');
  for (const f of files) {
    out.push(
      `  ${f.file}: ${f.status} — read ${f.rowsRead}, ${dryRun ? 'valid' : 'loaded'} ${dryRun ? f.rowsRead - f.rowsRejected : f.rowsLoaded}, rejected ${f.rowsRejected}`,
    );
    if (f.message) out.push(`    ${f.message}`);
    for (const j of f.rejects) {
      const where = [j.line !== null ? `line ${j.line}` : null, j.field !== null ? `field ${j.field}` : null]
        .filter(Boolean)
        .join(', ');
      const value =
        j.value === null
          ? ''
          : ` value ${JSON.stringify(j.value.length > 60 ? `${j.value.slice(0, 57)}...` : j.value)}:`;
      out.push(`    ${where}:${value} ${j.reason}`);
    }
    if (f.rowsRejected > f.rejects.length && f.rejects.length > 0) {
      out.push(`    … ${f.rowsRejected - f.rejects.length} more rejected rows`);
    }
    if (f.rejectReport) out.push(`    reject report: ${f.rejectReport}`);
  }
  const sum = (k: 'rowsRead' | 'rowsLoaded' | 'rowsRejected'): number => files.reduce((n, f) => n + f[k], 0);
  out.push(
    `${status}: read ${sum('rowsRead')}, loaded ${sum('rowsLoaded')}, rejected ${sum('rowsRejected')}${error && files.length === 0 ? ` — ${error}` : ''}`,
  );
  return out;
}

/** `erp validate`: a pipeline's dry run. */
export function formatPipelineResult(r: PipelineResult): string {
  const title = r.dryRun
    ? `${r.pipeline} (dry run: nothing written)`
    : `${r.pipeline}${r.runId !== null ? ` run ${r.runId}` : ''}`;
  return [title, ...pipelineLines(r.files, r.dryRun, r.status, r.error)].join('\n');
}

/** `name=value …` of a run's parameters. */
function paramsText(params: Record<string, unknown>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

/** A run as `erp run` shows it, whether it ran here, in a worker, or as a dry run. */
export function formatRunView(v: RunView): string {
  const shown = paramsText(v.params);
  const out = [
    `${v.name}${shown ? ` ${shown}` : ''}${v.runId !== null ? ` (run ${v.runId})` : ' (dry run: nothing written)'}`,
  ];
  for (const s of v.steps) {
    if (s.files) out.push(...pipelineLines(s.files, v.runId === null, s.status));
    if (s.sql) {
      out.push(
        `  sql ${s.sql.file}: ${s.sql.command ?? ''} ${s.sql.rowCount}${s.sql.dryRun ? ' (rolled back: dry run)' : ''}`,
      );
      for (const r of s.sql.results) {
        if (r.rows.length === 0) continue;
        out.push(tableOf(r).replace(/^/gm, '    '));
        if (r.rowCount > r.rows.length) out.push(`    … ${r.rowCount - r.rows.length} more rows`);
      }
    }
    if (s.edi) {
      out.push(`  ${s.name}: ${s.edi.summary}`);
      for (const line of s.edi.lines) out.push(`    ${line}`);
    }
    if (s.purge) out.push(`  compliance ${s.name}: ${s.purge.summary}`);
    if (s.status === 'skipped') out.push(`  ${s.kind} ${s.name}: skipped (done in an earlier attempt)`);
  }
  // A failed pipeline's error is its files' messages, shown above each file: said once.
  const told = v.steps.some(
    (s) => s.files && v.error !== null && failedPipelineError(s.name, s.files) === v.error,
  );
  out.push(
    v.status === 'succeeded'
      ? 'succeeded'
      : `${v.status}: ${told ? `${v.error!.slice(0, v.error!.indexOf(':'))} (the failed file above says why)` : (v.error ?? '')}`,
  );
  return out.join('\n');
}

/** The view of a run executed in this process without records (a dry run). */
export function viewOfOutcome(name: string, params: Record<string, unknown>, o: RunOutcome): RunView {
  return {
    name,
    params,
    runId: o.runId,
    status: o.status,
    error: o.error,
    steps: o.steps.map((s) => ({
      kind: s.kind,
      name: s.name,
      status: s.status,
      ...(s.pipeline ? { files: s.pipeline.files } : {}),
      ...(s.sql
        ? {
            sql: {
              file: s.sql.file,
              command: s.sql.command,
              rowCount: s.sql.rowCount,
              dryRun: s.sql.dryRun,
              results: s.sql.results,
            },
          }
        : {}),
      ...(s.edi ? { edi: { summary: s.edi.summary, lines: s.edi.lines } } : {}),
      ...(s.purge ? { purge: s.purge } : {}),
    })),
  };
}

/** What a step's record keeps (runner.run_steps.detail, written by detailOf). */
interface StepDetail {
  rows_loaded?: number;
  rows_rejected?: number;
  summary?: string;
  lines?: string[];
  command?: string | null;
  row_count?: number;
  results?: { columns: string[]; rows: Record<string, unknown>[]; row_count?: number }[];
  files_read?: number;
  sets_accepted?: number;
  sets_rejected?: number;
  orders_loaded?: number;
  files_sent?: number;
  documents_sent?: number;
}

/**
 * The view of a recorded run, from runner.runs, run_steps, run_files and rejects: what `erp run`
 * prints when the run ends, the same whether it ran in this process or in a worker.
 */
export function viewOfRecords(d: RunDetail): RunView {
  const r = d.run;
  return {
    name: r.name,
    params: r.params,
    runId: r.id,
    status: r.status,
    error: r.error,
    steps: d.steps.map((s) => {
      const detail = (s.detail ?? {}) as StepDetail;
      const view: StepView = { kind: s.kind, name: s.name, status: s.status };
      if (s.kind === 'pipeline' && s.status !== 'skipped')
        view.files = d.files
          .filter((f) => f.pipeline === s.name)
          .map((f) => ({
            file: f.file,
            status: f.status,
            rowsRead: f.rows_read,
            rowsLoaded: f.rows_loaded,
            rowsRejected: f.rows_rejected,
            message: f.message,
            rejectReport: f.reject_report,
            rejects: d.rejects.filter((j) => j.file_id === f.id),
          }));
      if (s.kind === 'sql' && detail.row_count !== undefined)
        view.sql = {
          file: s.name,
          command: detail.command ?? null,
          rowCount: detail.row_count,
          dryRun: false,
          results: (detail.results ?? []).map((x) => ({ ...x, rowCount: x.row_count ?? x.rows.length })),
        };
      if (s.kind === 'edi' && detail.summary !== undefined)
        view.edi = { summary: detail.summary, lines: detail.lines ?? [] };
      if (s.kind === 'compliance' && detail.summary !== undefined) view.purge = { summary: detail.summary };
      return view;
    }),
  };
}

const time = (d: Date | null): string => (d ? d.toISOString().replace('T', ' ').slice(0, 19) : '');

export function formatRuns(rows: RunRow[]): string {
  if (rows.length === 0) return 'no runs yet';
  return table(
    [
      'ID',
      'NAME',
      'KIND',
      'STATUS',
      'STARTED (UTC)',
      'SECONDS',
      'READ',
      'LOADED',
      'REJECTED',
      'BY',
      'PARAMETERS',
    ],
    rows.map((r) => [
      r.id,
      r.name,
      r.kind,
      r.status + (r.dry_run ? ' (dry)' : ''),
      time(r.started_at ?? r.created_at),
      r.finished_at && r.started_at
        ? ((r.finished_at.getTime() - r.started_at.getTime()) / 1000).toFixed(1)
        : '',
      r.rows_read,
      r.rows_loaded,
      r.rows_rejected,
      `${r.requested_by}@${r.host}`,
      paramsText(r.params),
    ]),
  );
}

/** `erp runs show`: who ran what with which parameters and options, then what `erp run` printed. */
export function formatRunDetail(d: RunDetail): string {
  const r = d.run;
  const options = [
    d.options.files ? `files ${d.options.files.join(', ')}` : null,
    d.options.force ? 'force (files loaded before are loaded again)' : null,
  ].filter(Boolean);
  const out = [
    `run ${r.id}: ${r.kind} ${r.name} — ${r.status}${r.dry_run ? ' (dry run)' : ''}`,
    `  requested by ${r.requested_by} on ${r.host} (${r.trigger}) at ${time(r.created_at)}`,
    `  parameters: ${JSON.stringify(r.params)}`,
    ...(options.length > 0 ? [`  options: ${options.join('; ')}`] : []),
    `  started ${time(r.started_at)}, finished ${time(r.finished_at)}`,
  ];
  // Rows and files are a pipeline's counts; an EDI or SQL step tells its own below.
  if (d.files.length > 0 || d.steps.some((s) => s.kind === 'pipeline'))
    out.push(
      `  rows read ${r.rows_read}, loaded ${r.rows_loaded}, rejected ${r.rows_rejected}; files loaded ${r.files_loaded}, skipped ${r.files_skipped}`,
    );
  if (r.error) out.push(`  error: ${r.error}`);
  if (d.steps.length > 0) {
    out.push('steps:');
    for (const s of d.steps) {
      out.push(`  ${s.position}. ${s.kind} ${s.name}: ${s.status}${s.error ? ` — ${s.error}` : ''}`);
      const detail = s.detail as StepDetail;
      if (detail.rows_loaded !== undefined) {
        out.push(`     loaded ${detail.rows_loaded}, rejected ${detail.rows_rejected ?? 0}`);
      }
      if (detail.row_count !== undefined)
        out.push(`     ${detail.command ?? 'rows'} ${detail.row_count} (rows affected or returned)`);
      if (detail.summary) out.push(`     ${detail.summary}`);
      if (detail.orders_loaded !== undefined)
        out.push(
          `     files read ${detail.files_read ?? 0}, transaction sets accepted ${detail.sets_accepted ?? 0}, rejected ${detail.sets_rejected ?? 0}, orders loaded ${detail.orders_loaded}`,
        );
      if (detail.documents_sent !== undefined)
        out.push(`     files sent ${detail.files_sent ?? 0}, documents sent ${detail.documents_sent}`);
      for (const r of detail.results ?? []) {
        if (r.rows.length > 0) out.push(tableOf(r).replace(/^/gm, '     '));
      }
    }
  }
  if (d.files.length > 0) {
    out.push('files:');
    for (const f of d.files) {
      out.push(
        `  ${f.file}: ${f.status} — read ${f.rows_read}, loaded ${f.rows_loaded}, rejected ${f.rows_rejected}`,
      );
      if (f.message) out.push(`    ${f.message}`);
      if (f.reject_report) out.push(`    reject report: ${f.reject_report}`);
    }
  }
  if (d.rejects.length > 0) {
    out.push('first rejects:');
    for (const j of d.rejects) {
      const value = j.value === null ? '' : ` value ${JSON.stringify(j.value)}:`;
      out.push(`  ${j.file} line ${j.line ?? '?'}${j.field ? `, ${j.field}` : ''}:${value} ${j.reason}`);
    }
  }
  return out.join('\n');
}

function tableOf(r: { columns: string[]; rows: Record<string, unknown>[] }): string {
  return table(
    r.columns,
    r.rows.map((row) => r.columns.map((c) => cellText(row[c]))),
  );
}

function cellText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
