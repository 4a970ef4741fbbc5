import type pg from 'pg';

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
  db: pg.Pool,
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
