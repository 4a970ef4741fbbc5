import { hostname, userInfo } from 'node:os';
import type pg from 'pg';
import { CancelledError, isPermanent, RejectPolicyError, TimeoutError } from '../errors.js';
import type { Reject } from '../stages/types.js';

/**
 * The run history: every run, from the CLI, a worker or a schedule, is recorded in runner.runs and
 * kept. This is the audit trail: who ran what, from which host, with which parameters.
 */

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

/** Who is running this process, for the audit trail. */
export function currentUser(): string {
  try {
    return process.env.ERP_USER ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}

export async function createRun(db: pg.Pool | pg.PoolClient, run: NewRun): Promise<number> {
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
  db: pg.Pool | pg.PoolClient,
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

export interface RunFileRecord {
  runId: number;
  pipeline: string;
  file: string;
  sha256: string | null;
  size: number | null;
  status: 'loaded' | 'skipped' | 'failed' | 'validated';
  rowsRead: number;
  rowsLoaded: number;
  rowsRejected: number;
  rejectReport: string | null;
  message: string | null;
}

/** Records a file's outcome and its first rejects; returns the run_files id. */
export async function recordRunFile(
  db: pg.Pool | pg.PoolClient,
  f: RunFileRecord,
  rejects: readonly Reject[],
): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO runner.run_files (run_id, pipeline, file, sha256, size_bytes, status, rows_read, rows_loaded,
       rows_rejected, reject_report, message)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
    [
      f.runId,
      f.pipeline,
      f.file,
      f.sha256,
      f.size,
      f.status,
      f.rowsRead,
      f.rowsLoaded,
      f.rowsRejected,
      f.rejectReport,
      f.message,
    ],
  );
  const fileId = Number(rows[0]!.id);
  if (rejects.length > 0) {
    await db.query(
      `INSERT INTO runner.rejects (run_id, run_file_id, file, line, field, value, reason)
       SELECT $1, $2, r.file, r.line, r.field, r.value, r.reason
       FROM unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[]) AS r(file, line, field, value, reason)`,
      [
        f.runId,
        fileId,
        rejects.map((r) => r.file),
        rejects.map((r) => r.line),
        rejects.map((r) => r.field),
        rejects.map((r) => (r.value === null ? null : r.value.slice(0, 1000))),
        rejects.map((r) => r.reason),
      ],
    );
  }
  return fileId;
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
  db: pg.Pool,
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
  files: {
    file: string;
    status: string;
    rows_read: number;
    rows_loaded: number;
    rows_rejected: number;
    reject_report: string | null;
    message: string | null;
  }[];
  rejects: {
    file: string;
    line: number | null;
    field: string | null;
    value: string | null;
    reason: string;
  }[];
}

export async function getRun(db: pg.Pool, id: number, rejectLimit = 20): Promise<RunDetail | null> {
  const run = (await db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM runner.runs WHERE id = $1`, [id])).rows[0];
  if (!run) return null;
  const steps = (
    await db.query(
      `SELECT position, kind, name, status, error, detail FROM runner.run_steps WHERE run_id = $1 ORDER BY position`,
      [id],
    )
  ).rows;
  const files = (
    await db.query(
      `SELECT file, status, rows_read::int, rows_loaded::int, rows_rejected::int, reject_report, message
       FROM runner.run_files WHERE run_id = $1 ORDER BY id`,
      [id],
    )
  ).rows;
  const rejects = (
    await db.query(
      `SELECT file, line::int, field, value, reason FROM runner.rejects WHERE run_id = $1 ORDER BY id LIMIT $2`,
      [id, rejectLimit],
    )
  ).rows;
  return { run, steps, files, rejects };
}
