/**
 * runner.run_files and runner.rejects (what happened to each file of a run, and its first
 * rejects), and runner.ingested_files, the ledger that makes a file's content load once per
 * pipeline.
 */
import pg from 'pg';
import type { Reject } from '../../stages/types.js';
import type { Db } from './db.js';

/**
 * `sql` with its `$n` parameters written in as literals, so that it can share one simple-protocol
 * message (one round trip) with BEGIN or COMMIT: a parameterised statement travels in the extended
 * protocol, which takes one statement a message. A value is quoted by pg's escapeLiteral and
 * reaches PostgreSQL as a literal of unknown type, as an untyped parameter does (pg sends every
 * parameter as text), so the statement means the same; an array becomes `ARRAY[…]`, which the
 * statement casts (`$12::text[]`) as it does the parameter. Only for the fixed statements of this
 * module: a `$n` inside a string literal of `sql` would be replaced too.
 */
export function withLiterals(sql: string, params: readonly unknown[]): string {
  return sql.replace(/\$(\d+)/g, (_, n: string) => literal(params[Number(n) - 1]));
}

function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (Array.isArray(v)) return `ARRAY[${v.map(literal).join(',')}]`;
  if (typeof v === 'string') return pg.escapeLiteral(v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return `'${String(v)}'`;
  if (v instanceof Date) return `'${v.toISOString()}'`;
  throw new Error(`withLiterals: no literal for a ${typeof v}`);
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
  /**
   * COMMIT the caller's transaction in the same round trip, after the record (the file's
   * transaction ends with its record). If the record fails, COMMIT is not run: the transaction
   * is left aborted for the caller to roll back.
   */
  commit?: boolean;
}

/**
 * Records a file's outcome and its first rejects, and with `also` the run's counters (as
 * addRunCounts does) and the ledger row's rows_loaded, as one statement (one round trip per
 * file); returns the run_files id.
 */
export async function recordRunFile(
  db: Db,
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
  const sql = `WITH ${parts.join(',\n')}\nSELECT id FROM f`;
  if (also.commit) {
    const results = (await db.query(`${withLiterals(sql, params)};\nCOMMIT`)) as unknown as pg.QueryResult[];
    return Number((results[0]!.rows[0] as { id: string }).id);
  }
  const { rows } = await db.query<{ id: string }>(sql, params);
  return Number(rows[0]!.id);
}

/** Adds a file's rows and outcome to its run's counters (with the file's record, in its transaction). */
export async function addRunCounts(
  db: Db,
  runId: number,
  n: {
    rowsRead: number;
    rowsLoaded: number;
    rowsRejected?: number;
    filesLoaded?: number;
    filesSkipped?: number;
  },
): Promise<void> {
  await db.query(
    `UPDATE runner.runs SET rows_read = rows_read + $2, rows_loaded = rows_loaded + $3, rows_rejected = rows_rejected + $4,
       files_loaded = files_loaded + $5, files_skipped = files_skipped + $6 WHERE id = $1`,
    [runId, n.rowsRead, n.rowsLoaded, n.rowsRejected ?? 0, n.filesLoaded ?? 0, n.filesSkipped ?? 0],
  );
}

/** The ledger's row for a file's content: which run loaded it, when, under which name. */
export interface LedgerRow {
  run_id: string;
  loaded_at: Date;
  file: string;
}

/** The run that loaded this content into this pipeline before, if any. */
export async function ledgerEntry(db: Db, pipeline: string, sha256: string): Promise<LedgerRow | undefined> {
  const { rows } = await db.query<LedgerRow>(
    'SELECT run_id, loaded_at, file FROM runner.ingested_files WHERE pipeline = $1 AND sha256 = $2',
    [pipeline, sha256],
  );
  return rows[0];
}

/**
 * Whether the ledger may hold this content already: it holds content of `pipeline` of this very
 * size. False means the content is new to the pipeline without knowing its hash (one index probe).
 */
export async function ledgerMayHold(db: Db, pipeline: string, size: number): Promise<boolean> {
  const { rowCount } = await db.query(
    'SELECT 1 FROM runner.ingested_files WHERE pipeline = $1 AND size_bytes = $2 LIMIT 1',
    [pipeline, size],
  );
  return (rowCount ?? 0) > 0;
}

