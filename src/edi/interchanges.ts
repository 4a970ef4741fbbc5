import type pg from 'pg';
import type { Queryable } from './control-numbers.js';

/**
 * The interchange ledger (`edi.interchanges`, `edi.groups`, `edi.transaction_sets`):
 *
 *   inbound:  receiveInterchange → 'received' | 'duplicate'   (the loader then sets 'loaded' or 'rejected')
 *   outbound: recordOutbound     → 'sent'                     (applyFunctionalAck → 'accepted' | 'rejected_by_partner')
 *             overdueInterchanges: 'sent' longer than the partner's ack_overdue_hours
 */

/** What {@link receiveInterchange} records about an inbound file. */
export interface InboundReceipt {
  partner: string;
  isa13: string | number;
  fileName: string;
  sha256: string | null;
  usage: string;
  groupCount: number;
  setCount: number;
}

/**
 * Records an inbound interchange. `duplicate` is true when the partner's ISA13 was already
 * received (and not rejected): acknowledge it again, load nothing. Run it in the load's
 * transaction so a rolled-back load leaves no 'received' row behind.
 */
export async function receiveInterchange(
  db: Queryable,
  r: InboundReceipt,
): Promise<{ id: number; duplicate: boolean }> {
  const { rows } = await db.query<{ id: string; duplicate: boolean }>(
    'SELECT id, duplicate FROM edi.receive_interchange($1, $2, $3, $4, $5, $6, $7)',
    [r.partner, Number(r.isa13), r.fileName, r.sha256, r.usage, r.groupCount, r.setCount],
  );
  return { id: Number(rows[0]!.id), duplicate: rows[0]!.duplicate };
}

/** An outbound interchange as sent. */
export interface OutboundRecord {
  partner: string;
  fileName: string;
  sha256: string | null;
  usage: string;
  isa13: string | number;
  groups: {
    functionalId: string;
    gs06: string | number;
    version: string;
    sets: { st01: string; st02: string; documentKey?: string | null }[];
  }[];
}

/** Records an outbound interchange, its groups and sets, with status 'sent'; returns its id. */
export async function recordOutbound(client: pg.ClientBase, r: OutboundRecord): Promise<number> {
  const setCount = r.groups.reduce((n, g) => n + g.sets.length, 0);
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO edi.interchanges (direction, partner, isa13, status, file_name, sha256, usage, group_count, set_count, sent_at)
     VALUES ('out', $1, $2, 'sent', $3, $4, $5, $6, $7, now()) RETURNING id`,
    [r.partner, Number(r.isa13), r.fileName, r.sha256, r.usage, r.groups.length, setCount],
  );
  const id = Number(rows[0]!.id);
  for (const g of r.groups) {
    const { rows: gr } = await client.query<{ id: string }>(
      `INSERT INTO edi.groups (interchange_id, partner, direction, functional_id, gs06, version, set_count, status)
       VALUES ($1, $2, 'out', $3, $4, $5, $6, 'sent') RETURNING id`,
      [id, r.partner, g.functionalId, Number(g.gs06), g.version, g.sets.length],
    );
    await client.query(
      `INSERT INTO edi.transaction_sets (group_id, st01, st02, document_key, status)
       SELECT $1, st01, st02, key, 'sent' FROM unnest($2::text[], $3::text[], $4::text[]) AS s (st01, st02, key)`,
      [
        gr[0]!.id,
        g.sets.map((s) => s.st01),
        g.sets.map((s) => s.st02),
        g.sets.map((s) => s.documentKey ?? null),
      ],
    );
  }
  return id;
}

/** An outbound interchange still waiting for the partner's 997/999. */
export interface OverdueInterchange {
  id: number;
  partner: string;
  isa13: string;
  fileName: string;
  sentAt: Date;
  hoursWaiting: number;
}

/**
 * Outbound interchanges in status 'sent' for longer than their partner's limit
 * (`ack_overdue_hours` of each profile, passed as `{ partner: hours }`), oldest first.
 */
export async function overdueInterchanges(
  db: Queryable,
  limits: Record<string, number>,
  /** The clock to judge by (the alert rules pass theirs); the database's by default. */
  at?: Date,
): Promise<OverdueInterchange[]> {
  const partners = Object.keys(limits);
  const { rows } = await db.query<{
    id: string;
    partner: string;
    isa13: string;
    file_name: string;
    sent_at: Date;
    hours: string;
  }>(
    `SELECT i.id, i.partner, lpad(i.isa13::text, 9, '0') AS isa13, i.file_name, i.sent_at,
            round(extract(epoch FROM coalesce($3, now()) - i.sent_at) / 3600, 1)::text AS hours
       FROM edi.interchanges i
       JOIN unnest($1::text[], $2::float8[]) AS l (partner, hours) ON l.partner = i.partner
      WHERE i.direction = 'out' AND i.status = 'sent'
        AND i.sent_at < coalesce($3, now()) - make_interval(secs => l.hours * 3600)
      ORDER BY i.sent_at`,
    [partners, partners.map((p) => limits[p]!), at ?? null],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    partner: r.partner,
    isa13: r.isa13,
    fileName: r.file_name,
    sentAt: r.sent_at,
    hoursWaiting: Number(r.hours),
  }));
}
