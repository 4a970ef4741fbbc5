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

/** What else moves with a file's record, in the same statement (one round trip per file). */
export interface RunFileAlso {
  /** Add the file's rows and its loaded/skipped count to the run's counters. */
  countInRun?: boolean;
  /** Set the ledger row's (runner.ingested_files) rows_loaded: the file loaded. */
  ledger?: boolean;
}

/**
 * Records a file's outcome and its first rejects, and with `also` the run's counters and the
 * ledger row, as one statement; returns the run_files id.
 */
export async function recordRunFile(
  db: pg.Pool | pg.PoolClient,
  f: RunFileRecord,
  rejects: readonly Reject[],
  also: RunFileAlso = {},
): Promise<number> {
  const params: unknown[] = [
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
  ];
  const parts = [
    `f AS (INSERT INTO runner.run_files (run_id, pipeline, file, sha256, size_bytes, status, rows_read, rows_loaded,
       rows_rejected, reject_report, message)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id)`,
  ];
  if (rejects.length > 0) {
    const n = params.length;
    params.push(
      rejects.map((r) => r.file),
      rejects.map((r) => r.line),
      rejects.map((r) => r.field),
      rejects.map((r) => (r.value === null ? null : r.value.slice(0, 1000))),
      rejects.map((r) => r.reason),
    );
    parts.push(
      `j AS (INSERT INTO runner.rejects (run_id, run_file_id, file, line, field, value, reason)
       SELECT $1, f.id, r.file, r.line, r.field, r.value, r.reason
       FROM f, unnest($${n + 1}::text[], $${n + 2}::bigint[], $${n + 3}::text[], $${n + 4}::text[], $${n + 5}::text[])
         AS r(file, line, field, value, reason))`,
    );
  }
  if (also.countInRun) {
    parts.push(
      `c AS (UPDATE runner.runs SET rows_read = rows_read + $7, rows_loaded = rows_loaded + $8,
         rows_rejected = rows_rejected + $9,
         files_loaded = files_loaded + CASE WHEN $6 = 'loaded' THEN 1 ELSE 0 END,
         files_skipped = files_skipped + CASE WHEN $6 = 'skipped' THEN 1 ELSE 0 END
       WHERE id = $1)`,
    );
  }
  if (also.ledger) {
    parts.push(
      `l AS (UPDATE runner.ingested_files SET rows_loaded = $8 WHERE pipeline = $2 AND sha256 = $4)`,
    );
  }
  const { rows } = await db.query<{ id: string }>(`WITH ${parts.join(',\n')}\nSELECT id FROM f`, params);
  return Number(rows[0]!.id);
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

export async function getRun(db: pg.Pool, id: number, rejectLimit = 20): Promise<RunDetail | null> {
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
