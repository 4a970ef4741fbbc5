import { createRun } from '../runs/store/runs.js';
import type { PipelineDefinition } from './definition.js';
import type { AppContext } from '../app.js';

/** How a pipeline runs: `erp run`'s options, or a job step's. */
export interface RunPipelineOptions {
  /** Files replacing the source's listing (`--file`). */
  files?: string[];
  /** Parse, validate and transform everything; write nothing. */
  dryRun?: boolean;
  /** Load a file even if its content was loaded before. */
  force?: boolean;
  signal?: AbortSignal;
  requestedBy?: string;
  trigger?: string;
  params?: Record<string, unknown>;
  /** An existing run (a job's) to attach the files to; otherwise a run is created. */
  runId?: number;
  onProgress?: (p: Progress) => void;
  /**
   * Records that validate unchanged go to COPY as the text they came in, when the format and the
   * steps allow it (see streamRows in run.ts). @defaultValue true; false sends every row through
   * the general encoder (tests and benchmarks compare the two).
   */
  passThrough?: boolean;
}

export interface Progress {
  file: string;
  fileIndex: number;
  bytesRead: number;
  bytesTotal: number;
  rowsRead: number;
}

/**
 * The run a pipeline's files are recorded under: the job's run when it runs as a job step, a run
 * of its own otherwise, none for a dry run (which records nothing).
 */
export async function pipelineRun(
  app: AppContext,
  def: PipelineDefinition,
  opts: RunPipelineOptions,
): Promise<{ runId: number | null; ownRun: boolean }> {
  if (opts.runId !== undefined) return { runId: opts.runId, ownRun: false };
  if (opts.dryRun) return { runId: null, ownRun: false };
  const runId = await createRun(app.pool, {
    kind: 'pipeline',
    name: def.name,
    params: {
      ...(opts.params ?? {}),
      ...(opts.files ? { files: opts.files } : {}),
      ...(opts.force ? { force: true } : {}),
    },
    requestedBy: opts.requestedBy,
    trigger: opts.trigger,
  });
  return { runId, ownRun: true };
}
