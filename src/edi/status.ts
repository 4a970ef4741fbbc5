import type pg from 'pg';
import type { Partner } from '../partners/profile.js';
import { overdueInterchanges, type OverdueInterchange } from './interchanges.js';

/**
 * What `erp edi status` shows: outbound interchanges whose 997/999 is overdue (each partner's
 * `ack_overdue_hours`), files committed as sent but not yet delivered, inbound files that could
 * not be read, and recent interchanges.
 */

/** One recent interchange, in either direction. */
export interface RecentInterchange {
  id: number;
  direction: 'in' | 'out';
  partner: string;
  isa13: string;
  status: string;
  fileName: string;
  sets: number;
  at: Date;
  ackIsa13: string | null;
  /** out: the partner's TA1 about it, `R 001` (TA104 and TA105), or null. */
  ta1: string | null;
  message: string | null;
}

/** The EDI status of the declared partners. */
export interface EdiStatus {
  partners: { name: string; ackOverdueHours: number }[];
  overdue: OverdueInterchange[];
  /** Outbound files committed as sent whose upload has not happened yet. */
  undelivered: { partner: string; fileName: string; since: Date }[];
  recent: RecentInterchange[];
  /** Inbound files that could not be read at all (last 7 days), newest first. */
  failedFiles: { partner: string; fileName: string; error: string; movedTo: string | null; at: Date }[];
}

/** Reads the status of `partners` (recent interchanges: the last `limit`). */
export async function ediStatus(
  db: Pick<pg.Pool, 'query'>,
  partners: readonly Partner[],
  options: { limit?: number } = {},
): Promise<EdiStatus> {
  const names = partners.map((p) => p.name);
  const limits = Object.fromEntries(partners.map((p) => [p.name, p.x12.ack_overdue_hours]));
  const overdue = await overdueInterchanges(db, limits);
  const { rows: undelivered } = await db.query<{ partner: string; file_name: string; created_at: Date }>(
    `SELECT f.partner, f.file_name, i.created_at
       FROM edi.outbound_files f JOIN edi.interchanges i ON i.id = f.interchange_id
      WHERE f.delivered_at IS NULL AND f.partner = ANY ($1::text[])
      ORDER BY i.created_at`,
    [names],
  );
  const { rows } = await db.query<{
    id: string;
    direction: 'in' | 'out';
    partner: string;
    isa13: string;
    status: string;
    file_name: string;
    set_count: number;
    at: Date;
    ack_isa13: string | null;
    ta1: string | null;
    message: string | null;
  }>(
    `SELECT i.id, i.direction, i.partner, lpad(i.isa13::text, 9, '0') AS isa13, i.status, i.file_name, i.set_count,
            coalesce(i.sent_at, i.created_at) AS at, lpad(i.ack_isa13::text, 9, '0') AS ack_isa13,
            CASE WHEN i.ta1_code IS NOT NULL THEN i.ta1_code || ' ' || i.ta1_note END AS ta1, i.message
       FROM edi.interchanges i
      WHERE i.partner = ANY ($1::text[])
      ORDER BY i.id DESC
      LIMIT $2`,
    [names, options.limit ?? 20],
  );
  const { rows: failed } = await db.query<{
    partner: string;
    file_name: string;
    error: string;
    moved_to: string | null;
    created_at: Date;
  }>(
    `SELECT partner, file_name, error, moved_to, created_at FROM edi.failed_files
      WHERE partner = ANY ($1::text[]) AND created_at > now() - interval '7 days'
      ORDER BY id DESC LIMIT $2`,
    [names, options.limit ?? 20],
  );
  return {
    failedFiles: failed.map((f) => ({
      partner: f.partner,
      fileName: f.file_name,
      error: f.error,
      movedTo: f.moved_to,
      at: f.created_at,
    })),
    partners: partners.map((p) => ({ name: p.name, ackOverdueHours: p.x12.ack_overdue_hours })),
    overdue,
    undelivered: undelivered.map((u) => ({ partner: u.partner, fileName: u.file_name, since: u.created_at })),
    recent: rows.map((r) => ({
      id: Number(r.id),
      direction: r.direction,
      partner: r.partner,
      isa13: r.isa13,
      status: r.status,
      fileName: r.file_name,
      sets: r.set_count,
      at: r.at,
      ackIsa13: r.ack_isa13,
      ta1: r.ta1,
      message: r.message,
    })),
  };
}
