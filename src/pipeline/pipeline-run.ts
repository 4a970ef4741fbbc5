import { createRun } from '../runs/history.js';
import type { PipelineDefinition } from './definition.js';
import type { AppContext, RunPipelineOptions } from './run.js';

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
