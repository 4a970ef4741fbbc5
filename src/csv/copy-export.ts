/**
 * CSV export written by PostgreSQL: when the server's `COPY (…) TO STDOUT (FORMAT csv)` is, but for
 * formula neutralisation, the bytes the CSV writer (writer.ts) would write, the rows never become
 * JavaScript values.
 *
 *   header (writer.ts csvHead) ──► out
 *   COPY (SELECT <columns, booleans ::text> FROM (query) erp_export) TO STDOUT (FORMAT csv)
 *        ──bytes──► FormulaGuard: a `'` before each field a spreadsheet would run ──► out ('drain')
 *
 * Why the bytes are the writer's:
 * - NULL is an empty field, an empty string `""`; a value holding the delimiter, `"`, CR or LF is
 *   quoted with its quotes doubled: COPY's CSV defaults with `"` as the quote, and the writer's rules.
 *   Another quote character or CRLF line ends (COPY to a client ends lines with LF) take the general
 *   path, as does a `'` delimiter (a neutralised field would then need quotes).
 * - The values are COPY's text output either way (the general path reads COPY's text format); only
 *   a boolean differs, `true`/`false` in the writer's words: `c::text`.
 * - A single-column COPY quotes a value `\.` (its end-of-data marker), which the writer does not:
 *   one column takes the general path.
 * - Formula neutralisation (OWASP CSV injection) is applied to the bytes, per column as the writer
 *   applies it per value: a field whose first character is one of FORMULA_CHARS gets a leading `'`,
 *   except in an int column (always a plain number) and in a decimal column unless it is
 *   `-Infinity`, the one value of those types that is not a plain number.
 *
 * test/csv-copy-export.test.ts holds the two paths to identical bytes on generated tables.
 */
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import pg from 'pg';
import { columnTypeOf } from '../stages/source-postgres.js';
import type { CsvCopySource, FormatWriter } from '../stages/types.js';
import { csvHead, writeChunk, type CsvWriterConfig } from './writer.js';

const BOOL = 16;
const QUOTE = 0x22;
const LF = 0x0a;

/** How a column's fields are neutralised. */
const enum Guard {
  /** Never: an int (or formulas not escaped). */
  None = 0,
  /** Only `-Infinity`: a decimal. */
  NotANumber = 1,
  /** Any field starting with a formula character. */
  Text = 2,
}

/** How COPY is to be asked for a writer's CSV: one expression per column, and each column's guard. */
export interface CopyPlan {
  select: string[];
  guards: Uint8Array;
}

