import type { Queue } from 'bullmq';
import type { RedisClient } from '../runner/queue.js';
import type pg from 'pg';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import type { RunJobData } from '../runner/queue.js';
import { finishRun } from '../runs/history.js';
import { paramStrings, resolveRunnable } from './definition.js';
import { jobIdOf } from './job-id.js';
import { LIVENESS_LOCK_CLASS } from './session.js';
import { enqueueRun } from './submit.js';

/**
 * PostgreSQL is the source of truth for runs; Redis only carries them. The reconciler, run by every
 * worker and scheduler on start and every ERP_RECONCILE_MS, repairs what an outage or a crash left:
 *
 *   runner.runs 'running', owner's liveness lock gone ──► queued again (a queued run) or failed (an inline run)
 *   runner.runs 'queued', no BullMQ job in Redis      ──► enqueued again (Redis restarted empty, an enqueue lost)
 *   runner.runs 'queued', BullMQ job failed            ──► failed (BullMQ gave up: it stalled too often)
 *
 * Every step is idempotent (a run's BullMQ job id is derived from its id), so several reconcilers
 * running at once do no harm.
 */

/** The trigger of a run executed by `erp run --inline`: no BullMQ job carries it. */
export const INLINE_TRIGGER = 'cli --inline';

/** A queued run younger than this may still be on its way to Redis (created, not enqueued yet). */
const ENQUEUE_GRACE = '5 seconds';

export interface ReconcileContext {
  pool: pg.Pool;
  home: string;
  log: Logger;
  queue: Queue<RunJobData>;
  /** The queue's Redis connection. */
  redis: RedisClient;
}

export interface ReconcileResult {
  /** Running runs whose process was gone: queued again, or failed for inline runs. */
  abandoned: number[];
  /** Queued runs missing from Redis, enqueued again. */
  requeued: number[];
  /** Queued runs whose BullMQ job had failed, marked failed. */
  failed: number[];
}

const ABANDONED_QUEUED =
  'abandoned: the process running it stopped without finishing (its open transaction was rolled back); queued again';
const ABANDONED_INLINE =
  'abandoned: the process running it stopped without finishing (its open transaction was rolled back)';

/** One pass of the reconciler. */
export async function reconcileRuns(ctx: ReconcileContext): Promise<ReconcileResult> {
  const result: ReconcileResult = { abandoned: [], requeued: [], failed: [] };
  const { rows: abandoned } = await ctx.pool.query<{ id: number; status: string }>(
    `WITH dead AS (
       UPDATE runner.runs AS runs
       SET status = CASE WHEN trigger = $3 THEN 'failed' ELSE 'queued' END,
           finished_at = CASE WHEN trigger = $3 THEN now() END,
           error_kind = CASE WHEN trigger = $3 THEN 'infra' END,
           error = CASE WHEN trigger = $3 THEN $4 ELSE $5 END
       WHERE status = 'running' AND liveness_key IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
           AND classid = $1::int::oid AND objid = runs.liveness_key::oid AND objsubid = 2)
       RETURNING id, status),
     steps AS (
       UPDATE runner.run_steps SET status = 'failed', finished_at = now(), error = $2
       WHERE status = 'running' AND run_id IN (SELECT id FROM dead))
     SELECT id::int, status FROM dead`,
    [LIVENESS_LOCK_CLASS, ABANDONED_INLINE, INLINE_TRIGGER, ABANDONED_INLINE, ABANDONED_QUEUED],
  );
  for (const r of abandoned) {
    result.abandoned.push(r.id);
    ctx.log.warn(
      { runId: r.id, status: r.status },
      `run ${r.id} was abandoned by its process; now ${r.status}`,
    );
  }

  // An inline run is claimed the moment it is created; one still queued after a minute lost its process.
  await ctx.pool.query(
    `UPDATE runner.runs SET status = 'failed', finished_at = now(), error_kind = 'infra', error = $2
     WHERE status = 'queued' AND trigger = $1 AND created_at < now() - interval '1 minute'`,
    [INLINE_TRIGGER, ABANDONED_INLINE],
  );

  const { rows: queued } = await ctx.pool.query<{
    id: number;
    name: string;
    params: Record<string, unknown>;
    options: { force?: boolean; files?: string[] };
  }>(
    `SELECT id::int, name, params, options FROM runner.runs
     WHERE status = 'queued' AND trigger <> $1 AND NOT dry_run AND created_at < now() - $2::interval
     ORDER BY id`,
    [INLINE_TRIGGER, ENQUEUE_GRACE],
  );
  if (queued.length === 0) return result;
  const pipe = ctx.redis.pipeline();
  for (const r of queued) {
    pipe.exists(ctx.queue.toKey(jobIdOf(r.id)));
    pipe.zscore(ctx.queue.keys.failed!, jobIdOf(r.id));
  }
  const answers = (await pipe.exec()) ?? [];
  for (let i = 0; i < queued.length; i++) {
    const run = queued[i]!;
    const [existsErr, exists] = answers[2 * i] ?? [null, 0];
    const [, failedAt] = answers[2 * i + 1] ?? [null, null];
    if (existsErr) throw existsErr;
    if (exists && failedAt !== null) {
      const job = await ctx.queue.getJob(jobIdOf(run.id));
      const why = `BullMQ gave up on it: ${job?.failedReason ?? 'failed'}`;
      const { rowCount } = await ctx.pool.query(
        `UPDATE runner.runs SET status = 'failed', finished_at = now(), error_kind = 'infra', error = $2
         WHERE id = $1 AND status = 'queued'`,
        [run.id, why],
      );
      if (rowCount) {
        result.failed.push(run.id);
        ctx.log.warn({ runId: run.id }, `run ${run.id} failed: ${why}`);
      }
      continue;
    }
    if (exists) continue;
    try {
      const runnable = await resolveRunnable(ctx.home, run.name);
      await enqueueRun(ctx.queue, run.id, runnable, paramStrings(run.params), run.options);
      result.requeued.push(run.id);
      ctx.log.warn(
        { runId: run.id },
        `run ${run.id} was queued in PostgreSQL but missing from Redis; queued again`,
      );
    } catch (err) {
      // Its definition is gone or broken: nothing can run it.
      await finishRun(ctx.pool, run.id, 'failed', `could not queue it again: ${describeError(err)}`, 'user');
      result.failed.push(run.id);
    }
  }
  return result;
}

/** Runs the reconciler now and every `intervalMs`; a failed pass (an outage) is logged and retried next time. */
export function startReconciler(
  ctx: ReconcileContext,
  intervalMs: number,
): { first: Promise<void>; stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const pass = (): Promise<void> => {
    running = reconcileRuns(ctx).then(
      () => undefined,
      (err: unknown) =>
        ctx.log.warn({ err: describeError(err) }, 'run reconciliation failed; retrying later'),
    );
    return running;
  };
  const first = pass();
  let busy = false;
  const timer = setInterval(() => {
    if (stopped || busy) return;
    busy = true;
    void pass().finally(() => (busy = false));
  }, intervalMs);
  timer.unref();
  return {
    first,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
