/**
 * CSV export: batches → csv-stringify (one synchronous call per batch) → `out`, waiting for 'drain'.
 *
 * Formula neutralisation is done here, per column type, rather than by csv-stringify's
 * `escape_formulas`: that option prefixes every *string* starting with `-` (it spares only values
 * that are JS numbers), and our cells are all text, so `-12.50` in a decimal column would become
 * `'-12.50`; passing numbers instead would lose their formatting (`-12.5`). It also leaves a leading
 * line feed alone. Here a value in an `int`/`decimal` column that is a plain number is written as is;
 * anything else starting with `=`, `+`, `-`, `@`, tab, CR or LF (or their full-width forms) gets a
 * leading `'` (OWASP CSV injection).
 *
 * NULL is written as an empty field and an empty string as `""`, the convention PostgreSQL's CSV
 * COPY uses, so an export reads back the same.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import type { Batch, Cell, ColumnType, FormatWriter } from '../stages/types.js';

/** Options of the CSV writer; the same keys as `format: { kind: csv }` plus the export-only ones. */
export const csvWriterOptionsSchema = z.object({
  /** Field separator, one character. @defaultValue `,` */
  delimiter: z.string().length(1).default(','),
  /** Quote character, one character. @defaultValue `"` */
  quote: z.string().length(1).default('"'),
  /** Write a header line with the column names. @defaultValue true */
  header: z.boolean().default(true),
  /** Prefix text that a spreadsheet would run as a formula with `'`. @defaultValue true */
  escape_formulas: z.boolean().default(true),
  /** Start the file with a UTF-8 byte-order mark (Excel then detects UTF-8). @defaultValue false */
  bom: z.boolean().default(false),
  /** Line ending. @defaultValue `lf` */
  record_delimiter: z.enum(['lf', 'crlf']).default('lf'),
});

export type CsvWriterOptions = z.input<typeof csvWriterOptionsSchema>;

/**
 * Characters that make a spreadsheet read a text cell as a formula (OWASP CSV injection), incl.
 * full-width forms. csv/copy-export.ts (formulaAt) tests their UTF-8 bytes: keep the two in step.
 */
const FORMULA_CHARS = '=+-@\t\r\n\uFF1D\uFF0B\uFF0D\uFF20';
const FORMULA_START = new RegExp(`^[${FORMULA_CHARS.replace('-', '\\-')}]`);

/** Text as it must be written so no spreadsheet turns it into a formula: a leading `'` where needed. */
export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** A number as PostgreSQL prints numerics and floats (`-12.50`, `1e+21`, `.5`). */
export const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** Creates a CSV writer; options not given take their defaults. */
export function createCsvWriter(options: CsvWriterOptions = {}): FormatWriter {
  const o = csvWriterOptionsSchema.parse(options);
  return {
    extension: 'csv',
    write: (columns, types, batches, out) => writeCsv(o, columns, types, batches, out),
  };
}

/** The writer's options with their defaults filled in. */
export type CsvWriterConfig = z.output<typeof csvWriterOptionsSchema>;

function stringifyOptionsOf(o: CsvWriterConfig) {
  return {
    delimiter: o.delimiter,
    quote: o.quote,
    // A quote inside a quoted field is doubled (RFC 4180), whatever the quote character:
    // csv-stringify's escape stays `"` otherwise, so with `quote: "'"` it wrote it's as 'it"'s'.
    escape: o.quote,
    record_delimiter: o.record_delimiter === 'crlf' ? '\r\n' : '\n',
    // An empty string is quoted so that it stays distinct from NULL (an empty field). A CR or LF is
    // quoted whatever the record delimiter (RFC 4180): csv-stringify quotes only the delimiter it
    // writes, so a bare CR went out unquoted and split the row for every reader.
    quoted_match: [/^$/, /[\r\n]/] as RegExp[],
    escape_formulas: false,
    eof: true,
  } as const;
}

