import type pg from 'pg';
import type { Queue } from 'bullmq';
import { appendAudit } from '../audit/trail.js';
import { UserError } from '../errors.js';
import type { RunJobData } from '../runner/queue.js';
import { cancelQueuedRun, requestRunCancel, runState } from '../runs/store/runs.js';
import { jobIdOf } from './job-id.js';

/** The NOTIFY channel a cancel request is sent on; its payload is the run id. */
export const CANCEL_CHANNEL = 'erp_cancel';

/**
 * Asks a run to stop. A queued run is cancelled at once; a running one is told through
 * PostgreSQL NOTIFY (the worker holding it aborts its signal, which cancels the statement in
 * progress and rolls the open transaction back) and is marked cancelled by that worker.
 */
export async function requestCancel(
  pool: pg.Pool,
  runId: number,
  queue?: Queue<RunJobData>,
  /** Who asks, for the audit trail. @defaultValue ERP_USER or the OS user */
  actor?: string,
): Promise<'cancelled' | 'cancelling'> {
  if (!(await requestRunCancel(pool, runId))) {
    const r = await runState(pool, runId);
    throw new UserError(
      r ? `run ${runId} is ${r.status}; only queued or running runs can be cancelled` : `no run ${runId}`,
    );
  }
  await appendAudit(pool, { action: 'run.cancel_requested', subject: `run:${runId}`, actor });
  await pool.query('SELECT pg_notify($1, $2)', [CANCEL_CHANNEL, String(runId)]);
  if (await cancelQueuedRun(pool, runId)) {
    await queue?.remove(jobIdOf(runId)).catch(() => undefined);
    return 'cancelled';
  }
  return 'cancelling';
}
