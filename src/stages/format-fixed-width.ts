/**
 * `format: { kind: fixed-width }` — a reader of fixed-width text files (bank statements, mainframe
 * extracts): each line is a record, each column a range of characters.
 *
 * ```yaml
 * format:
 *   kind: fixed-width
 *   columns:
 *     - { name: sku, start: 1, width: 8 }      # characters 1–8 (1-based, as record layouts print them)
 *     - { name: price, start: 9, width: 10 }
 * ```
 *
 * Values are trimmed of the padding spaces (`trim: false` keeps them); an all-blank value is NULL.
 * A line shorter than the last column's end, or holding a byte invalid in `encoding`, is a reject
 * naming the line; blank lines are skipped. Reader only: an export cannot use it.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { StrictDecoder } from '../csv/text-decode.js';
import { BatchBuffer } from './batch-buffer.js';
import type { Batch, FormatReader, RejectFn, StageKind } from './types.js';

const columnSchema = z
  .object({
    /** Column name, as the validate and transform stages see it. */
    name: z.string().min(1),
    /** First character of the column, counting from 1. */
    start: z.number().int().positive(),
    /** Characters in the column. */
    width: z.number().int().positive(),
  })
  .strict();

export const fixedWidthFormatSchema = z
  .object({
    kind: z.literal('fixed-width'),
    /** The columns, each a range of characters of the line. */
    columns: z.array(columnSchema).min(1),
    /** Text encoding of the file. A UTF-8 byte-order mark is dropped. */
    encoding: z.enum(['utf-8', 'latin1', 'windows-1252']).default('utf-8'),
    /** Lines to skip at the start (report titles, a header line). */
    skip_lines: z.number().int().min(0).default(0),
    /** Remove the padding spaces around values. */
    trim: z.boolean().default(true),
  })
  .strict()
  .refine((c) => new Set(c.columns.map((col) => col.name)).size === c.columns.length, {
    message: 'column names must be unique',
    path: ['columns'],
  });

export type FixedWidthFormatConfig = z.infer<typeof fixedWidthFormatSchema>;

/** Creates the fixed-width reader of a pipeline. */
export function createFixedWidthFormat(config: FixedWidthFormatConfig): FormatReader {
  return { read: (input, fileName, reject) => readFixedWidth(config, input, fileName, reject) };
}

async function* readFixedWidth(
  config: FixedWidthFormatConfig,
  input: Readable,
  fileName: string,
  reject: RejectFn,
): AsyncGenerator<Batch> {
  const columns = config.columns.map((c) => c.name);
  const end = Math.max(...config.columns.map((c) => c.start - 1 + c.width));
  const decoder = new StrictDecoder(config.encoding, 'reject');
  const buffer = new BatchBuffer();
  let pending = '';
  /** Text offset of `pending`'s first character in the decoded stream. */
  let offset = 0;
  let line = 0;
  const take = (text: string, start: number): void => {
    line++;
    if (line <= config.skip_lines) return;
    const record = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (record.trim() === '') return;
    const bad = decoder.pending ? decoder.check([record], start) : null;
    if (bad) {
      reject({ file: fileName, line, field: null, value: bad.shown, reason: bad.reason });
      return;
    }
    if (record.length < end) {
      reject({
        file: fileName,
        line,
        field: null,
        value: record.slice(0, 200),
        reason: `the line has ${record.length} characters; the columns need ${end}`,
      });
      return;
    }
    buffer.push(
      config.columns.map((c) => {
        const raw = record.slice(c.start - 1, c.start - 1 + c.width);
        const value = config.trim ? raw.trim() : raw;
        return value.trim() === '' ? null : value;
      }),
      line,
    );
  };
  const split = (text: string, final: boolean): void => {
    pending += text;
    let from = 0;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n', from)) {
      take(pending.slice(from, nl), offset + from);
      from = nl + 1;
    }
    offset += from;
    pending = pending.slice(from);
    if (final && pending !== '') take(pending, offset);
  };
  for await (const chunk of input) {
    split(decoder.decode(chunk as Buffer), false);
    const batch = buffer.take(columns);
    if (batch) yield batch;
  }
  split(decoder.end(), true);
  const batch = buffer.take(columns);
  if (batch) yield batch;
}

/** `format: { kind: fixed-width }`, for src/stages/registry.ts. */
export const fixedWidthFormat: StageKind<'reader', typeof fixedWidthFormatSchema, FormatReader> = {
  kind: 'fixed-width',
  role: 'reader',
  schema: fixedWidthFormatSchema,
  create: (config) => createFixedWidthFormat(config),
  summary: 'fixed-width text, each column a range of characters',
};
