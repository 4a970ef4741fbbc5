import type { Readable } from 'node:stream';
import { z } from 'zod';
import { CsvTokenizer, type Field } from '../csv/tokenizer.js';
import { UserError } from '../errors.js';
import { csvFromCopy } from '../csv/copy-export.js';
import { createCsvWriter, csvWriterOptionsSchema } from '../csv/writer.js';
import { StrictDecoder } from '../csv/text-decode.js';
import { BatchBuffer } from './batch-buffer.js';
import { cleanOptions } from './clean.js';
import type { Batch, CopyDialect, FormatReader, FormatWriter, RejectFn, StageKind } from './types.js';

const ENCODINGS = ['utf-8', 'latin1', 'windows-1252', 'utf-16le'] as const;

/** `format: { kind: csv }` — delimited text, RFC 4180 quoting. */
export const csvFormatSchema = z
  .object({
    kind: z.literal('csv'),
    ...cleanOptions,
    /** Field separator, one character. */
    delimiter: z.string().length(1).default(','),
    /** Quote character, one character; doubled inside a quoted field. */
    quote: z.string().length(1).default('"'),
    /** The first record names the columns. */
    header: z.boolean().default(true),
    /** Column names in file order; required without a header, and replaces the header's names with one. */
    columns: z.array(z.string().min(1)).min(1).optional(),
    /** Text encoding of the file. A UTF-8 or UTF-16 byte-order mark is dropped. */
    encoding: z.enum(ENCODINGS).default('utf-8'),
    /**
     * A byte sequence that is not valid in `encoding`: `reject` rejects its row (naming the byte
     * offset and the bytes); `replace` loads U+FFFD in its place. A NUL byte is always a reject.
     */
    on_invalid_encoding: z.enum(['reject', 'replace']).default('reject'),
    /** Lines to skip before the header (report titles and the like). */
    skip_lines: z.number().int().min(0).default(0),
    /** Export: prefix text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR, LF) with `'`. */
    escape_formulas: z.boolean().default(true),
    /** Export: start the file with a UTF-8 byte-order mark (Excel then detects UTF-8). */
    bom: z.boolean().default(false),
    /** Export: line ending. */
    record_delimiter: z.enum(['lf', 'crlf']).default('lf'),
    /** Longest record accepted, in characters. */
    max_record_chars: z
      .number()
      .int()
      .positive()
      .default(1 << 20),
  })
  .strict()
  .refine((c) => c.header || c.columns !== undefined, {
    message: 'a csv format without a header needs `columns`',
    path: ['columns'],
  });

export type CsvFormatConfig = z.infer<typeof csvFormatSchema>;

/** Creates the CSV reader (imports) and writer (exports) of a pipeline. */
export function createCsvFormat(config: CsvFormatConfig): FormatReader & FormatWriter {
  const writerOptions = csvWriterOptionsSchema.parse({
    delimiter: config.delimiter,
    quote: config.quote,
    header: config.header,
    escape_formulas: config.escape_formulas,
    bom: config.bom,
    record_delimiter: config.record_delimiter,
  });
  const writer = createCsvWriter(writerOptions);
  const copyDialect = copyDialectOf(config);
  return {
    read: (input, fileName, reject) => readCsv(config, input, fileName, reject, copyDialect !== undefined),
    copyDialect,
    extension: writer.extension,
    write: writer.write,
    fromCopy: csvFromCopy(writerOptions),
  };
}

/**
 * The dialect in which the file's records may go to `COPY … (FORMAT csv)` as they were read, or
 * undefined when COPY could not be told it: COPY takes a one-byte delimiter and quote (not a line
 * break, not a backslash, which its end-of-data marker `\.` uses, and not a letter or digit, which
 * could be read as part of a value).
 */
export function copyDialectOf(config: Pick<CsvFormatConfig, 'delimiter' | 'quote'>): CopyDialect | undefined {
  const ok = (c: string): boolean => /^[\x20-\x7E\t]$/.test(c) && !/[A-Za-z0-9\\.]/.test(c);
  if (!ok(config.delimiter) || !ok(config.quote) || config.delimiter === config.quote) return undefined;
  return { delimiter: config.delimiter, quote: config.quote };
}

