/**
 * Plain-text rendering of results for operators. Everything here returns strings; the CLI decides
 * where they go.
 */
import type { RunOutcome } from '../jobs/types.js';
import { pipelineLines } from '../jobs/steps/pipeline.js';
import { reportOf, stepKindOf } from '../jobs/steps/registry.js';
import { table } from '../jobs/steps/table.js';
import type { PipelineResult } from '../pipeline/result.js';
import type { RunDetail, RunRow } from '../runs/store/runs.js';

export { table };

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

/** A step as `erp run` shows it: its kind's lines (src/jobs/steps/), and the run error they tell. */
interface StepView {
  kind: string;
  name: string;
  status: string;
  lines: string[];
  /** The run's error, when these lines already say it (a failed pipeline's files). */
  tells?: string | null;
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
    out.push(...s.lines);
    if (s.status === 'skipped') out.push(`  ${s.kind} ${s.name}: skipped (done in an earlier attempt)`);
  }
  // A failed pipeline's error is its files' messages, shown above each file: said once.
  const told = v.steps.some((s) => v.error !== null && s.tells === v.error);
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
    steps: o.steps.map((s) => {
      const r = reportOf(s);
      const shown = r ? r.report.shown(s, r.result, o.runId === null) : { lines: [] };
      return { kind: s.kind, name: s.name, status: s.status, ...shown };
    }),
  };
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
      const record = {
        name: s.name,
        status: s.status,
        detail: (s.detail ?? {}) as Record<string, unknown>,
        files: d.files,
        rejects: d.rejects,
      };
      const shown = stepKindOf(s.kind)?.report.shownFromRecord(record) ?? { lines: [] };
      return { kind: s.kind, name: s.name, status: s.status, ...shown };
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
  if (d.files.length > 0 || d.steps.some((s) => stepKindOf(s.kind)?.role === 'load'))
    out.push(
      `  rows read ${r.rows_read}, loaded ${r.rows_loaded}, rejected ${r.rows_rejected}; files loaded ${r.files_loaded}, skipped ${r.files_skipped}`,
    );
  if (r.error) out.push(`  error: ${r.error}`);
  if (d.steps.length > 0) {
    out.push('steps:');
    for (const s of d.steps) {
      out.push(`  ${s.position}. ${s.kind} ${s.name}: ${s.status}${s.error ? ` — ${s.error}` : ''}`);
      out.push(
        ...(stepKindOf(s.kind)?.report.detailLines((s.detail ?? {}) as Record<string, unknown>) ?? []),
      );
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
