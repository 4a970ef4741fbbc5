import type { RunOutcome } from '../jobs/execute.js';
import type { PipelineResult } from '../pipeline/run.js';
import type { RunDetail, RunRow } from '../runs/history.js';

/**
 * Plain-text rendering of results for operators. Everything here returns strings; the CLI decides
 * where they go.
 */

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

export function formatPipelineResult(r: PipelineResult): string {
  const out: string[] = [];
  const title = r.dryRun
    ? `${r.pipeline} (dry run: nothing written)`
    : `${r.pipeline}${r.runId !== null ? ` run ${r.runId}` : ''}`;
  out.push(title);
  if (r.files.length === 0) out.push('  no input files');
  for (const f of r.files) {
    out.push(
      `  ${f.file}: ${f.status} — read ${f.rowsRead}, ${r.dryRun ? 'valid' : 'loaded'} ${r.dryRun ? f.rowsRead - f.rowsRejected : f.rowsLoaded}, rejected ${f.rowsRejected}`,
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
  out.push(
    `${r.status}: read ${r.rowsRead}, loaded ${r.rowsLoaded}, rejected ${r.rowsRejected}${r.error && r.files.length === 0 ? ` — ${r.error}` : ''}`,
  );
  return out.join('\n');
}

const time = (d: Date | null): string => (d ? d.toISOString().replace('T', ' ').slice(0, 19) : '');

export function formatRuns(rows: RunRow[]): string {
  if (rows.length === 0) return 'no runs yet';
  return table(
    ['ID', 'NAME', 'KIND', 'STATUS', 'STARTED (UTC)', 'SECONDS', 'READ', 'LOADED', 'REJECTED', 'BY'],
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
    ]),
  );
}

export function formatRunDetail(d: RunDetail): string {
  const r = d.run;
  const out = [
    `run ${r.id}: ${r.kind} ${r.name} — ${r.status}${r.dry_run ? ' (dry run)' : ''}`,
    `  requested by ${r.requested_by} on ${r.host} (${r.trigger}) at ${time(r.created_at)}`,
    `  parameters: ${JSON.stringify(r.params)}`,
    `  started ${time(r.started_at)}, finished ${time(r.finished_at)}`,
    `  rows read ${r.rows_read}, loaded ${r.rows_loaded}, rejected ${r.rows_rejected}; files loaded ${r.files_loaded}, skipped ${r.files_skipped}`,
  ];
  if (r.error) out.push(`  error: ${r.error}`);
  if (d.steps.length > 0) {
    out.push('steps:');
    for (const s of d.steps) {
      out.push(`  ${s.position}. ${s.kind} ${s.name}: ${s.status}${s.error ? ` — ${s.error}` : ''}`);
      const detail = s.detail as {
        rows_loaded?: number;
        rows_rejected?: number;
        summary?: string;
        results?: { columns: string[]; rows: Record<string, unknown>[] }[];
      };
      if (detail.rows_loaded !== undefined) {
        out.push(`     loaded ${detail.rows_loaded}, rejected ${detail.rows_rejected ?? 0}`);
      }
      if (detail.summary) out.push(`     ${detail.summary}`);
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
    for (const j of d.rejects)
      out.push(`  ${j.file} line ${j.line ?? '?'}${j.field ? `, ${j.field}` : ''}: ${j.reason}`);
  }
  return out.join('\n');
}

/** A run executed in this process (`--inline`, `--dry-run`): each step's result. */
export function formatOutcome(name: string, params: Record<string, string>, o: RunOutcome): string {
  const shown = Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const out = [
    `${name}${shown ? ` ${shown}` : ''}${o.runId !== null ? ` (run ${o.runId})` : ' (dry run: nothing written)'}`,
  ];
  for (const s of o.steps) {
    if (s.pipeline) out.push(formatPipelineResult(s.pipeline).split('\n').slice(1).join('\n'));
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
  out.push(o.status === 'succeeded' ? 'succeeded' : `${o.status}: ${o.error ?? ''}`);
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
