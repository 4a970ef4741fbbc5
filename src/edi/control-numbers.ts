import type pg from 'pg';
import { MAX_CONTROL_NUMBER } from '../x12/writer.js';

/** Anything that runs a query: a Pool (preferred: the allocation commits on its own) or a client. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.ClientBase, 'query'>;

/** Control numbers for one outbound interchange. */
export interface ControlNumbers {
  /** ISA13 (and IEA02). */
  isa13: number;
  /** One GS06 per group, in order. */
  gs06: number[];
  /** One ST02 per transaction set, in order. */
  st02: number[];
}

/** The `count` numbers of a range ending at `last`, wrapping from 999999999 to 1. */
function range(last: number, count: number): number[] {
  const out: number[] = [];
  for (let i = count - 1; i >= 0; i--) {
    out.push(((((last - 1 - i) % MAX_CONTROL_NUMBER) + MAX_CONTROL_NUMBER) % MAX_CONTROL_NUMBER) + 1);
  }
  return out;
}

/**
 * Allocates the control numbers of one outbound interchange for `partner`: one ISA13, `groups`
 * GS06 and `sets` ST02, from the per-partner counters in `edi.control_numbers` (one statement,
 * `edi.allocate_control_numbers`). Numbers never repeat across workers or restarts; after
 * 999999999 each counter continues at 1.
 *
 * Pass a Pool, or a client outside any transaction: the numbers must be committed before the
 * file is sent, or a rollback would hand them out again.
 */
export async function allocateControlNumbers(
  db: Queryable,
  partner: string,
  counts: { groups: number; sets: number },
): Promise<ControlNumbers> {
  for (const [name, n] of Object.entries(counts)) {
    if (!Number.isInteger(n) || n < 0 || n > 1_000_000) {
      throw new RangeError(`allocateControlNumbers: ${name} must be an integer from 0 to 1000000, got ${n}`);
    }
  }
  const { rows } = await db.query<{ isa13: string; gs06: string; st02: string }>(
    'SELECT isa13, gs06, st02 FROM edi.allocate_control_numbers($1, $2, $3)',
    [partner, counts.groups, counts.sets],
  );
  const row = rows[0]!;
  return {
    isa13: Number(row.isa13),
    gs06: range(Number(row.gs06), counts.groups),
    st02: range(Number(row.st02), counts.sets),
  };
}
