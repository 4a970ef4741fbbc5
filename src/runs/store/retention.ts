/**
 * What retention (`erp purge`, the `compliance: purge` step) and erasure (`erp erase`) read and
 * change of the run records: runs, their files and rejects older than a cutoff, with whether a
 * legal hold covers each; and the rejects and recorded files that may quote a person.
 */
import type { Db } from './db.js';

/** The legal holds as SQL parameters $1 (run ids), $2 (partners), $3 (months YYYY-MM). */
export type RunHolds = [runs: string[], partners: string[], months: string[]];

/** SQL: whether the run `r` is under a hold. */
const RUN_HELD = `(r.id = ANY($1::bigint[]) OR r.params->>'partner' = ANY($2::text[])
  OR r.params->>'period' = ANY($3::text[]) OR to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM') = ANY($3::text[]))`;
/** SQL: when the run `r` ended (or was recorded). */
const RUN_AT = `coalesce(r.finished_at, r.created_at)`;
/** The message of a run file whose exported file retention removed. */
const FILE_PURGED = 'file purged by retention';

/** Runs that ended before `cutoff` and have rejects: how many each, and whether a hold keeps them. */
export async function runsWithRejectsBefore(
  db: Db,
  holds: RunHolds,
  cutoff: Date,
): Promise<{ id: string; n: string; held: boolean }[]> {
  const { rows } = await db.query<{ id: string; n: string; held: boolean }>(
    `SELECT r.id, count(*) AS n, ${RUN_HELD} AS held FROM runner.rejects j JOIN runner.runs r ON r.id = j.run_id
      WHERE ${RUN_AT} < $4 GROUP BY r.id ORDER BY r.id`,
    [...holds, cutoff],
  );
  return rows;
}

export async function deleteRejectsOfRuns(db: Db, runIds: readonly string[]): Promise<void> {
  await db.query(`DELETE FROM runner.rejects WHERE run_id = ANY($1::bigint[])`, [runIds]);
}

/** Run files that finished before `cutoff` with a reject report. */
export async function rejectReportsBefore(
  db: Db,
  holds: RunHolds,
  cutoff: Date,
): Promise<{ id: string; report: string; held: boolean }[]> {
  const { rows } = await db.query<{ id: string; report: string; held: boolean }>(
    `SELECT f.id, f.reject_report AS report, ${RUN_HELD} AS held FROM runner.run_files f JOIN runner.runs r ON r.id = f.run_id
      WHERE f.reject_report IS NOT NULL AND f.finished_at < $4 ORDER BY f.id`,
    [...holds, cutoff],
  );
  return rows;
}

/** The run files no longer point at their reject reports (removed). */
export async function clearRejectReports(db: Db, fileIds: readonly string[]): Promise<void> {
  await db.query(`UPDATE runner.run_files SET reject_report = NULL WHERE id = ANY($1::bigint[])`, [fileIds]);
}

/** Files loaded or written before `cutoff` whose file retention has not removed yet. */
export async function filesWrittenBefore(
  db: Db,
  holds: RunHolds,
  cutoff: Date,
): Promise<{ id: string; pipeline: string; file: string; held: boolean }[]> {
  const { rows } = await db.query<{ id: string; pipeline: string; file: string; held: boolean }>(
    `SELECT f.id, f.pipeline, f.file, ${RUN_HELD} AS held FROM runner.run_files f JOIN runner.runs r ON r.id = f.run_id
      WHERE f.status = 'loaded' AND f.finished_at < $4 AND f.file <> ''
        AND f.message IS DISTINCT FROM $5 ORDER BY f.id`,
    [...holds, cutoff, FILE_PURGED],
  );
  return rows;
}

/** The run files say their file was removed by retention. */
export async function markFilesPurged(db: Db, fileIds: readonly string[]): Promise<void> {
  await db.query(`UPDATE runner.run_files SET message = $2 WHERE id = ANY($1::bigint[])`, [
    fileIds,
    FILE_PURGED,
  ]);
}

/**
 * Runs that ended before `cutoff`. A run that loaded a file is not among them: the exactly-once
 * ledger (runner.ingested_files) names it.
 */
export async function finishedRunsBefore(
  db: Db,
  holds: RunHolds,
  cutoff: Date,
): Promise<{ id: string; name: string; at: Date; held: boolean }[]> {
  const { rows } = await db.query<{ id: string; name: string; at: Date; held: boolean }>(
    `SELECT r.id, r.name, ${RUN_AT} AS at, ${RUN_HELD} AS held FROM runner.runs r
      WHERE r.status IN ('succeeded', 'failed', 'cancelled') AND ${RUN_AT} < $4
        AND NOT EXISTS (SELECT 1 FROM runner.ingested_files i WHERE i.run_id = r.id) ORDER BY r.id`,
    [...holds, cutoff],
  );
  return rows;
}

export async function deleteRuns(db: Db, runIds: readonly string[]): Promise<void> {
  await db.query(`DELETE FROM runner.runs WHERE id = ANY($1::bigint[])`, [runIds]);
}

/** A page of rejects after id `after`, in id order (an erasure reads them all, a page at a time). */
export async function rejectsAfter(
  db: Db,
  after: string,
  limit: number,
): Promise<{ id: string; value: string | null; reason: string }[]> {
  const { rows } = await db.query<{ id: string; value: string | null; reason: string }>(
    `SELECT id, value, reason FROM runner.rejects WHERE id > $1 ORDER BY id LIMIT $2`,
    [after, limit],
  );
  return rows;
}

/** A reject's value and reason rewritten (a person erased from them); the rows changed. */
export async function rewriteReject(
  db: Db,
  id: string,
  value: string | null,
  reason: string,
): Promise<number> {
  const { rowCount } = await db.query(`UPDATE runner.rejects SET value = $2, reason = $3 WHERE id = $1`, [
    id,
    value,
    reason,
  ]);
  return rowCount ?? 0;
}

/** Every run file with a file of its own (loaded or written) or a reject report. */
export async function filesWithContent(
  db: Db,
): Promise<{ pipeline: string; file: string; report: string | null }[]> {
  const { rows } = await db.query<{ pipeline: string; file: string; report: string | null }>(
    `SELECT pipeline, file, reject_report AS report FROM runner.run_files WHERE status = 'loaded' OR reject_report IS NOT NULL`,
  );
  return rows;
}