/** A file's content, as the ledger enters it. */
export interface LedgerFile {
  pipeline: string;
  sha256: string;
  file: string;
  size: number;
  runId: number | null;
}

const ledgerInsert = (force: boolean, onConflict: 'error' | 'nothing'): string =>
  `INSERT INTO runner.ingested_files (pipeline, sha256, file, size_bytes, run_id, rows_loaded)
   VALUES ($1, $2, $3, $4, $5, 0)${
     force
       ? ' ON CONFLICT (pipeline, sha256) DO UPDATE SET file = EXCLUDED.file, run_id = EXCLUDED.run_id, loaded_at = now()'
       : onConflict === 'nothing'
         ? ' ON CONFLICT (pipeline, sha256) DO NOTHING'
         : ''
   }`;

const ledgerParams = (f: LedgerFile): unknown[] => [f.pipeline, f.sha256, f.file, f.size, f.runId];

/**
 * Enters a file's content in the ledger, in the transaction that loads it; false when it is there
 * already (loaded before). With `force` the entry is taken over by this run instead.
 */
export async function enterLedger(db: Db, f: LedgerFile, force: boolean): Promise<boolean> {
  const { rowCount } = await db.query(ledgerInsert(force, 'nothing'), ledgerParams(f));
  return (rowCount ?? 0) > 0;
}

/** What {@link beginFile} found: the file is the transaction's to load, or loaded before. */
export type FileEntry = { entered: true } | { entered: false; previous: LedgerRow | undefined };

/**
 * The text that opens a file's transaction and enters its content in the ledger, for the sink to
 * send in one message with the load's first statement (one round trip a file less): BEGIN and an
 * INSERT without ON CONFLICT (a statement ahead of COPY may return no rows), so content loaded
 * before fails it with a unique violation ({@link isLedgerConflict}) and the load never starts.
 * With `force` the entry is taken over by this run instead.
 */
export function beginFileSql(f: LedgerFile, force: boolean): string {
  return `BEGIN;\n${withLiterals(ledgerInsert(force, 'error'), ledgerParams(f))}`;
}

/** Whether `err` is {@link beginFileSql}'s insert finding the content in the ledger already. */
export function isLedgerConflict(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown } | null;
  return e?.code === '23505' && e.constraint === 'ingested_files_pkey';
}

/**
 * Opens the transaction that loads a file and enters its content in the ledger in it, in one
 * round trip (BEGIN and the insert as one simple-protocol message). When the content is there
 * already (loaded before) the same statement returns the ledger's row, and the transaction is
 * left open for the caller to roll back. With `force` the entry is taken over by this run instead.
 *
 * A concurrent transaction entering the same content makes the insert wait for it: if it commits,
 * this file is a duplicate (its row may be too new for this statement's snapshot: `previous` is
 * then undefined); if it rolls back, this one enters it.
 */
export async function beginFile(client: Db, f: LedgerFile, force: boolean): Promise<FileEntry> {
  const sql = `WITH ins AS (${ledgerInsert(force, 'nothing')} RETURNING 1)
    SELECT (SELECT count(*)::int FROM ins) AS entered, p.run_id, p.loaded_at, p.file
    FROM (SELECT 1) AS one
    LEFT JOIN runner.ingested_files p ON p.pipeline = $1 AND p.sha256 = $2 AND NOT EXISTS (SELECT FROM ins)`;
  const results = (await client.query(
    `BEGIN;\n${withLiterals(sql, ledgerParams(f))}`,
  )) as unknown as pg.QueryResult[];
  const row = results[1]!.rows[0] as {
    entered: number;
    run_id: string | null;
    loaded_at: Date | null;
    file: string | null;
  };
  if (row.entered > 0) return { entered: true };
  return {
    entered: false,
    previous:
      row.loaded_at !== null ? { run_id: row.run_id!, loaded_at: row.loaded_at, file: row.file! } : undefined,
  };
}

/** One file of a run, as the console offers it for download or reload. */
export interface RunFileRef {
  pipeline: string;
  file: string;
  reject_report: string | null;
}

export async function runFile(db: Db, runId: number, runFileId: number): Promise<RunFileRef | undefined> {
  const { rows } = await db.query<RunFileRef>(
    'SELECT pipeline, file, reject_report FROM runner.run_files WHERE id = $1 AND run_id = $2',
    [runFileId, runId],
  );
  return rows[0];
}
