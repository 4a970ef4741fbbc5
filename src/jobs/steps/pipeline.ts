/**
 * The `pipeline` job step: `{ pipeline: NAME, files?: [...], params?: {...} }` runs
 * pipelines/NAME.yaml (src/pipeline/run.ts). Its files and rows are the run's counters, and a
 * re-run skips the files an earlier attempt committed (the ledger).
 */
import path from 'node:path';
import { z } from 'zod';
import { CancelledError, RejectPolicyError, UserError } from '../../errors.js';
import { loadPipeline } from '../../pipeline/definition.js';
import type { PipelineResult } from '../../pipeline/result.js';
import { runPipeline } from '../../pipeline/run.js';
import { failedPipelineError } from '../pipeline-error.js';
import { stepParams, type StepKind } from './types.js';

const schema = z
  .object({
    /** Run a pipeline from pipelines/. */
    pipeline: z.string(),
    /** Files replacing the pipeline's source listing (rarely needed). */
    files: z.array(z.string()).optional(),
    /** Parameters passed to the pipeline (exports use them in their query); `{name}` takes a job parameter. */
    params: stepParams,
  })
  .strict();

/** A pipeline's file as `erp run` shows it, from its result or from runner.run_files. */
export interface FileView {
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
export function pipelineLines(
  files: FileView[],
  dryRun: boolean,
  status: string,
  error?: string | null,
): string[] {
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

export const pipelineStep: StepKind<'pipeline', typeof schema, PipelineResult> = {
  kind: 'pipeline',
  role: 'load',
  schema,
  summary: 'runs a pipeline from pipelines/ (an import or an export)',
  async create(entry, { home, params }) {
    const name = entry.pipeline;
    return [
      {
        name,
        params,
        plan: async () => {
          await loadPipeline(home, name);
        },
        preflight: (checks) => checks.pipeline(name, params, entry.files ?? checks.files),
        async run(ctx) {
          const def = await loadPipeline(ctx.app.home, name);
          const result = await runPipeline(ctx.app, def, {
            runId: ctx.runId ?? undefined,
            dryRun: ctx.dryRun,
            force: ctx.force,
            files: entry.files ?? ctx.files,
            params,
            signal: ctx.signal,
            onProgress: (p) =>
              ctx.onRows(p.rowsRead, {
                file: path.basename(p.file),
                bytes: p.bytesRead,
                bytesTotal: p.bytesTotal,
              }),
          });
          ctx.onPipeline?.(result);
          if (result.status === 'cancelled') throw new CancelledError();
          if (result.status === 'failed') {
            const failed = result.files.filter((f) => f.status === 'failed');
            const message =
              failedPipelineError(name, failed) ?? `pipeline ${name}: ${result.error ?? 'failed'}`;
            // A failed pipeline's files and rejects are part of the outcome a dry run shows.
            ctx.onFailed(result, message);
            if (failed.some((f) => f.policyExceeded)) throw new RejectPolicyError(message);
            if (failed.length === 0 && result.transient) throw new Error(message);
            if (failed.length === 0 || failed.some((f) => !f.transient)) throw new UserError(message, 1);
            throw new Error(message);
          }
          return result;
        },
      },
    ];
  },
  async uses(entry, defs) {
    await defs.pipeline(entry.pipeline);
  },
  report: {
    detail: (p) => ({
      rows_read: p.rowsRead,
      rows_loaded: p.rowsLoaded,
      rows_rejected: p.rowsRejected,
      files: p.files.map((f) => ({
        file: f.file,
        status: f.status,
        rows_loaded: f.rowsLoaded,
        rows_rejected: f.rowsRejected,
      })),
    }),
    progress: (p) => ({ rows: p.rowsLoaded }),
    shown: (step, p, dryRun) => ({
      lines: pipelineLines(p.files, dryRun, step.status),
      tells: failedPipelineError(step.name, p.files),
    }),
    shownFromRecord(r) {
      if (r.status === 'skipped') return { lines: [] };
      const files = r.files
        .filter((f) => f.pipeline === r.name)
        .map((f): FileView => ({
          file: f.file,
          status: f.status,
          rowsRead: f.rows_read,
          rowsLoaded: f.rows_loaded,
          rowsRejected: f.rows_rejected,
          message: f.message,
          rejectReport: f.reject_report,
          rejects: r.rejects.filter((j) => j.file_id === f.id),
        }));
      return { lines: pipelineLines(files, false, r.status), tells: failedPipelineError(r.name, files) };
    },
    detailLines: (d) =>
      d.rows_loaded !== undefined
        ? [`     loaded ${String(d.rows_loaded)}, rejected ${String(d.rows_rejected ?? 0)}`]
        : [],
  },
};
