/**
 * The columns compliance.encrypted_columns (sql/000290) lists, and the row transforms that encrypt
 * them on the way into PostgreSQL and decrypt them on the way out of an export that asks for it.
 */
import type pg from 'pg';
import { splitQualified } from '../db/pool.js';
import type { Cell } from '../stages/types.js';
import { decryptValue, encryptValue, requireKeyring, type Keyring } from './keys.js';

/** An encrypted column: `schema.table` and column. */
export interface EncryptedColumn {
  table: string;
  column: string;
}

/** Every encrypted column, in a stable order. */
export async function encryptedColumns(db: pg.Pool | pg.PoolClient): Promise<EncryptedColumn[]> {
  const { rows } = await db.query<EncryptedColumn>(
    `SELECT table_name AS table, column_name AS column FROM compliance.encrypted_columns ORDER BY 1, 2`,
  );
  return rows;
}

/** The encrypted columns of `table` (`schema.table`, or `table` in public). */
export async function encryptedColumnsOf(db: pg.PoolClient, table: string): Promise<Set<string>> {
  const { schema, table: name } = splitQualified(table);
  const { rows } = await db.query<{ column_name: string }>(
    `SELECT column_name FROM compliance.encrypted_columns WHERE table_name = $1`,
    [`${schema}.${name}`],
  );
  return new Set(rows.map((r) => r.column_name));
}

/**
 * A function that rewrites rows in place: the cells at `indexes` through `fn`. The keyring is
 * loaded at the first non-empty value, so a file without such values needs no key.
 */
function rowMapper(
  indexes: readonly number[],
  what: (i: number) => string,
  fn: (ring: Keyring, value: string, i: number) => string,
): ((rows: Cell[][]) => void) | null {
  if (indexes.length === 0) return null;
  let ring: Keyring | null = null;
  return (rows) => {
    for (const row of rows) {
      for (const i of indexes) {
        const v = row[i];
        if (v === null || v === undefined || v === '') continue;
        ring ??= requireKeyring(what(i));
        row[i] = fn(ring, v, i);
      }
    }
  };
}

/** Encrypts, in place, the cells of `columns` that `table` keeps encrypted (`encrypted`, from {@link encryptedColumnsOf}); null when none are. */
export function encryptorFor(
  encrypted: ReadonlySet<string>,
  table: string,
  columns: readonly string[],
): ((rows: Cell[][]) => void) | null {
  const indexes = columns.flatMap((c, i) => (encrypted.has(c) ? [i] : []));
  return rowMapper(
    indexes,
    (i) => `${table}.${columns[i]}`,
    (ring, v) => encryptValue(ring, v),
  );
}

/** Decrypts, in place, the cells of the named result columns; `where` names the export in errors. */
export function decryptorFor(
  columns: readonly string[],
  decrypt: readonly string[],
  where: string,
): ((rows: Cell[][]) => void) | null {
  const indexes = columns.flatMap((c, i) => (decrypt.includes(c) ? [i] : []));
  return rowMapper(
    indexes,
    (i) => `${where}: column ${columns[i]}`,
    (ring, v, i) => decryptValue(ring, v, `${where}: column ${columns[i]}`),
  );
}