async function* readCsv(
  config: CsvFormatConfig,
  input: Readable,
  fileName: string,
  reject: RejectFn,
  raw: boolean,
): AsyncGenerator<Batch> {
  const tokenizer = new CsvTokenizer({
    delimiter: config.delimiter,
    quote: config.quote,
    maxRecordChars: config.max_record_chars,
  });
  const decoder = new StrictDecoder(config.encoding, config.on_invalid_encoding);
  let columns: string[] | null = config.header ? null : [...(config.columns ?? [])];
  let toSkip = config.skip_lines;
  const buffer = new BatchBuffer();
  const sink = {
    record(fields: Field[], line: number, start: number, end: number, plain: boolean): void {
      if (toSkip > 0) {
        toSkip--;
        return;
      }
      // Only a record that may hold a bad byte is looked at: the decoder left marks to match.
      const bad = decoder.pending ? decoder.check(fields, start) : null;
      if (columns === null) {
        if (bad) {
          throw new UserError(
            `${fileName}, line ${line}: header column ${bad.field + 1} ("${bad.shown}"): ${bad.reason}`,
          );
        }
        columns = headerColumns(fields, config.columns, fileName, line);
        return;
      }
      if (fields.length !== columns.length) {
        reject({
          file: fileName,
          line,
          field: null,
          // The bad bytes escaped here too, not U+FFFD.
          value: fields
            .map((f, i) => (bad && i === bad.field ? bad.shown : (f ?? '')))
            .join(config.delimiter)
            .slice(0, 200),
          reason: `expected ${columns.length} fields, found ${fields.length}`,
        });
        return;
      }
      if (bad) {
        reject({ file: fileName, line, field: columns[bad.field]!, value: bad.shown, reason: bad.reason });
        return;
      }
      // COPY ends its input at a line `\.`; such a record goes the general way (quoted).
      if (raw) buffer.pushRaw(fields, line, plain && fields[0] !== '\\.' ? start : -1, end);
      else buffer.push(fields, line);
    },
    error(line: number, reason: string, text: string): void {
      reject({ file: fileName, line, field: null, value: text, reason });
    },
  };
  // Every batch holds the records of one scanned string, which its `raw` points into.
  for await (const chunk of input) {
    tokenizer.push(decoder.decode(chunk as Buffer), sink);
    const batch = buffer.take(columns, tokenizer.text);
    if (batch) yield batch;
  }
  tokenizer.push(decoder.end(), sink);
  const last = buffer.take(columns, tokenizer.text);
  if (last) yield last;
  tokenizer.end(sink);
  if (columns === null) throw new UserError(`${fileName}: the file is empty; expected a header line`);
  const batch = buffer.take(columns, tokenizer.text);
  if (batch) yield batch;
}

function headerColumns(
  fields: Field[],
  explicit: string[] | undefined,
  fileName: string,
  line: number,
): string[] {
  if (explicit) {
    if (explicit.length !== fields.length) {
      throw new UserError(
        `${fileName}, line ${line}: the header has ${fields.length} columns but the pipeline declares ${explicit.length} (${explicit.join(', ')})`,
      );
    }
    return [...explicit];
  }
  const names = fields.map((f) => (f ?? '').trim());
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (name === '') throw new UserError(`${fileName}, line ${line}: header column ${i + 1} has no name`);
    if (seen.has(name))
      throw new UserError(`${fileName}, line ${line}: header column '${name}' appears twice`);
    seen.add(name);
  });
  return names;
}

/** `format: { kind: csv }`, for src/stages/registry.ts. */
export const csvFormat: StageKind<'reader and writer', typeof csvFormatSchema, FormatReader & FormatWriter> =
  {
    kind: 'csv',
    role: 'reader and writer',
    schema: csvFormatSchema,
    create: (config) => createCsvFormat(config),
    summary: 'delimited text, RFC 4180 quoting, encodings',
  };
