import type { Queue } from 'bullmq';
import type pg from 'pg';
import { describeError, UserError } from '../errors.js';
import { requestCancel } from '../jobs/cancel.js';
import { paramStrings, resolveParams, resolveRunnable, type Runnable } from '../jobs/definition.js';
import { createQueuedRun, enqueueRun } from '../jobs/submit.js';
import type { RunJobData } from '../runner/queue.js';
import { finishRun } from '../runs/history.js';
import { recordAction } from './actions.js';

/**
 * What an operator does from the console: cancel, rerun, reload a file, trigger a schedule's job.
 * Each calls the functions `erp cancel` and `erp run` call, and is recorded by recordAction.
 */

/** Who acts, from where, and the queue new runs go on (null when Redis is not configured or down). */
export interface Actor {
  pool: pg.Pool;
  home: string;
  queue: Queue<RunJobData> | null;
  user: string;
  address: string;
}

/** Queues a run like `erp run`: recorded (lock taken) first, then put on the queue. */
async function submit(
  a: Actor,
  runnable: Runnable,
  params: Record<string, string>,
  opts: { force?: boolean; files?: string[]; trigger: string },
): Promise<number> {
  if (!a.queue) throw new UserError('no queue: the console could not reach Redis, so it cannot start runs');
  const id = (await createQueuedRun(a.pool, runnable, params, { ...opts, requestedBy: a.user }))!;
  try {
    await enqueueRun(a.queue, id, runnable, params, opts);
  } catch (err) {
    await finishRun(a.pool, id, 'failed', `could not enqueue: ${describeError(err)}`, 'infra');
    throw err;
  }
  return id;
}

async function runRecord(
  pool: pg.Pool,
  id: number,
): Promise<{
  name: string;
  params: Record<string, unknown>;
  options: { force?: boolean; files?: string[] };
}> {
  const { rows } = await pool.query<{
    name: string;
    params: Record<string, unknown>;
    options: { force?: boolean; files?: string[] };
  }>('SELECT name, params, options FROM runner.runs WHERE id = $1', [id]);
  if (!rows[0]) throw new UserError(`no run ${id}`);
  return rows[0];
}

/** `erp cancel <id>`. */
export async function cancelRun(a: Actor, runId: number): Promise<string> {
  const result = await requestCancel(a.pool, runId, a.queue ?? undefined);
  await recordAction(a.pool, {
    actor: a.user,
    address: a.address,
    action: 'cancel',
    runId,
    detail: { result },
  });
  return result === 'cancelled'
    ? `run ${runId} cancelled`
    : `cancel of run ${runId} requested; its worker rolls it back`;
}

/** `erp run <name>` with the run's own parameters and options. */
export async function rerun(a: Actor, runId: number): Promise<number> {
  const r = await runRecord(a.pool, runId);
  const runnable = await resolveRunnable(a.home, r.name);
  const id = await submit(a, runnable, paramStrings(r.params), { ...r.options, trigger: 'console rerun' });
  await recordAction(a.pool, {
    actor: a.user,
    address: a.address,
    action: 'rerun',
    runId,
    newRunId: id,
    detail: { name: r.name, params: r.params },
  });
  return id;
}

/** `erp run <pipeline> --file <file> --force` for one file of a run. */
export async function reloadFile(a: Actor, runId: number, runFileId: number): Promise<number> {
  const { rows } = await a.pool.query<{ pipeline: string; file: string }>(
    'SELECT pipeline, file FROM runner.run_files WHERE id = $1 AND run_id = $2',
    [runFileId, runId],
  );
  const f = rows[0];
  if (!f) throw new UserError(`run ${runId} has no file ${runFileId}`);
  const runnable = await resolveRunnable(a.home, f.pipeline);
  const params = resolveParams(runnable.job, {});
  const id = await submit(a, runnable, params, { files: [f.file], force: true, trigger: 'console reload' });
  await recordAction(a.pool, {
    actor: a.user,
    address: a.address,
    action: 'reload',
    runId,
    newRunId: id,
    detail: { pipeline: f.pipeline, file: f.file, force: true },
  });
  return id;
}

/** `erp run <job>` now, with the job's default parameters, for a schedule. */
export async function triggerNow(a: Actor, job: string, schedule: string): Promise<number> {
  const runnable = await resolveRunnable(a.home, job);
  const params = resolveParams(runnable.job, {});
  const id = await submit(a, runnable, params, { trigger: `console trigger ${schedule}` });
  await recordAction(a.pool, {
    actor: a.user,
    address: a.address,
    action: 'trigger',
    newRunId: id,
    detail: { job, schedule, params },
  });
  return id;
}
