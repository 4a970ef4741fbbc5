/**
 * The run history: every run, from the CLI, a worker or a schedule, is recorded in runner.runs and
 * kept. This is the audit trail: who ran what, from which host, with which parameters.
 */
import { hostname } from 'node:os';
import { CancelledError, isPermanent, RejectPolicyError, TimeoutError } from '../../errors.js';
import { currentUser } from '../../config/env.js';
import type { Db } from './db.js';

export type RunStatus = 'awaiting_approval' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface NewRun {
  kind: 'pipeline' | 'job';
  name: string;
  params?: Record<string, unknown>;
  dryRun?: boolean;
  requestedBy?: string;
  trigger?: string;
  status?: RunStatus;
  lockKey?: string | null;
  /** Identity of the schedule tick that created the run; unique. */
  scheduleTick?: string | null;
  /** Run options that are not job parameters (files, force). */
  options?: Record<string, unknown>;
  /** The SHA-256 of each definition the run uses (src/audit/definitions.ts). */
  definitions?: readonly unknown[];
}

export async function createRun(db: Db, run: NewRun): Promise<number> {
  const status = run.status ?? 'running';
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO runner.runs (kind, name, params, status, dry_run, requested_by, host, pid, trigger, lock_key, started_at,
       schedule_tick, options, definitions)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $4 = 'running' THEN now() END, $11, $12, $13)
     RETURNING id`,
    [
      run.kind,
      run.name,
      JSON.stringify(run.params ?? {}),
      status,
      run.dryRun ?? false,
      run.requestedBy ?? currentUser(),
      hostname(),
      process.pid,
      run.trigger ?? 'cli',
      run.lockKey ?? null,
      run.scheduleTick ?? null,
      JSON.stringify(run.options ?? {}),
      JSON.stringify(run.definitions ?? []),
    ],
  );
  return Number(rows[0]!.id);
}

/** Marks a run finished; its counters were moved file by file as files committed. */
export async function finishRun(
  db: Db,
  id: number,
  status: RunStatus,
  error?: string | null,
  errorKind?: ErrorKind | null,
): Promise<void> {
  await db.query(
    `UPDATE runner.runs SET status = $2, finished_at = now(), error = $3, error_kind = $4 WHERE id = $1`,
    [id, status, error ?? null, errorKind ?? null],
  );
}

/** Why a run failed, which decides the CLI's exit code and whether a retry can help. */
export type ErrorKind = 'policy' | 'user' | 'infra' | 'cancelled' | 'timeout';

/** Classifies an error for {@link ErrorKind}. */
export function errorKindOf(err: unknown): ErrorKind {
  if (err instanceof RejectPolicyError) return 'policy';
  if (err instanceof CancelledError) return 'cancelled';
  if (err instanceof TimeoutError) return 'timeout';
  return isPermanent(err) ? 'user' : 'infra';
}

export interface RunRow {
  id: number;
  kind: string;
  name: string;
  status: RunStatus;
  dry_run: boolean;
  params: Record<string, unknown>;
  requested_by: string;
  host: string;
  trigger: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  rows_read: number;
  rows_loaded: number;
  rows_rejected: number;
  files_loaded: number;
  files_skipped: number;
  error: string | null;
  error_kind: ErrorKind | null;
}

const RUN_COLUMNS = `id::int, kind, name, status, dry_run, params, requested_by, host, trigger, created_at, started_at,
  finished_at, rows_read::int, rows_loaded::int, rows_rejected::int, files_loaded, files_skipped, error, error_kind`;

export async function listRuns(
  db: Db,
  filter: { name?: string; status?: string; limit?: number } = {},
): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    `SELECT ${RUN_COLUMNS} FROM runner.runs
     WHERE ($1::text IS NULL OR name = $1) AND ($2::text IS NULL OR status = $2)
     ORDER BY runs.id DESC LIMIT $3`,
    [filter.name ?? null, filter.status ?? null, filter.limit ?? 20],
  );
  return rows;
}

export interface RunDetail {
  run: RunRow;
  steps: {
    position: number;
    kind: string;
    name: string;
    status: string;
    error: string | null;
    detail: unknown;
  }[];
  /** Run options that are not job parameters (`--file`, `--force`). */
  options: { files?: string[]; force?: boolean };
  files: {
    id: number;
    pipeline: string;
    file: string;
    status: string;
    rows_read: number;
    rows_loaded: number;
    rows_rejected: number;
    reject_report: string | null;
    message: string | null;
  }[];
  /** The first rejects of each file, in line order. */
  rejects: {
    file_id: number;
    file: string;
    line: number | null;
    field: string | null;
    value: string | null;
    reason: string;
  }[];
}

export async function getRun(db: Db, id: number, rejectLimit = 20): Promise<RunDetail | null> {
  const found = (
    await db.query<RunRow & { options: RunDetail['options'] }>(
      `SELECT ${RUN_COLUMNS}, options FROM runner.runs WHERE id = $1`,
      [id],
    )
  ).rows[0];
  if (!found) return null;
  const { options, ...run } = found;
  const steps = (
    await db.query(
      `SELECT position, kind, name, status, error, detail FROM runner.run_steps WHERE run_id = $1 ORDER BY position`,
      [id],
    )
  ).rows;
  const files = (
    await db.query(
      `SELECT id::int, pipeline, file, status, rows_read::int, rows_loaded::int, rows_rejected::int, reject_report, message
       FROM runner.run_files WHERE run_id = $1 ORDER BY id`,
      [id],
    )
  ).rows;
  const rejects = (
    await db.query(
      // In line order, as the load saw them (a structural reject is found ahead of the rows before it).
      `SELECT file_id, file, line, field, value, reason FROM (
         SELECT run_file_id::int AS file_id, file, line::int, field, value, reason, id,
           row_number() OVER (PARTITION BY run_file_id ORDER BY coalesce(line, 0), id) AS n
         FROM runner.rejects WHERE run_id = $1) r
       WHERE n <= $2 ORDER BY file_id, coalesce(line, 0), id`,
      [id, rejectLimit],
    )
  ).rows;
  return { run, options: options ?? {}, steps, files, rejects };
}

/** What a run was asked to do: what the worker needs to execute it again. */
export interface RunSpec {
  name: string;
  params: Record<string, unknown>;
  options: { force?: boolean; files?: string[] };
}

export async function runSpec(db: Db, id: number): Promise<RunSpec | undefined> {
  const { rows } = await db.query<RunSpec>('SELECT name, params, options FROM runner.runs WHERE id = $1', [
    id,
  ]);
  return rows[0];
}

/** Where a run stands. */
export interface RunState {
  status: RunStatus;
  attempts: number;
  lock_key: string | null;
  error: string | null;
  error_kind: ErrorKind | null;
}

export async function runState(db: Db, id: number): Promise<RunState | undefined> {
  const { rows } = await db.query<RunState>(
    'SELECT status, attempts, lock_key, error, error_kind FROM runner.runs WHERE id = $1',
    [id],
  );
  return rows[0];
}

/** Puts a run whose attempt failed back to queued, saying why; its next attempt claims it again. */
export async function requeueRun(db: Db, id: number, error: string | null): Promise<void> {
  await db.query(`UPDATE runner.runs SET status = 'queued', error = $2 WHERE id = $1`, [id, error]);
}

/** Asks a queued or running run to stop; false when it is neither. */
export async function requestRunCancel(db: Db, id: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE runner.runs SET cancel_requested_at = now() WHERE id = $1 AND status IN ('queued', 'running')`,
    [id],
  );
  return (rowCount ?? 0) > 0;
}

