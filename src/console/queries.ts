import type pg from 'pg';
import type { RunRow } from '../runs/history.js';

/**
 * The console's read queries. Lists page backwards by id (keyset, `before`), never by OFFSET, and
 * every filter has an index (sql/000170), so a page costs the same at run 100 and at run 100,000.
 */

/** Filters of the runs page; every one optional. */
export interface RunFilter {
  name?: string;
  kind?: 'job' | 'pipeline';
  status?: string;
  who?: string;
  from?: Date;
  to?: Date;
  /** Runs with an id below this one (the next page). */
  before?: number;
}

// Lists sort by `runs.id`, qualified: a bare `id` would sort by the select list's `id::int` and
// lose the primary key's order (a sort of the whole table instead of an index scan).
const LIST_COLUMNS = `id::int, kind, name, status, dry_run, params, requested_by, host, trigger, created_at, started_at,
  finished_at, rows_read::int, rows_loaded::int, rows_rejected::int, files_loaded, files_skipped, error, error_kind`;

/** One page of runs, newest first, and whether there is a next one. */
export async function findRuns(
  db: pg.Pool,
  f: RunFilter,
  pageSize: number,
): Promise<{ rows: RunRow[]; more: boolean }> {
  // Only the filters given become conditions (values always bound), so the planner picks the index
  // of the filter at hand instead of one generic plan for every combination.
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown): void => {
    if (v === undefined) return;
    values.push(v);
    where.push(sql.replace('?', `$${values.length}`));
  };
  add('name = ?', f.name);
  add('kind = ?', f.kind);
  add('status = ?', f.status);
  add('requested_by = ?', f.who);
  add('created_at >= ?', f.from);
  add('created_at < ?', f.to);
  add('id < ?', f.before);
  values.push(pageSize + 1);
  const { rows } = await db.query<RunRow>(
    `SELECT ${LIST_COLUMNS} FROM runner.runs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY runs.id DESC LIMIT $${values.length}`,
    values,
  );
  return { rows: rows.slice(0, pageSize), more: rows.length > pageSize };
}

/** What the overview shows of the runs since `since`. */
export interface Overview {
  byStatus: Record<string, number>;
  failed: RunRow[];
  active: RunRow[];
}

export async function overview(db: pg.Pool, since: Date): Promise<Overview> {
  const counts = await db.query<{ status: string; n: number }>(
    `SELECT status, count(*)::int AS n FROM runner.runs WHERE created_at >= $1 GROUP BY status`,
    [since],
  );
  const failed = await db.query<RunRow>(
    `SELECT ${LIST_COLUMNS} FROM runner.runs WHERE created_at >= $1 AND status = 'failed' ORDER BY runs.id DESC LIMIT 50`,
    [since],
  );
  const active = await db.query<RunRow>(
    `SELECT ${LIST_COLUMNS} FROM runner.runs WHERE status IN ('queued', 'running') ORDER BY runs.id DESC LIMIT 50`,
  );
  return {
    byStatus: Object.fromEntries(counts.rows.map((r) => [r.status, r.n])),
    failed: failed.rows,
    active: active.rows,
  };
}

/** One point of a job's history chart. */
export interface HistoryPoint {
  id: number;
  status: string;
  seconds: number | null;
  rows: number;
}

/** The last `n` finished runs of a job or pipeline, oldest first. */
export async function history(db: pg.Pool, name: string, n = 30): Promise<HistoryPoint[]> {
  const { rows } = await db.query<HistoryPoint>(
    `SELECT id::int, status, extract(epoch FROM finished_at - coalesce(started_at, created_at))::float AS seconds,
            (rows_loaded + rows_rejected)::int AS rows
       FROM (SELECT * FROM runner.runs WHERE name = $1 AND finished_at IS NOT NULL ORDER BY id DESC LIMIT $2) r
      ORDER BY id`,
    [name, n],
  );
  return rows;
}

/** A ledger entry: which run loaded a file, when, and how many rows. */
export interface LedgerEntry {
  pipeline: string;
  sha256: string;
  file: string;
  size_bytes: number;
  run_id: number;
  rows_loaded: number;
  loaded_at: Date;
}

