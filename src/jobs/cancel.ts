import type pg from 'pg';
import type { Queue } from 'bullmq';
import { appendAudit } from '../audit/trail.js';
import { UserError } from '../errors.js';
import type { RunJobData } from '../runner/queue.js';
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
  const { rows } = await pool.query<{ status: string }>(
    `UPDATE runner.runs SET cancel_requested_at = now() WHERE id = $1 AND status IN ('queued', 'running') RETURNING status`,
    [runId],
  );
  if (rows.length === 0) {
    const r = await pool.query<{ status: string }>('SELECT status FROM runner.runs WHERE id = $1', [runId]);
    throw new UserError(
      r.rows[0]
        ? `run ${runId} is ${r.rows[0].status}; only queued or running runs can be cancelled`
        : `no run ${runId}`,
    );
  }
  await appendAudit(pool, { action: 'run.cancel_requested', subject: `run:${runId}`, actor });
  await pool.query('SELECT pg_notify($1, $2)', [CANCEL_CHANNEL, String(runId)]);
  const queued = await pool.query(
    `UPDATE runner.runs SET status = 'cancelled', finished_at = now(), error = 'cancelled before it started'
     WHERE id = $1 AND status = 'queued'`,
    [runId],
  );
  if ((queued.rowCount ?? 0) > 0) {
    await queue?.remove(jobIdOf(runId)).catch(() => undefined);
    return 'cancelled';
  }
  return 'cancelling';
}