/** The COPY that stands in for the writer `o`, or undefined when PostgreSQL's CSV would differ. */
export function copyPlan(
  o: CsvWriterConfig,
  columns: readonly string[],
  typeOids: readonly number[],
): CopyPlan | undefined {
  const d = o.delimiter;
  const delimiterOk = /^[\x20-\x7E\t]$/.test(d) && !/[A-Za-z0-9\\."']/.test(d);
  if (o.quote !== '"' || o.record_delimiter !== 'lf' || !delimiterOk) return undefined;
  if (columns.length < 2 || typeOids.length !== columns.length) return undefined;
  const guards = new Uint8Array(columns.length);
  const select = columns.map((name, i) => {
    const c = `erp_export.${pg.escapeIdentifier(name)}`;
    const type = columnTypeOf(typeOids[i]!);
    guards[i] =
      !o.escape_formulas || type === 'int' ? Guard.None : type === 'decimal' ? Guard.NotANumber : Guard.Text;
    return typeOids[i] === BOOL ? `${c}::text` : c;
  });
  return { select, guards };
}

/**
 * Puts a `'` before every field of COPY's CSV that the writer would neutralise, and counts the
 * records. Fed the COPY's bytes chunk by chunk; keeps the last few bytes of a chunk for the next,
 * since deciding on a field needs its first three bytes (a full-width form is three in UTF-8).
 */
export class FormulaGuard {
  /** Records seen so far. */
  rows = 0;
  private col = 0;
  private atStart = true;
  private quoted = false;
  private carry: Buffer | null = null;

  /** 1 for the bytes that end an unquoted field: the delimiter and LF. */
  private readonly ends = new Uint8Array(256);

  constructor(
    private readonly guards: Uint8Array,
    delimiter: number,
  ) {
    this.ends[delimiter] = 1;
    this.ends[LF] = 1;
  }

  /** The bytes to write for `chunk`; `last` when it is the end of the COPY (then `chunk` may be empty). */
  push(chunk: Buffer, last = false): Buffer {
    const buf = this.carry === null ? chunk : Buffer.concat([this.carry, chunk]);
    const len = buf.length;
    const limit = last ? len : len - 4;
    const guards = this.guards;
    const ends = this.ends;
    let inserts: number[] | null = null;
    let { col, atStart, quoted, rows } = this;
    let i = 0;
    // Tight inner loops over the bytes of a value, which V8 compiles well; Buffer#indexOf costs more
    // per call than the few bytes a value holds.
    while (i < limit) {
      if (quoted) {
        while (i < limit && buf[i] !== QUOTE) i++;
        if (i >= limit) break;
        if (buf[i + 1] === QUOTE)
          i += 2; // a doubled quote inside the value
        else {
          quoted = false;
          i++;
        }
        continue;
      }
      if (atStart) {
        atStart = false;
        const guard = guards[col]!;
        if (buf[i] === QUOTE) {
          quoted = true;
          if (guard !== Guard.None && formulaAt(buf, i + 1, guard)) (inserts ??= []).push(i + 1);
          i++;
          continue;
        }
        if (guard !== Guard.None && !ends[buf[i]!] && formulaAt(buf, i, guard)) (inserts ??= []).push(i);
      }
      while (i < limit && !ends[buf[i]!]) i++;
      if (i >= limit) break;
      if (buf[i] === LF) {
        rows++;
        col = 0;
      } else col++;
      atStart = true;
      i++;
    }
    this.col = col;
    this.atStart = atStart;
    this.quoted = quoted;
    this.rows = rows;
    this.carry = i < len ? buf.subarray(i) : null;
    const done = i < len ? buf.subarray(0, i) : buf;
    if (inserts === null) return done;
    const parts: Buffer[] = [];
    let from = 0;
    for (const at of inserts) {
      parts.push(done.subarray(from, at), APOSTROPHE);
      from = at;
    }
    parts.push(done.subarray(from));
    return Buffer.concat(parts);
  }

  /** True when the bytes ended where a record ends: anything else means they were misread. */
  get complete(): boolean {
    return this.carry === null && !this.quoted && this.atStart && this.col === 0;
  }
}

const APOSTROPHE = Buffer.from("'");

/**
 * Does the value at `at` start as the writer's neutralisation rule for `guard` says it must not?
 * The characters are csv/writer.ts's FORMULA_CHARS, as UTF-8 bytes: keep the two in step.
 */
function formulaAt(buf: Buffer, at: number, guard: number): boolean {
  const c = buf[at];
  if (guard === Guard.NotANumber) return c === 0x2d && buf[at + 1] === 0x49; // -I(nfinity)
  switch (c) {
    case 0x3d: // =
    case 0x2b: // +
    case 0x2d: // -
    case 0x40: // @
    case 0x09:
    case 0x0d:
    case 0x0a:
      return true;
    case 0xef: {
      // U+FF0B, U+FF0D, U+FF1D, U+FF20 (full-width + - = @) in UTF-8: EF BC 8B/8D/9D/A0.
      const c2 = buf[at + 2];
      return buf[at + 1] === 0xbc && (c2 === 0x8b || c2 === 0x8d || c2 === 0x9d || c2 === 0xa0);
    }
    default:
      return false;
  }
}

/** `fromCopy` of the CSV format: the export from PostgreSQL's CSV when it is the writer's bytes. */
export function csvFromCopy(o: CsvWriterConfig): NonNullable<FormatWriter['fromCopy']> {
  return (columns, copy) => {
    const plan = copyPlan(o, columns, copy.typeOids);
    if (plan === undefined) return undefined;
    return (out, onRows) => writeCopied(csvHead(o, columns), copy, plan, o.delimiter, out, onRows);
  };
}

async function writeCopied(
  head: string,
  copy: CsvCopySource,
  plan: CopyPlan,
  delimiter: string,
  out: Writable,
  onRows: (n: number) => void,
): Promise<number> {
  let failure: Error | null = null;
  const onError = (err: Error): void => {
    failure ??= err;
  };
  const failed = (): Error | null => failure;
  out.on('error', onError);
  try {
    if (head !== '') await writeChunk(out, head, failed);
    const { chunks, rowCount } = copy.stream(plan.select, delimiter);
    const guard = new FormulaGuard(plan.guards, delimiter.charCodeAt(0));
    for await (const chunk of chunks) {
      const bytes = guard.push(chunk);
      if (bytes.length > 0) await writeChunk(out, bytes, failed);
      onRows(guard.rows);
    }
    const rest = guard.push(Buffer.alloc(0), true);
    if (rest.length > 0) await writeChunk(out, rest, failed);
    const rows = rowCount();
    if (!guard.complete || rows !== guard.rows) {
      throw new Error(
        `csv export: COPY sent ${rows ?? 'no count of'} rows but ${guard.rows} records were read from its CSV`,
      );
    }
    if (failure) throw failure;
    out.end();
    await finished(out);
    onRows(rows);
    return rows;
  } finally {
    out.off('error', onError);
  }
}
