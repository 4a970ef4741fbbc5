/**
 * runner.run_files and runner.rejects (what happened to each file of a run, and its first
 * rejects), and runner.ingested_files, the ledger that makes a file's content load once per
 * pipeline.
 */
import type { Reject } from '../../stages/types.js';
import type { Db } from './db.js';

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
  const { rows } = await db.query<{ id: string }>(`WITH ${parts.join(',\n')}\nSELECT id FROM f`, params);
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

/**
 * Enters a file's content in the ledger, in the transaction that loads it; false when it is there
 * already (loaded before). With `force` the entry is taken over by this run instead.
 */
export async function enterLedger(
  db: Db,
  f: { pipeline: string; sha256: string; file: string; size: number; runId: number | null },
  force: boolean,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO runner.ingested_files (pipeline, sha256, file, size_bytes, run_id, rows_loaded)
     VALUES ($1, $2, $3, $4, $5, 0)
     ON CONFLICT (pipeline, sha256) DO ${force ? 'UPDATE SET file = EXCLUDED.file, run_id = EXCLUDED.run_id, loaded_at = now()' : 'NOTHING'}`,
    [f.pipeline, f.sha256, f.file, f.size, f.runId],
  );
  return (rowCount ?? 0) > 0;
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
