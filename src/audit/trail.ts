import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { currentUser } from '../runs/history.js';

/**
 * The audit trail, audit.events (sql/000190): append-only, each row chained to the previous one.
 *
 *   audit.append ─► LOCK (appends serialised) ─► seq = last + 1, prev_hash = last hash
 *                 ─► hash = sha256(payload(seq, at, actor, host, action, subject, detail, prev_hash))
 *
 * PostgreSQL refuses UPDATE, DELETE and TRUNCATE on the table (a trigger), so changing a row takes
 * a superuser disabling the trigger; what such a person changes, `verifyAudit` finds.
 */

/** The first row's previous hash. */
export const GENESIS = '0'.repeat(64);

/** An action to record. `subject` names what it acted on, e.g. `run:42`, `person:E123`. */
export interface AuditEvent {
  action: string;
  subject: string;
  detail?: Record<string, unknown>;
  /** @defaultValue ERP_USER or the OS user */
  actor?: string;
}

/** Appends one event in the caller's transaction (or on its own with a pool); returns its seq. */
export async function appendAudit(db: pg.Pool | pg.PoolClient, e: AuditEvent): Promise<number> {
  const { rows } = await db.query<{ seq: string }>('SELECT audit.append($1, $2, $3, $4, $5::jsonb) AS seq', [
    e.actor ?? currentUser(),
    hostname(),
    e.action,
    e.subject,
    JSON.stringify(e.detail ?? {}),
  ]);
  return Number(rows[0]!.seq);
}

/** A row as read for verifying and exporting: every hashed column as the text the hash covers. */
export interface AuditRow {
  seq: string;
  at: string;
  actor: string;
  host: string;
  action: string;
  subject: string;
  detail: string;
  prev_hash: string;
  hash: string;
}

/** The hash a row must carry: the same payload as audit.payload builds in SQL. */
export function hashOf(r: Omit<AuditRow, 'hash'>, seq = r.seq): string {
  const payload = JSON.stringify([seq, r.at, r.actor, r.host, r.action, r.subject, r.detail, r.prev_hash]);
  return createHash('sha256').update(payload, 'utf8').digest('hex');
}

const SELECT = `SELECT seq::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
  actor, host, action, subject, detail::text AS detail, prev_hash, hash FROM audit.events`;

/**
 * The rows in seq order, `batch` at a time (keyset pages: memory stays flat however long the trail),
 * optionally only those with `from <= at < to`.
 */
export async function* auditRows(
  pool: pg.Pool,
  range: { from?: Date; to?: Date } = {},
  batch = 2000,
): AsyncGenerator<AuditRow[]> {
  let after = 0n;
  for (;;) {
    const { rows } = await pool.query<AuditRow>(
      `${SELECT} WHERE seq > $1 AND ($2::timestamptz IS NULL OR at >= $2) AND ($3::timestamptz IS NULL OR at < $3)
       ORDER BY audit.events.seq LIMIT $4`,
      [after.toString(), range.from ?? null, range.to ?? null, batch],
    );
    if (rows.length === 0) return;
    yield rows;
    after = BigInt(rows[rows.length - 1]!.seq);
  }
}

/** What verification found: the chain's length and head, and each broken row, named. */
export interface VerifyResult {
  rows: number;
  head: { seq: string; hash: string } | null;
  problems: string[];
}

/** How far from its place a moved row is looked for (to say "reordered" rather than "edited"). */
const MOVED_WINDOW = 64;

/**
 * Walks the whole chain in seq order and names every row that breaks it:
 * - a gap in seq: rows deleted;
 * - a row whose content does not give its hash: edited (or, when its hash is right for another
 *   seq nearby, moved there: the rows were reordered);
 * - a row whose prev_hash is not the previous row's hash: a row before it was deleted, edited
 *   along with its hash, or the rows were reordered.
 * A row deleted at the very end leaves no trace in the chain itself: compare the head printed
 * here with the one an earlier verify or export gave.
 */
export async function verifyAudit(pool: pg.Pool, maxProblems = 50, batch = 2000): Promise<VerifyResult> {
  const problems: string[] = [];
  let prev: AuditRow | null = null;
  let count = 0;
  for await (const page of auditRows(pool, {}, batch)) {
    for (const row of page) {
      count++;
      const seq = BigInt(row.seq);
      const expectedSeq = prev ? BigInt(prev.seq) + 1n : 1n;
      if (seq !== expectedSeq) {
        const missing = seq - expectedSeq === 1n ? `seq ${expectedSeq}` : `seq ${expectedSeq}–${seq - 1n}`;
        problems.push(
          `${missing} missing: deleted (the chain goes from seq ${prev?.seq ?? 'start'} to ${seq})`,
        );
      }
      if (hashOf(row) !== row.hash) {
        const movedFrom = findOriginalSeq(row, seq);
        problems.push(
          movedFrom !== null
            ? `seq ${seq} (${row.action} ${row.subject}): the row written as seq ${movedFrom} is here — rows were reordered`
            : `seq ${seq} (${row.action} ${row.subject}): its content does not match its hash — the row was edited`,
        );
      }
      const expectedPrev = prev ? prev.hash : GENESIS;
      if (row.prev_hash !== expectedPrev) {
        problems.push(
          `seq ${seq} (${row.action} ${row.subject}): its previous hash is not the hash of seq ${prev?.seq ?? '(start)'} — a row before it was deleted, rewritten or moved`,
        );
      }
      prev = row;
      if (problems.length >= maxProblems) return { rows: count, head: headOf(prev), problems };
    }
  }
  return { rows: count, head: headOf(prev), problems };
}

function headOf(r: AuditRow | null): VerifyResult['head'] {
  return r ? { seq: r.seq, hash: r.hash } : null;
}

function findOriginalSeq(row: AuditRow, seq: bigint): bigint | null {
  for (let d = 1n; d <= BigInt(MOVED_WINDOW); d++) {
    for (const s of [seq - d, seq + d]) {
      if (s >= 1n && hashOf(row, s.toString()) === row.hash) return s;
    }
  }
  return null;
}
