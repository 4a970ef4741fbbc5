import { hostname } from 'node:os';
import type pg from 'pg';
import { UserError } from '../errors.js';
import { currentUser } from '../runs/history.js';
import { flattenSteps, type FlatStep } from './execute.js';
import { loadStoredRun, type StoredRun } from './load-run.js';
import { abandon, lockHeldError, lockHolder } from './submit.js';

/**
 * `erp run --resume <run>`: a run that failed (or was cancelled) after some of its steps committed
 * is finished in place.
 *
 *   failed run ──► checks (steps unchanged) ──► queued again, same id, same lock key ──► executeRun
 *                                                                      └─ lock held by another run: refused (4)
 *
 * The run goes back to 'queued' under its own lock key, so the unique index of held locks refuses
 * the resume while another run of the same scope is queued or running, as it refuses a new run.
 * runner.claim_run then hands the executor the positions of the steps that succeeded, which are
 * skipped: the run continues from its failed step with its own recorded parameters and options,
 * in its own history (same run id, one more attempt).
 */

/** A run reopened for its remaining steps. */
export interface ResumedRun extends StoredRun {
  steps: FlatStep[];
  /** Positions (1-based) of the steps that succeeded before and are not run again. */
  done: number[];
}

/** Reopens failed run `runId` for its remaining steps, or says why it cannot be resumed. */
export async function reopenRun(
  pool: pg.Pool,
  home: string,
  runId: number,
  /** Checks the remaining steps (the preflight) before the run is touched; throws to refuse. */
  check: (run: ResumedRun) => Promise<void> = async () => undefined,
): Promise<ResumedRun> {
  const { rows } = await pool.query<{ status: string; lock_key: string | null }>(
    'SELECT status, lock_key FROM runner.runs WHERE id = $1',
    [runId],
  );
  const row = rows[0];
  if (!row) throw new UserError(`no run ${runId}; erp runs lists the recent runs`);
  // A run whose process died still says 'running' until someone notices; this is the moment.
  if (row.status === 'running' && (await abandon(pool, runId))) row.status = 'failed';
  if (row.status === 'succeeded') throw new UserError(`run ${runId} succeeded; there is nothing to resume`);
  if (row.status === 'queued' || row.status === 'running')
    throw new UserError(
      `run ${runId} is still ${row.status}; follow it with erp runs show ${runId}, or stop it with erp cancel ${runId}`,
    );
  const stored = await loadStoredRun(pool, home, runId);
  const steps = await flattenSteps(home, stored.runnable.job, stored.params);
  const recorded = await pool.query<{ position: number; kind: string; name: string; status: string }>(
    'SELECT position, kind, name, status FROM runner.run_steps WHERE run_id = $1 ORDER BY position',
    [runId],
  );
  const done: number[] = [];
  for (const r of recorded.rows) {
    if (r.status !== 'succeeded') continue;
    const now = steps[r.position - 1];
    // The definition changed since the run: positions no longer mean the same steps.
    if (!now || now.kind !== r.kind || now.name !== r.name)
      throw new UserError(
        `run ${runId} cannot be resumed: its step ${r.position} was ${r.kind} ${r.name}, but ${stored.runnable.job.file} now has ${now ? `${now.kind} ${now.name}` : 'no such step'} there; start a new run instead`,
      );
    done.push(r.position);
  }
  if (done.length === steps.length)
    throw new UserError(`run ${runId}: every step succeeded already; there is nothing to resume`);
  await check({ ...stored, steps, done });
  try {
    const reopened = await pool.query(
      `UPDATE runner.runs SET status = 'queued', finished_at = NULL, error = NULL, error_kind = NULL,
         cancel_requested_at = NULL,
         options = options || jsonb_build_object('resumed', coalesce(options->'resumed', '[]'::jsonb)
           || jsonb_build_array(jsonb_build_object('by', $2::text, 'host', $3::text, 'at', now(), 'from_step', $4::int)))
       WHERE id = $1 AND status IN ('failed', 'cancelled')`,
      [runId, currentUser(), hostname(), firstNotDone(steps.length, done)],
    );
    if (reopened.rowCount === 0)
      throw new UserError(`run ${runId} changed while it was being resumed; try again`);
  } catch (err) {
    const e = err as { code?: string; constraint?: string };
    if (e.code === '23505' && e.constraint === 'runs_lock_held')
      throw lockHeldError(stored.runnable, stored.params, await lockHolder(pool, row.lock_key));
    throw err;
  }
  return { ...stored, steps, done };
}

function firstNotDone(count: number, done: number[]): number {
  for (let p = 1; p <= count; p++) if (!done.includes(p)) return p;
  return count;
}
