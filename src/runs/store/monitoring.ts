/**
 * What the alert rules and the scrape-time metrics read of the run records: the latest outcome
 * of each job, late schedules, files due (with a partner's inbound interchanges), the queue's age.
 * Read only.
 */
import type { Db } from './db.js';

/** The latest finished run (succeeded or failed, not a dry run) of each job or pipeline. */
export async function latestFinishedRuns(
  db: Db,
): Promise<{ id: string; name: string; status: string; error: string | null; finished_at: Date }[]> {
  const { rows } = await db.query<{
    id: string;
    name: string;
    status: string;
    error: string | null;
    finished_at: Date;
  }>(
    `SELECT DISTINCT ON (name) id, name, status, error, finished_at FROM runner.runs
      WHERE status IN ('succeeded', 'failed') AND NOT dry_run AND finished_at IS NOT NULL
      ORDER BY name, finished_at DESC, id DESC`,
  );
  return rows;
}

/** The files of a run that failed. */
export async function failedFilesOf(
  db: Db,
  runId: string,
): Promise<{ id: string; file: string; message: string | null; reject_report: string | null }[]> {
  const { rows } = await db.query<{
    id: string;
    file: string;
    message: string | null;
    reject_report: string | null;
  }>(
    `SELECT id, file, message, reject_report FROM runner.run_files WHERE run_id = $1 AND status = 'failed' ORDER BY id`,
    [runId],
  );
  return rows;
}

/** The first rejects kept of a run's file. */
export async function firstRejectsOf(
  db: Db,
  runFileId: string,
  limit: number,
): Promise<{ line: string | null; field: string | null; value: string | null; reason: string }[]> {
  const { rows } = await db.query<{
    line: string | null;
    field: string | null;
    value: string | null;
    reason: string;
  }>(`SELECT line, field, value, reason FROM runner.rejects WHERE run_file_id = $1 ORDER BY id LIMIT $2`, [
    runFileId,
    limit,
  ]);
  return rows;
}

/** The latest run of a schedule tick, if one was started. */
export async function runOfTick(
  db: Db,
  tick: string,
): Promise<{ id: string; status: string; error: string | null } | undefined> {
  const { rows } = await db.query<{ id: string; status: string; error: string | null }>(
    `SELECT id, status, error FROM runner.runs WHERE schedule_tick = $1 ORDER BY id DESC LIMIT 1`,
    [tick],
  );
  return rows[0];
}

/**
 * The files of a source: a pipeline's run files (rows loaded, size, skipped when seen before) and a
 * partner's inbound interchanges (transaction sets as rows; a re-delivery byte-identical to a loaded
 * one as skipped).
 */
const ARRIVALS = `
  SELECT f.file, f.status, f.sha256, f.size_bytes AS size, f.rows_loaded, f.finished_at AS at,
         (SELECT min(e.loaded_at) FROM runner.ingested_files e WHERE e.pipeline = f.pipeline AND e.sha256 = f.sha256) AS earlier
    FROM runner.run_files f JOIN runner.runs r ON r.id = f.run_id
   WHERE f.pipeline = ANY($1) AND NOT r.dry_run AND f.status IN ('loaded', 'skipped')
  UNION ALL
  SELECT i.file_name, CASE i.status WHEN 'duplicate' THEN 'skipped' ELSE i.status END, i.sha256, NULL,
         i.set_count, i.created_at,
         (SELECT min(e.created_at) FROM edi.interchanges e
           WHERE e.partner = i.partner AND e.direction = 'in' AND e.status = 'loaded' AND e.sha256 = i.sha256)
    FROM edi.interchanges i
   WHERE i.partner = $2 AND i.direction = 'in'
     AND (i.status = 'loaded' OR (i.status = 'duplicate' AND EXISTS (
           SELECT 1 FROM edi.interchanges e WHERE e.partner = i.partner AND e.direction = 'in'
              AND e.status = 'loaded' AND e.sha256 = i.sha256)))`;

/** A file that arrived: loaded or skipped, and when its content was first loaded. */
export interface ArrivedFile {
  file: string;
  status: string;
  sha256: string | null;
  size: string | null;
  rows_loaded: string;
  earlier: Date | null;
}

/** The files of `pipelines` (and the interchanges of `partner`) that arrived in (from, to]. */
export async function filesArrived(
  db: Db,
  pipelines: readonly string[],
  partner: string | null,
  from: Date,
  to: Date,
): Promise<ArrivedFile[]> {
  const { rows } = await db.query<ArrivedFile>(
    `SELECT * FROM (${ARRIVALS}) a WHERE a.at > $3 AND a.at <= $4 ORDER BY a.at`,
    [pipelines, partner, from, to],
  );
  return rows;
}

/** The median size of the last ten files loaded from these sources before `before`. */
export async function medianLoadedSize(
  db: Db,
  pipelines: readonly string[],
  partner: string | null,
  before: Date,
): Promise<number | null> {
  const { rows } = await db.query<{ median: number | null }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY size)::float8 AS median FROM (
       SELECT a.size FROM (${ARRIVALS}) a WHERE a.status = 'loaded' AND a.at <= $3 AND a.size IS NOT NULL
        ORDER BY a.at DESC LIMIT 10) s`,
    [pipelines, partner, before],
  );
  return rows[0]?.median ?? null;
}

/** How many runs have been queued since `since` or earlier, and the oldest's creation time. */
export async function queuedSince(db: Db, since: Date): Promise<{ n: number; oldest: Date | null }> {
  const { rows } = await db.query<{ n: number; oldest: Date | null }>(
    `SELECT count(*)::int AS n, min(created_at) AS oldest FROM runner.runs WHERE status = 'queued' AND created_at <= $1`,
    [since],
  );
  return rows[0] ?? { n: 0, oldest: null };
}

/** Seconds since the oldest queued run was created (null when none is queued). */
export async function oldestQueuedAge(db: Db): Promise<number | null> {
  const { rows } = await db.query<{ age: number | null }>(
    `SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM runner.runs WHERE status = 'queued'`,
  );
  return rows[0]?.age ?? null;
}

/** Runs queued and running, each status present even at 0. */
export async function activeRunCounts(db: Db): Promise<{ status: string; n: number }[]> {
  const { rows } = await db.query<{ status: string; n: number }>(
    `SELECT s.status, count(r.id)::int AS n FROM unnest(ARRAY['queued', 'running']) AS s (status)
       LEFT JOIN runner.runs r ON r.status = s.status GROUP BY s.status`,
  );
  return rows;
}

/** When each job or pipeline last succeeded (not a dry run), in Unix seconds. */
export async function lastSuccesses(db: Db): Promise<{ name: string; at: number }[]> {
  const { rows } = await db.query<{ name: string; at: number }>(
    `SELECT name, extract(epoch FROM max(finished_at))::float8 AS at FROM runner.runs
      WHERE status = 'succeeded' AND NOT dry_run GROUP BY name`,
  );
  return rows;
}
