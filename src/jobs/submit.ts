import type pg from 'pg';
import type { Queue } from 'bullmq';
import { UserError } from '../errors.js';
import { createRun, currentUser } from '../runs/history.js';
import type { RunJobData } from '../runner/queue.js';
import { jobIdOf } from './job-id.js';
import { lockKeyOf, typedParams, type Runnable } from './definition.js';
import { LIVENESS_LOCK_CLASS } from './session.js';

/** Another run holds the lock this run needs. */
export class LockHeldError extends UserError {
  override name = 'LockHeldError';
  constructor(
    message: string,
    readonly holder: number,
  ) {
    super(message, 4);
  }
}

export interface SubmitOptions {
  requestedBy?: string;
  trigger?: string;
  /** A schedule tick's identity; a second submission of the same tick returns null. */
  scheduleTick?: string;
  force?: boolean;
  files?: string[];
  /** The SHA-256 of each definition the run uses (src/audit/definitions.ts), recorded with it. */
  definitions?: readonly unknown[];
}

/**
 * Records a queued run, taking its lock in PostgreSQL: a partial unique index on the lock key of
 * queued and running runs means a second run of the same job and scope is refused however many
 * CLIs, schedulers and machines try at once. Returns the run id, or null for a tick already submitted.
 */
export async function createQueuedRun(
  pool: pg.Pool,
  runnable: Runnable,
  params: Record<string, string>,
  opts: SubmitOptions = {},
  retried = false,
): Promise<number | null> {
  // Fail closed: a job that needs approval is queued only by erp approve (src/approvals/).
  if (runnable.job.config.approval?.required) {
    throw new UserError(
      `${runnable.name} requires approval: request it with erp run ${runnable.name} (without --inline), then another person runs erp approve <run>`,
    );
  }
  const lockKey = lockKeyOf(runnable.job, params);
  try {
    const id = await createRun(pool, {
      kind: runnable.kind,
      name: runnable.name,
      params: typedParams(runnable.job, params),
      status: 'queued',
      requestedBy: opts.requestedBy ?? currentUser(),
      trigger: opts.trigger ?? 'cli',
      lockKey,
      scheduleTick: opts.scheduleTick ?? null,
      options: { ...(opts.force ? { force: true } : {}), ...(opts.files ? { files: opts.files } : {}) },
      definitions: opts.definitions,
    });
    return id;
  } catch (err) {
    const e = err as { code?: string; constraint?: string };
    if (e.code === '23505' && e.constraint === 'runs_schedule_tick') return null;
    if (e.code === '23505' && e.constraint === 'runs_lock_held') {
      const h = await lockHolder(pool, lockKey);
      if (h && h.status === 'running' && !retried && (await abandon(pool, h.id))) {
        return createQueuedRun(pool, runnable, params, opts, true);
      }
      throw lockHeldError(runnable, params, h);
    }
    throw err;
  }
}

interface LockHolder {
  id: number;
  status: string;
  requested_by: string;
  host: string;
  created_at: Date;
}

/** The queued or running run holding a lock key, if any. */
export async function lockHolder(pool: pg.Pool, lockKey: string | null): Promise<LockHolder | undefined> {
  const { rows } = await pool.query<LockHolder>(
    `SELECT id::int, status, requested_by, host, created_at FROM runner.runs
     WHERE lock_key = $1 AND status IN ('queued', 'running') LIMIT 1`,
    [lockKey],
  );
  return rows[0];
}

/** The refusal naming the run that holds the lock, and how to wait for it or cancel it. */
export function lockHeldError(
  runnable: Runnable,
  params: Record<string, string>,
  h: LockHolder | undefined,
): LockHeldError {
  const scope =
    Object.keys(params).length > 0
      ? ` (${Object.entries(params)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')})`
      : '';
  return new LockHeldError(
    h
      ? `${runnable.name}${scope} is already ${h.status} as run ${h.id}, started by ${h.requested_by} on ${h.host} at ${h.created_at.toISOString()}; wait for it, or cancel it with erp cancel ${h.id}`
      : `${runnable.name}${scope} is already queued or running`,
    h?.id ?? 0,
  );
}

/**
 * Marks a 'running' run failed when no process executes it any more (its liveness lock is free:
 * the process running it was killed). Returns true when it did.
 */
export async function abandon(pool: pg.Pool, runId: number): Promise<boolean> {
  // Its step that was running is failed with it: nothing runs it any more.
  const { rowCount } = await pool.query(
    `WITH run AS (
       UPDATE runner.runs AS runs SET status = 'failed', finished_at = now(), error_kind = 'infra',
       error = 'abandoned: the process running it stopped without finishing (its open transaction was rolled back)'
     WHERE id = $1 AND status = 'running'
       AND (liveness_key IS NULL OR NOT EXISTS (
         SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND classid = $2::int::oid AND objid = runs.liveness_key::oid AND objsubid = 2))
       RETURNING id, error),
     steps AS (
       UPDATE runner.run_steps SET status = 'failed', finished_at = now(), error = (SELECT error FROM run)
       WHERE run_id = (SELECT id FROM run) AND status = 'running')
     SELECT id FROM run`,
    [runId, LIVENESS_LOCK_CLASS],
  );
  return (rowCount ?? 0) > 0;
}

/** Puts a recorded run on the queue; the BullMQ job id is derived from the run id, so this is idempotent. */
export async function enqueueRun(
  queue: Queue<RunJobData>,
  runId: number,
  runnable: Runnable,
  params: Record<string, string>,
  opts: Pick<SubmitOptions, 'force' | 'files'> & { resume?: boolean } = {},
): Promise<void> {
  const retries = runnable.job.config.retries;
  // A resumed run's earlier BullMQ job (failed, kept for the record) would make the add a no-op.
  if (opts.resume) await queue.remove(jobIdOf(runId));
  await queue.add(
    runnable.name,
    // The job carries what runner.runs recorded for the run, so a worker starts it without reading it back.
    {
      runId,
      name: runnable.name,
      params,
      ...(opts.force ? { force: true } : {}),
      ...(opts.files ? { files: opts.files } : {}),
      ...(opts.resume ? { resume: true } : {}),
    },
    {
      jobId: jobIdOf(runId),
      attempts: retries.attempts,
      backoff: { type: 'exponential', delay: retries.backoff },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 5000 },
    },
  );
}