/** Cancels a run no worker started yet; false when one has. */
export async function cancelQueuedRun(db: Db, id: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE runner.runs SET status = 'cancelled', finished_at = now(), error = 'cancelled before it started'
     WHERE id = $1 AND status = 'queued'`,
    [id],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Queues a failed or cancelled run again for its remaining steps, noting who resumed it from which
 * step; false when it is no longer failed or cancelled.
 */
export async function reopenRunRecord(db: Db, id: number, by: string, fromStep: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE runner.runs SET status = 'queued', finished_at = NULL, error = NULL, error_kind = NULL,
       cancel_requested_at = NULL,
       options = options || jsonb_build_object('resumed', coalesce(options->'resumed', '[]'::jsonb)
         || jsonb_build_array(jsonb_build_object('by', $2::text, 'host', $3::text, 'at', now(), 'from_step', $4::int)))
     WHERE id = $1 AND status IN ('failed', 'cancelled')`,
    [id, by, hostname(), fromStep],
  );
  return (rowCount ?? 0) > 0;
}

/** The queued or running run holding a lock key, if any. */
export interface LockHolder {
  id: number;
  status: string;
  requested_by: string;
  host: string;
  created_at: Date;
}

export async function runHoldingLock(db: Db, lockKey: string | null): Promise<LockHolder | undefined> {
  const { rows } = await db.query<LockHolder>(
    `SELECT id::int, status, requested_by, host, created_at FROM runner.runs
     WHERE lock_key = $1 AND status IN ('queued', 'running') LIMIT 1`,
    [lockKey],
  );
  return rows[0];
}

/** The condition "no process holds run `runs`' liveness lock" (lock class $lockClass). */
const LIVENESS_GONE = (lockClass: string): string =>
  `NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
     AND classid = ${lockClass}::int::oid AND objid = runs.liveness_key::oid AND objsubid = 2)`;