/** Ledger entries by SHA-256 (64 hex digits, exact) or by a part of the file's name. */
export async function findFiles(db: pg.Pool, q: string, limit = 100): Promise<LedgerEntry[]> {
  const cols = 'pipeline, sha256, file, size_bytes::int, run_id::int, rows_loaded::int, loaded_at';
  if (q === '') {
    return (
      await db.query<LedgerEntry>(
        `SELECT ${cols} FROM runner.ingested_files ORDER BY loaded_at DESC LIMIT $1`,
        [limit],
      )
    ).rows;
  }
  if (/^[0-9a-f]{64}$/i.test(q)) {
    return (
      await db.query<LedgerEntry>(
        `SELECT ${cols} FROM runner.ingested_files WHERE sha256 = $1 ORDER BY loaded_at DESC`,
        [q.toLowerCase()],
      )
    ).rows;
  }
  const like = '%' + q.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
  return (
    await db.query<LedgerEntry>(
      `SELECT ${cols} FROM runner.ingested_files WHERE file ILIKE $1 ORDER BY loaded_at DESC LIMIT $2`,
      [like, limit],
    )
  ).rows;
}

/** Which of `ticks` (schedule tick identities) produced a run. */
export async function ticksWithRuns(
  db: pg.Pool,
  ticks: string[],
): Promise<Map<string, { id: number; status: string }>> {
  if (ticks.length === 0) return new Map();
  const { rows } = await db.query<{ schedule_tick: string; id: number; status: string }>(
    `SELECT schedule_tick, id::int, status FROM runner.runs WHERE schedule_tick = ANY ($1::text[])`,
    [ticks],
  );
  return new Map(rows.map((r) => [r.schedule_tick, { id: r.id, status: r.status }]));
}

/** True when a table exists (panels for features other issues add show only once they do). */
export async function tableExists(db: pg.Pool, qualified: string): Promise<boolean> {
  const { rows } = await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [qualified]);
  return rows[0]?.t !== null && rows[0]?.t !== undefined;
}

/** A run's steps with their timings. */
export interface StepRow {
  position: number;
  kind: string;
  name: string;
  status: string;
  started_at: Date | null;
  finished_at: Date | null;
  error: string | null;
}

/** A run's file with its counts and where its reject report is. */
export interface FileRow {
  id: number;
  pipeline: string;
  file: string;
  sha256: string | null;
  status: string;
  rows_read: number;
  rows_loaded: number;
  rows_rejected: number;
  reject_report: string | null;
  message: string | null;
  finished_at: Date;
}

/** A reject as the run page lists it. */
export interface RejectRow {
  run_file_id: number | null;
  file: string;
  line: number | null;
  field: string | null;
  value: string | null;
  reason: string;
}

/** Everything the run page shows of a run, or null. */
export async function runDetail(
  db: pg.Pool,
  id: number,
  rejectLimit = 50,
): Promise<{
  run: RunRow & { options: Record<string, unknown> };
  steps: StepRow[];
  files: FileRow[];
  rejects: RejectRow[];
} | null> {
  const run = (
    await db.query<RunRow & { options: Record<string, unknown> }>(
      `SELECT ${LIST_COLUMNS}, options FROM runner.runs WHERE id = $1`,
      [id],
    )
  ).rows[0];
  if (!run) return null;
  const [steps, files, rejects] = await Promise.all([
    db.query<StepRow>(
      `SELECT position, kind, name, status, started_at, finished_at, error FROM runner.run_steps WHERE run_id = $1 ORDER BY position`,
      [id],
    ),
    db.query<FileRow>(
      `SELECT id::int, pipeline, file, sha256, status, rows_read::int, rows_loaded::int, rows_rejected::int, reject_report,
              message, finished_at
         FROM runner.run_files WHERE run_id = $1 ORDER BY run_files.id`,
      [id],
    ),
    db.query<RejectRow>(
      `SELECT run_file_id::int, file, line::int, field, value, reason FROM runner.rejects WHERE run_id = $1 ORDER BY id LIMIT $2`,
      [id, rejectLimit],
    ),
  ]);
  return { run, steps: steps.rows, files: files.rows, rejects: rejects.rows };
}

/** The live part of a run, sent by the run page's event stream. */
export async function runSnapshot(db: pg.Pool, id: number): Promise<Record<string, unknown> | null> {
  const { rows } = await db.query(
    `SELECT r.status, r.rows_read::int, r.rows_loaded::int, r.rows_rejected::int, r.files_loaded, r.files_skipped, r.error,
            (SELECT coalesce(json_agg(json_build_object('position', s.position, 'status', s.status) ORDER BY s.position), '[]')
               FROM runner.run_steps s WHERE s.run_id = r.id) AS steps
       FROM runner.runs r WHERE r.id = $1`,
    [id],
  );
  return rows[0] ?? null;
}
