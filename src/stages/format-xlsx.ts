/**
 * `format: { kind: xlsx }` — Excel workbooks, read and written as streams.
 *
 * Reading (src/xlsx/read.ts):
 *
 *   file ──► yauzl, random access (central directory: sizes and ratios checked against the limits)
 *   ├── _rels/.rels ──► the workbook part ──► its .rels ──► sheets, styles, shared strings (any part name)
 *   ├── styles.xml ──► number formats (dates vs numbers); sharedStrings.xml ──► string table
 *   └── the chosen worksheet ──► saxes ──► cells as text ──► batches
 *                                                   └──► rejects
 *
 * Every part is decoded strictly as UTF-8 and parsed by saxes, a direct dependency; no exceljs on
 * the read path. Limits (sizes, cells per row, characters per cell and shared string, shared-string
 * count) are checked while streaming, before memory is spent.
 *
 * Writing (src/xlsx/write.ts): the sheet XML built a batch at a time and zipped by yazl, waiting for
 * the zip entry in front of the destination to drain.
 *
 * The code is in src/xlsx/: read.ts, zip.ts, parts.ts, shared.ts and read-sheet.ts (reading),
 * write.ts (writing), cells.ts (cell and number conversions), lib.ts (SAX plumbing).
 */
import type { Readable } from 'node:stream';
import { xlsxFormatSchema, type XlsxFormatConfig } from '../xlsx/options.js';
import type { Batch, FormatReader, FormatWriter, RejectFn, StageKind } from './types.js';

/**
 * Creates the XLSX reader and writer for a pipeline. The reader and writer (saxes, yauzl, yazl)
 * load when a workbook is read or written: every `erp` process lists this kind, few use it, and
 * loading them cost each CLI start some 40 ms of CPU.
 */
export function createXlsxFormat(config: XlsxFormatConfig): FormatReader & FormatWriter {
  return {
    extension: 'xlsx',
    read: (input, fileName, reject) => readLazily(config, input, fileName, reject),
    write: async (columns, types, batches, out) =>
      (await import('../xlsx/write.js')).writeXlsx(config, columns, types, batches, out),
  };
}

async function* readLazily(
  config: XlsxFormatConfig,
  input: Readable,
  fileName: string,
  reject: RejectFn,
): AsyncGenerator<Batch> {
  const { readXlsx } = await import('../xlsx/read.js');
  yield* readXlsx(config, input, fileName, reject);
}

/** `format: { kind: xlsx }`, for src/stages/registry.ts. */
export const xlsxFormat: StageKind<
  'reader and writer',
  typeof xlsxFormatSchema,
  FormatReader & FormatWriter
> = {
  kind: 'xlsx',
  role: 'reader and writer',
  schema: xlsxFormatSchema,
  create: (config) => createXlsxFormat(config),
  summary: 'Excel workbooks, streamed',
};