/**
 * Fails a 'running' run whose process is gone (its liveness lock is free), with the step it was
 * running; true when it did.
 */
export async function failAbandonedRun(
  db: Db,
  id: number,
  lockClass: number,
  error: string,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `WITH run AS (
       UPDATE runner.runs AS runs SET status = 'failed', finished_at = now(), error_kind = 'infra', error = $3
       WHERE id = $1 AND status = 'running' AND (liveness_key IS NULL OR ${LIVENESS_GONE('$2')})
       RETURNING id, error),
     steps AS (
       UPDATE runner.run_steps SET status = 'failed', finished_at = now(), error = (SELECT error FROM run)
       WHERE run_id = (SELECT id FROM run) AND status = 'running')
     SELECT id FROM run`,
    [id, lockClass, error],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Every 'running' run whose process is gone: an inline run (`inlineTrigger`) fails, a queued one
 * is queued again; the step each was running fails. Returns the runs and their new status.
 */
export async function releaseAbandonedRuns(
  db: Db,
  lockClass: number,
  inlineTrigger: string,
  errors: { inline: string; queued: string },
): Promise<{ id: number; status: string }[]> {
  const { rows } = await db.query<{ id: number; status: string }>(
    `WITH dead AS (
       UPDATE runner.runs AS runs
       SET status = CASE WHEN trigger = $2 THEN 'failed' ELSE 'queued' END,
           finished_at = CASE WHEN trigger = $2 THEN now() END,
           error_kind = CASE WHEN trigger = $2 THEN 'infra' END,
           error = CASE WHEN trigger = $2 THEN $3 ELSE $4 END
       WHERE status = 'running' AND liveness_key IS NOT NULL AND ${LIVENESS_GONE('$1')}
       RETURNING id, status),
     steps AS (
       UPDATE runner.run_steps SET status = 'failed', finished_at = now(), error = $3
       WHERE status = 'running' AND run_id IN (SELECT id FROM dead))
     SELECT id::int, status FROM dead`,
    [lockClass, inlineTrigger, errors.inline, errors.queued],
  );
  return rows;
}

/** Fails the inline runs still queued after a minute: the process that created them is gone. */
export async function failStaleInlineRuns(db: Db, inlineTrigger: string, error: string): Promise<void> {
  await db.query(
    `UPDATE runner.runs SET status = 'failed', finished_at = now(), error_kind = 'infra', error = $2
     WHERE status = 'queued' AND trigger = $1 AND created_at < now() - interval '1 minute'`,
    [inlineTrigger, error],
  );
}

/** Queued runs meant for the queue (not inline, not dry runs) created longer than `grace` ago. */
export async function queuedRunsOlderThan(
  db: Db,
  inlineTrigger: string,
  grace: string,
): Promise<(RunSpec & { id: number })[]> {
  const { rows } = await db.query<RunSpec & { id: number }>(
    `SELECT id::int, name, params, options FROM runner.runs
     WHERE status = 'queued' AND trigger <> $1 AND NOT dry_run AND created_at < now() - $2::interval
     ORDER BY id`,
    [inlineTrigger, grace],
  );
  return rows;
}

/** Fails a run that is still queued (its queue gave up on it); true when it did. */
export async function failQueuedRun(db: Db, id: number, error: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE runner.runs SET status = 'failed', finished_at = now(), error_kind = 'infra', error = $2
     WHERE id = $1 AND status = 'queued'`,
    [id, error],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Marks runs in hand (if still queued or running) as an attempt that failed and will be retried,
 * with the step each was running.
 */
export async function requeueRunsInHand(db: Db, ids: number[], error: string): Promise<void> {
  await db.query(
    `WITH runs AS (
       UPDATE runner.runs SET status = 'queued', error = $2
       WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'running')
       RETURNING id)
     UPDATE runner.run_steps SET status = 'failed', finished_at = now(), error = $2
     WHERE status = 'running' AND run_id IN (SELECT id FROM runs)`,
    [ids, error],
  );
}

/** Which of these runs are still queued or running. */
export async function liveRunIds(db: Db, ids: number[]): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `SELECT id::int FROM runner.runs WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'running')`,
    [ids],
  );
  return rows.map((r) => r.id);
}

/** The latest run a schedule created (its ticks are named `<job>#<index>@<time>`). */
export async function lastRunOfSchedule(
  db: Db,
  job: string,
  index: number,
): Promise<{ id: number; status: string; created_at: Date } | undefined> {
  const { rows } = await db.query<{ id: number; status: string; created_at: Date }>(
    `SELECT id::int, status, created_at FROM runner.runs WHERE schedule_tick LIKE $1 ORDER BY id DESC LIMIT 1`,
    [`${job}#${index}@%`],
  );
  return rows[0];
}