/** What goes before the first record: the byte-order mark and the header line, as configured. */
export function csvHead(o: CsvWriterConfig, columns: readonly string[]): string {
  let text = o.bom ? '\uFEFF' : '';
  if (o.header)
    text += stringify(
      [columns.map((c) => (o.escape_formulas ? neutraliseFormula(c) : c))],
      stringifyOptionsOf(o),
    );
  return text;
}

async function writeCsv(
  o: CsvWriterConfig,
  columns: readonly string[],
  types: readonly ColumnType[],
  batches: AsyncIterable<Batch>,
  out: Writable,
): Promise<number> {
  const numeric = columns.map((_, i) => types[i] === 'int' || types[i] === 'decimal');
  const stringifyOptions = stringifyOptionsOf(o);
  const cell = (v: Cell, i: number): string | null => {
    if (v === null) return null;
    if (!o.escape_formulas || (numeric[i] && NUMBER_TEXT.test(v))) return v;
    return neutraliseFormula(v);
  };

  let failure: Error | null = null;
  const onError = (err: Error): void => {
    failure ??= err;
  };
  out.on('error', onError);
  let written = 0;
  try {
    const first = csvHead(o, columns);
    if (first !== '') await writeChunk(out, first, () => failure);
    // The default quote: the batch is encoded here, as csv-stringify would (test/csv-writer.test.ts
    // holds them to the same text), at a fraction of its cost. Another quote keeps csv-stringify,
    // whose escaping of a `"` then differs.
    const encode = o.quote === '"' ? recordEncoder(o.delimiter, stringifyOptions.record_delimiter) : null;
    for await (const batch of batches) {
      const rows = batch.rows;
      if (rows.length === 0) continue;
      const text =
        encode !== null
          ? encode(rows, columns.length, cell)
          : stringify(
              rows.map((row) => columns.map((_, i) => cell(row[i] ?? null, i))),
              stringifyOptions,
            );
      await writeChunk(out, text, () => failure);
      written += rows.length;
    }
    if (failure) throw failure;
    out.end();
    await finished(out);
  } finally {
    out.off('error', onError);
  }
  if (failure) throw failure;
  return written;
}

/**
 * CSV text of rows with `"` as the quote, as csv-stringify writes it with the options above: NULL
 * an empty field; a value quoted (its quotes doubled) when it is empty or holds the delimiter, a
 * quote, a CR or an LF; every record ended by `eol`. `cell` turns a stored value into the written one.
 */
export function recordEncoder(
  delimiter: string,
  eol: string,
): (rows: readonly Cell[][], width: number, cell: (v: Cell, i: number) => string | null) => string {
  const special = new RegExp(`[${delimiter.replace(/[\\\]^-]/g, '\\$&')}"\r\n]`);
  return (rows, width, cell) => {
    let out = '';
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      for (let i = 0; i < width; i++) {
        if (i > 0) out += delimiter;
        const v = cell(row[i] ?? null, i);
        if (v === null) continue;
        out += v === '' || special.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
      }
      out += eol;
    }
    return out;
  };
}

/**
 * Resolves once `s` (the destination, or a stream in front of it) drains, or the destination `out`
 * errors or closes: back-pressure, without waiting for ever on a destination that went away.
 */
export async function untilDrained(s: NodeJS.EventEmitter, out: Writable): Promise<void> {
  const ac = new AbortController();
  const { signal } = ac;
  try {
    await Promise.race([
      once(s, 'drain', { signal }),
      once(out, 'error', { signal }),
      once(out, 'close', { signal }),
    ]);
  } finally {
    ac.abort();
  }
}

/** Writes `chunk`, waiting for 'drain' when `out` asks for it. */
export async function writeChunk(
  out: Writable,
  chunk: string | Buffer,
  failed: () => Error | null,
): Promise<void> {
  const err = failed();
  if (err) throw err;
  if (out.destroyed) throw new Error('csv export: the output stream was closed before the file was complete');
  if (out.write(chunk)) return;
  await untilDrained(out, out);
  const after = failed();
  if (after) throw after;
}
