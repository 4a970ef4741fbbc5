/**
 * runner.alerts: the alerts the rules opened, when they cleared, and whom they were told to.
 */
import type { Db } from './db.js';

/** An alert as `erp alerts` and the console's overview list it. */
export interface AlertRow {
  id: string;
  rule: string;
  subject: string;
  message: string;
  opened_at: Date;
  resolved_at: Date | null;
  notices: number;
}

/**
 * Open alerts, newest first; with `resolvedWithinDays`, also those resolved within that many days
 * (after the open ones). One query for the CLI and the console, so both show the same alerts.
 */
export async function listAlerts(
  db: Db,
  opts: { resolvedWithinDays?: number; limit?: number } = {},
): Promise<AlertRow[]> {
  const { rows } = await db.query<AlertRow>(
    `SELECT id, rule, subject, message, opened_at, resolved_at, notices FROM runner.alerts
      WHERE resolved_at IS NULL OR resolved_at > now() - make_interval(days => $1::int)
      ORDER BY resolved_at IS NULL DESC, opened_at DESC LIMIT $2`,
    [opts.resolvedWithinDays ?? null, opts.limit ?? 100],
  );
  return rows;
}

/** Opens an alert for a condition, or refreshes the open one; true when it opened. */
export async function upsertAlert(
  db: Db,
  c: { rule: string; subject: string; message: string },
  now: Date,
): Promise<boolean> {
  const { rows } = await db.query<{ inserted: boolean }>(
    `INSERT INTO runner.alerts (rule, subject, message, opened_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)
     ON CONFLICT (rule, subject) WHERE resolved_at IS NULL
     DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at, message = EXCLUDED.message
     RETURNING (xmax = 0) AS inserted`,
    [c.rule, c.subject, c.message, now],
  );
  return rows[0]?.inserted ?? false;
}

/** Resolves the open alerts of `rules` whose condition is not among `current`; returns how many. */
export async function resolveClearedAlerts(
  db: Db,
  now: Date,
  rules: readonly string[],
  current: readonly { rule: string; subject: string }[],
): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE runner.alerts a SET resolved_at = $1
      WHERE a.resolved_at IS NULL AND a.rule = ANY ($2::text[])
        AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[]) AS c (rule, subject)
                         WHERE c.rule = a.rule AND c.subject = a.subject)`,
    [now, rules, current.map((c) => c.rule), current.map((c) => c.subject)],
  );
  return rowCount ?? 0;
}

/** An alert with a notice due: its opening, a repeat, or its resolution. */
export interface DueAlert extends AlertRow {
  notified_at: Date | null;
  due: 'open' | 'repeat' | 'resolved';
}

export async function alertsWithNoticeDue(db: Db, now: Date): Promise<DueAlert[]> {
  const { rows } = await db.query<DueAlert>(
    `SELECT id, rule, subject, message, opened_at, resolved_at, notified_at, notices,
            CASE WHEN resolved_at IS NOT NULL THEN 'resolved' WHEN notices = 0 THEN 'open' ELSE 'repeat' END AS due
       FROM runner.alerts
      WHERE (resolved_at IS NULL AND (notified_at IS NULL OR notified_at <= $1))
         OR (resolved_at IS NOT NULL AND resolved_notified_at IS NULL)
      ORDER BY id`,
    [now],
  );
  return rows;
}

/** The alert's resolution was told (or there was nothing to take back). */
export async function markResolutionNotified(db: Db, id: string, now: Date): Promise<void> {
  await db.query('UPDATE runner.alerts SET resolved_notified_at = $2 WHERE id = $1', [id, now]);
}

/** The alert's opening or a repeat was told. */
export async function markAlertNotified(db: Db, id: string, now: Date): Promise<void> {
  await db.query('UPDATE runner.alerts SET notified_at = $2, notices = notices + 1 WHERE id = $1', [id, now]);
}

/** Open alerts by rule. */
export async function openAlertCounts(db: Db): Promise<{ rule: string; n: number }[]> {
  const { rows } = await db.query<{ rule: string; n: number }>(
    `SELECT rule, count(*)::int AS n FROM runner.alerts WHERE resolved_at IS NULL GROUP BY rule`,
  );
  return rows;
}
