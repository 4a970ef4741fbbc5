/**
 * `erp keys rotate`: every value of every encrypted column that is not under the current key (an
 * older key, or clear text written before encryption) is decrypted and encrypted again under it.
 *
 *   per column: ┌► BEGIN; SELECT ctid, value … WHERE not under current key LIMIT batch FOR UPDATE SKIP LOCKED
 *               │   decrypt, encrypt (in Node: the keys never reach PostgreSQL); UPDATE … FROM unnest; COMMIT
 *               └── until no row is left
 *
 * Each batch commits on its own, so a rotation killed at any point has lost nothing: the rows of
 * the batch in flight are rolled back, still under their old key, and the next `erp keys rotate`
 * picks up exactly the rows not yet under the current key.
 */
import type pg from 'pg';
import { appendAudit } from '../audit/trail.js';
import { quoteIdent, quoteQualified } from '../db/pool.js';
import { encryptedColumns, type EncryptedColumn } from './encrypted-columns.js';
import { ENVELOPE_PREFIX, decryptValues, encryptValues, type Keyring } from './keys.js';

/** Progress of one column. */
export interface RotationProgress {
  column: string;
  done: number;
  /** Rows not yet under the current key when this column was started. */
  total: number;
}

/** What a rotation did, per column. */
export interface RotationResult {
  key: string;
  columns: { column: string; rotated: number }[];
}

function nameOf(c: EncryptedColumn): string {
  return `${c.table}.${c.column}`;
}

/** How many values of a column are clear text, and how many under each key. */
export async function keyUsage(
  pool: pg.Pool,
): Promise<{ column: string; key: string | null; values: number }[]> {
  const out: { column: string; key: string | null; values: number }[] = [];
  for (const c of await encryptedColumns(pool)) {
    const col = quoteIdent(c.column);
    const { rows } = await pool.query<{ key: string | null; n: string }>(
      `SELECT CASE WHEN starts_with(${col}, $1) THEN split_part(${col}, ':', 3) END AS key, count(*) AS n
         FROM ${quoteQualified(c.table)} WHERE ${col} IS NOT NULL AND ${col} <> '' GROUP BY 1 ORDER BY 1 NULLS FIRST`,
      [ENVELOPE_PREFIX],
    );
    for (const r of rows) out.push({ column: nameOf(c), key: r.key, values: Number(r.n) });
  }
  return out;
}

/** Re-encrypts every value not under `ring.current`, `batch` rows per transaction. */
export async function rotateKeys(
  pool: pg.Pool,
  ring: Keyring,
  opts: { batch: number; onProgress?: (p: RotationProgress) => void; signal?: AbortSignal },
): Promise<RotationResult> {
  const columns = await encryptedColumns(pool);
  const current = `${ENVELOPE_PREFIX}${ring.current}:`;
  await appendAudit(pool, {
    action: 'keys.rotation_started',
    subject: `key:${ring.current}`,
    detail: { columns: columns.map(nameOf) },
  });
  const result: RotationResult = { key: ring.current, columns: [] };
  for (const c of columns) {
    const table = quoteQualified(c.table);
    const col = quoteIdent(c.column);
    const pending = `${col} IS NOT NULL AND ${col} <> '' AND NOT starts_with(${col}, $1)`;
    const { rows: count } = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${table} WHERE ${pending}`,
      [current],
    );
    const total = Number(count[0]!.n);
    let done = 0;
    opts.onProgress?.({ column: nameOf(c), done, total });
    for (;;) {
      if (opts.signal?.aborted) break;
      const client = await pool.connect();
      let n = 0;
      try {
        await client.query('BEGIN');
        const { rows } = await client.query<{ tid: string; value: string }>(
          `SELECT ctid::text AS tid, ${col} AS value FROM ${table} WHERE ${pending} LIMIT $2 FOR UPDATE SKIP LOCKED`,
          [current, opts.batch],
        );
        n = rows.length;
        if (n > 0) {
          const values = encryptValues(
            ring,
            decryptValues(
              ring,
              rows.map((r) => r.value),
              nameOf(c),
            ),
          );
          await client.query(
            `UPDATE ${table} AS t SET ${col} = v.value FROM unnest($1::tid[], $2::text[]) AS v (tid, value) WHERE t.ctid = v.tid`,
            [rows.map((r) => r.tid), values],
          );
        }
        await client.query('COMMIT');
        client.release();
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release(true);
        throw err;
      }
      if (n === 0) break;
      done += n;
      opts.onProgress?.({ column: nameOf(c), done, total: Math.max(total, done) });
    }
    result.columns.push({ column: nameOf(c), rotated: done });
  }
  await appendAudit(pool, {
    action: 'keys.rotated',
    subject: `key:${ring.current}`,
    detail: {
      complete: !opts.signal?.aborted,
      rotated: Object.fromEntries(result.columns.map((c) => [c.column, c.rotated])),
    },
  });
  return result;
}
