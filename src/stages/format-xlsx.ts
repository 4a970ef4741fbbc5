import { z } from 'zod';
import { readXlsx } from '../xlsx/read.js';
import { cleanOptions } from './clean.js';
import { writeXlsx } from '../xlsx/write.js';
import type { FormatReader, FormatWriter } from './types.js';

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
 * Writing: exceljs's streaming WorkbookWriter, one committed row at a time, waiting for the
 * destination (and the zip entry in front of it) to drain.
 *
 * The code is in src/xlsx/: read.ts, zip.ts, parts.ts, shared.ts and read-sheet.ts (reading),
 * write.ts (writing), cells.ts (cell and number conversions), lib.ts (exceljs for writing, SAX plumbing).
 */

// ─── configuration ─────────────────────────────────────────────────────────────────────────────

const SHEET_NAME = /^[^[\]:*?/\\]{1,31}$/;
/** Rows in an Excel sheet, at most. */
const EXCEL_MAX_ROWS = 1_048_576;

/** Excel number formats per exported column type. */
const numberFormatsSchema = z
  .object({
    /** Format of `date` columns. */
    date: z.string().min(1).default('yyyy-mm-dd'),
    /** Format of `timestamp` columns. */
    timestamp: z.string().min(1).default('yyyy-mm-dd hh:mm:ss'),
    /** Format of `decimal` columns. */
    decimal: z.string().min(1).default('#,##0.00'),
    /** Format of `int` columns. */
    int: z.string().min(1).default('0'),
  })
  .strict();

/** `format: { kind: xlsx }` — options of the reader (import) and of the writer (export). */
export const xlsxFormatSchema = z
  .object({
    kind: z.literal('xlsx'),
    ...cleanOptions,
    /** Reader: the sheet to read, by name or 1-based position in the workbook's tab order. @defaultValue 1 */
    sheet: z.union([z.string().min(1), z.number().int().positive()]).default(1),
    /** Reader: the first non-empty row (after `skip_rows`) names the columns. Writer: write a header row. */
    header: z.boolean().default(true),
    /** Reader: column names in sheet order; required without a header, and replaces the header's names with one. */
    columns: z.array(z.string().min(1)).min(1).optional(),
    /** Reader: sheet rows 1…skip_rows are ignored (report titles and the like); the header is searched after them. */
    skip_rows: z.number().int().min(0).default(0),
    /** Writer: name of the sheet; later sheets (when rows overflow `max_rows_per_sheet`) get ` (2)`, ` (3)`… */
    sheet_name: z
      .string()
      .regex(SHEET_NAME, 'a sheet name has 1–31 characters and none of [ ] : * ? / \\')
      .default('Sheet1'),
    /** Writer: keep the header row visible while scrolling. */
    freeze_header: z.boolean().default(true),
    /**
     * Writer: column widths in characters. `auto` sizes each column from its header and the first
     * 1,000 rows; a map sets some columns by name and sizes the others automatically.
     */
    column_widths: z
      .union([z.literal('auto'), z.record(z.string(), z.number().positive().max(255))])
      .default('auto'),
    /** Writer: Excel number formats per column type. */
    number_formats: numberFormatsSchema.default({
      date: 'yyyy-mm-dd',
      timestamp: 'yyyy-mm-dd hh:mm:ss',
      decimal: '#,##0.00',
      int: '0',
    }),
    /** Reader: most bytes the workbook's parts may expand to, together. @defaultValue 1024 */
    max_uncompressed_mb: z.number().int().positive().default(1024),
    /** Reader: most a part larger than 1 MB may expand relative to its compressed size (zip bombs). @defaultValue 200 */
    max_compression_ratio: z.number().positive().default(200),
    /** Reader: most cells in one row (Excel has 16,384 columns). @defaultValue 16384 */
    max_cells_per_row: z.number().int().positive().default(16_384),
    /** Reader: most characters in one cell or one shared string (Excel's limit is 32,767). @defaultValue 32767 */
    max_cell_chars: z.number().int().positive().default(32_767),
    /** Reader: most entries in the shared-string table. @defaultValue 1000000 */
    max_shared_strings: z.number().int().positive().default(1_000_000),
    /** Writer: rows per sheet, header included; further rows continue on a new sheet. Excel's limit is 1,048,576. */
    max_rows_per_sheet: z.number().int().min(2).max(EXCEL_MAX_ROWS).default(EXCEL_MAX_ROWS),
  })
  .strict();

export type XlsxFormatConfig = z.infer<typeof xlsxFormatSchema>;

/** Creates the XLSX reader and writer for a pipeline. */
export function createXlsxFormat(config: XlsxFormatConfig): FormatReader & FormatWriter {
  return {
    extension: 'xlsx',
    read: (input, fileName, reject) => readXlsx(config, input, fileName, reject),
    write: (columns, types, batches, out) => writeXlsx(config, columns, types, batches, out),
  };
}
