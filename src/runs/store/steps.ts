/**
 * runner.run_steps: a job run's steps as they start and end, and the two functions of
 * sql/000008 that claim a run (runner.claim_run) and commit a SQL step's success with its work
 * (runner.step_succeeded).
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Db } from './db.js';

/** The step a claim records as running with it (a first attempt's first step). */
export interface StepName {
  kind: string;
  name: string;
}

/** What runner.claim_run answers for a run that is still queued or running: now ours. */
export interface ClaimRow {
  cancel: boolean;
  /** Positions of the steps an earlier attempt finished. */
  done: number[];
  /** The first step was recorded as running with the claim. */
  first_recorded: boolean;
}

/**
 * Marks a queued (or retried) run running in this process (runner.claim_run): the attempt, host,
 * pid and liveness key; undefined when the run is no longer queued or running.
 */
export async function claimRunRow(
  db: Db,
  runId: number,
  liveness: number,
  first: StepName | undefined,
): Promise<ClaimRow | undefined> {
  const { rows } = await db.query<ClaimRow>(
    'SELECT cancel, done, first_recorded FROM runner.claim_run($1, $2, $3, $4, $5, $6)',
    [runId, hostname(), process.pid, liveness, first?.kind ?? null, first?.name ?? null],
  );
  return rows[0];
}

/**
 * The statement that ends a SQL step's transaction (runner.step_succeeded): the step succeeded,
 * and the next step runs or the run succeeded. Sent in one message with COMMIT, so its values are
 * literals: integers checked as such, text and JSON escaped by the connection.
 */
export function stepSucceededSql(
  client: pg.PoolClient,
  runId: number,
  position: number,
  step: StepName,
  detail: Record<string, unknown>,
  next: { position: number; step: StepName } | null,
  /** Claim the run with this commit, for the process holding this liveness key. */
  by: { liveness: number } | null,
): string {
  const int = (n: number): string => {
    if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`);
    return String(n);
  };
  const text = (v: string | undefined): string => (v === undefined ? 'NULL' : client.escapeLiteral(v));
  return `SELECT runner.step_succeeded(${int(runId)}, ${int(position)}, ${text(step.kind)}, ${text(step.name)},
    ${text(JSON.stringify(detail))}::jsonb, ${next ? int(next.position) : 'NULL'}, ${text(next?.step.kind)},
    ${text(next?.step.name)}${by ? `, ${text(hostname())}, ${int(process.pid)}, ${int(by.liveness)}` : ''})`;
}

/**
 * Records a step's state (running, succeeded, failed, cancelled); returns whether the run's
 * cancel was requested, in the same round trip.
 */
export async function recordStepState(
  db: Db,
  runId: number,
  position: number,
  step: StepName,
  status: string,
  detail?: Record<string, unknown>,
  error?: string,
): Promise<boolean> {
  const { rows } = await db.query<{ cancel: boolean }>(
    `WITH step AS (
       INSERT INTO runner.run_steps (run_id, position, kind, name, status, started_at, detail, error)
       VALUES ($1, $2, $3, $4, $5, now(), coalesce($6::jsonb, '{}'::jsonb), $7)
       ON CONFLICT (run_id, position) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error,
         detail = coalesce($6::jsonb, runner.run_steps.detail),
         started_at = CASE WHEN EXCLUDED.status = 'running' THEN now() ELSE runner.run_steps.started_at END,
         finished_at = CASE WHEN EXCLUDED.status = 'running' THEN NULL ELSE now() END
       RETURNING run_id)
     SELECT cancel_requested_at IS NOT NULL AS cancel FROM runner.runs WHERE id = (SELECT run_id FROM step)`,
    [runId, position, step.kind, step.name, status, detail ? JSON.stringify(detail) : null, error ?? null],
  );
  return rows[0]?.cancel ?? false;
}

export interface StepRow {
  position: number;
  kind: string;
  name: string;
  status: string;
}

/** Every recorded step of a run, in order. */
export async function stepsOf(db: Db, runId: number): Promise<StepRow[]> {
  const { rows } = await db.query<StepRow>(
    'SELECT position, kind, name, status FROM runner.run_steps WHERE run_id = $1 ORDER BY position',
    [runId],
  );
  return rows;
}

/** The recorded steps of a run that ended (succeeded, failed, skipped, cancelled), in order. */
export async function endedStepsOf(db: Db, runId: number): Promise<StepRow[]> {
  const { rows } = await db.query<StepRow>(
    `SELECT position, kind, name, status FROM runner.run_steps
     WHERE run_id = $1 AND status IN ('succeeded', 'failed', 'skipped', 'cancelled') ORDER BY position`,
    [runId],
  );
  return rows;
}

/** The positions of a run's steps that succeeded. */
export async function succeededPositions(db: Db, runId: number): Promise<number[]> {
  const { rows } = await db.query<{ position: number }>(
    `SELECT position FROM runner.run_steps WHERE run_id = $1 AND status = 'succeeded'`,
    [runId],
  );
  return rows.map((r) => r.position);
}
