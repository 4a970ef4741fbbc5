/**
 * The columns compliance.encrypted_columns (sql/000290) lists, and the row transforms that encrypt
 * them on the way into PostgreSQL and decrypt them on the way out of an export that asks for it,
 * a batch's values of a column at a time (src/compliance/keys.ts `encryptValues`, `decryptValues`).
 */
import type pg from 'pg';
import { splitQualified } from '../db/pool.js';
import type { Cell, Sealer } from '../stages/types.js';
import { decryptValues, encryptValues, requireKeyring, type Keyring } from './keys.js';

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
export async function encryptedColumnsOf(db: pg.Pool | pg.PoolClient, table: string): Promise<Set<string>> {
  const { schema, table: name } = splitQualified(table);
  const { rows } = await db.query<{ column_name: string }>(
    `SELECT column_name FROM compliance.encrypted_columns WHERE table_name = $1`,
    [`${schema}.${name}`],
  );
  return new Set(rows.map((r) => r.column_name));
}

/** The sealer for `columns` of `table` (`encrypted`: its encrypted columns); null when none is. */
export function sealerFor(
  table: string,
  columns: readonly string[],
  encrypted: ReadonlySet<string>,
): Sealer | null {
  const indexes = columns.flatMap((c, i) => (encrypted.has(c) ? [i] : []));
  if (indexes.length === 0) return null;
  let ring: Keyring | null = null;
  return {
    indexes,
    seal(values) {
      if (values.length === 0) return [];
      ring ??= requireKeyring(`${table}.${columns[indexes[0]!]}`);
      return encryptValues(ring, values);
    },
  };
}

/** A cell that holds a value to encrypt or decrypt: not NULL, not empty. */
export function isFilled(v: Cell | undefined): v is string {
  return v !== null && v !== undefined && v !== '';
}

/** Applies `fn` to the non-empty cells at `indexes` of every row, a column's values at a time. */
function mapCells(
  rows: Cell[][],
  indexes: readonly number[],
  fn: (values: string[], index: number) => string[],
): void {
  for (const i of indexes) {
    const values: string[] = [];
    for (const row of rows) {
      const v = row[i];
      if (isFilled(v)) values.push(v);
    }
    if (values.length === 0) continue;
    const out = fn(values, i);
    let k = 0;
    for (const row of rows) {
      const v = row[i];
      if (isFilled(v)) row[i] = out[k++]!;
    }
  }
}

/** Encrypts, in place, the cells of the sealer's columns. */
export function sealRows(sealer: Sealer, rows: Cell[][]): void {
  // One call for all the columns: one batch, one keystream.
  const values: string[] = [];
  for (const row of rows)
    for (const i of sealer.indexes) {
      const v = row[i];
      if (isFilled(v)) values.push(v);
    }
  if (values.length === 0) return;
  const out = sealer.seal(values);
  let k = 0;
  for (const row of rows)
    for (const i of sealer.indexes) {
      const v = row[i];
      if (isFilled(v)) row[i] = out[k++]!;
    }
}

/** Decrypts, in place, the cells of the named result columns; `where` names the export in errors. */
export function decryptorFor(
  columns: readonly string[],
  decrypt: readonly string[],
  where: string,
): ((rows: Cell[][]) => void) | null {
  const indexes = columns.flatMap((c, i) => (decrypt.includes(c) ? [i] : []));
  if (indexes.length === 0) return null;
  let ring: Keyring | null = null;
  return (rows) =>
    mapCells(rows, indexes, (values, i) => {
      const what = `${where}: column ${columns[i]}`;
      ring ??= requireKeyring(what);
      return decryptValues(ring, values, what);
    });
}
