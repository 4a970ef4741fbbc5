/**
 * The streaming XLSX writer: exceljs's WorkbookWriter, one committed row at a time, typed cells with
 * the configured number formats, `auto` column widths from a sample of rows, further sheets past
 * `max_rows_per_sheet`, and waiting for the destination (and the zip entry in front of it) to drain.
 */
import type { Writable } from 'node:stream';
import type ExcelJS from 'exceljs';
import { untilDrained } from '../csv/writer.js';
import { UserError } from '../errors.js';
import type { XlsxFormatConfig } from '../stages/format-xlsx.js';
import type { Batch, ColumnType } from '../stages/types.js';
import { inline, xlsxValue, type XlsxValue } from './cells.js';
import { excel } from './lib.js';

/** Excel's longest cell text. */
const EXCEL_MAX_TEXT = 32_767;
/** Rows sampled to size `auto` columns. */
const WIDTH_SAMPLE_ROWS = 1000;

/** exceljs's worksheet part (a StreamBuf) and the zip entry stream it pipes into (readable-stream 3). */
interface PartStream {
  pipes?: unknown[];
}
interface LegacyWritable extends NodeJS.EventEmitter {
  writableNeedDrain?: boolean;
  _writableState?: { needDrain?: boolean };
}

/** True when `s` asked its writer to wait for 'drain'; readable-stream 3 only has the internal flag. */
function needsDrain(s: LegacyWritable): boolean {
  return s.writableNeedDrain ?? s._writableState?.needDrain ?? false;
}

export async function writeXlsx(
  config: XlsxFormatConfig,
  columns: readonly string[],
  types: readonly ColumnType[],
  batches: AsyncIterable<Batch>,
  out: Writable,
): Promise<number> {
  if (types.length !== columns.length) {
    throw new Error(`xlsx writer: ${columns.length} columns but ${types.length} types`);
  }
  let failure: Error | null = null;
  const onError = (err: Error): void => {
    failure ??= err;
  };
  out.on('error', onError);
  const wb = new (excel().ExcelJS.stream.xlsx.WorkbookWriter)({
    stream: out,
    useStyles: true,
    useSharedStrings: false,
  });
  const formats = columns.map((_, i) => formatFor(types[i]!, config.number_formats));
  const explicitWidths = config.column_widths === 'auto' ? {} : config.column_widths;

  let sheetCount = 0;
  let ws: ExcelJS.Worksheet | null = null;
  let rowsOnSheet = 0;
  let written = 0;
  let pending: Array<XlsxValue[]> | null = [];
  const widths = columns.map((c) => c.length);

  const openSheet = (): void => {
    sheetCount++;
    const name = sheetCount === 1 ? config.sheet_name : `${config.sheet_name.slice(0, 25)} (${sheetCount})`;
    const frozen = config.freeze_header && config.header;
    ws = wb.addWorksheet(name, frozen ? { views: [{ state: 'frozen', ySplit: 1, xSplit: 0 }] } : {});
    ws.columns = columns.map((name, i) => ({
      width: explicitWidths[name] ?? Math.min(60, Math.max(8, widths[i]! + 2)),
      style: formats[i] ? { numFmt: formats[i] } : {},
    }));
    rowsOnSheet = 0;
    if (config.header) {
      const header = ws.addRow(columns.map((c) => inline(c)));
      header.font = { bold: true };
      header.commit();
      rowsOnSheet = 1;
    }
  };

  const addRow = (values: XlsxValue[]): void => {
    if (ws === null || rowsOnSheet >= config.max_rows_per_sheet) {
      if (ws !== null) (ws as ExcelJS.Worksheet).commit();
      openSheet();
    }
    ws!.addRow(values).commit();
    rowsOnSheet++;
    written++;
  };

  const flushPending = (): void => {
    if (pending === null) return;
    const sample = pending;
    pending = null;
    for (const values of sample) addRow(values);
  };

  try {
    for await (const batch of batches) {
      if (failure) throw failure;
      const rows = batch.rows;
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r]!;
        const values: XlsxValue[] = new Array<XlsxValue>(columns.length);
        for (let i = 0; i < columns.length; i++) {
          const v = xlsxValue(row[i] ?? null, types[i]!);
          if (
            v !== null &&
            typeof v === 'object' &&
            'richText' in v &&
            (row[i]?.length ?? 0) > EXCEL_MAX_TEXT
          ) {
            throw new UserError(
              `xlsx export, row ${written + (pending?.length ?? 0) + 1}, column '${columns[i]}': ${row[i]!.length} characters exceed Excel's limit of ${EXCEL_MAX_TEXT} per cell`,
            );
          }
          values[i] = v;
        }
        if (pending !== null) {
          for (let i = 0; i < columns.length; i++)
            widths[i] = Math.max(widths[i]!, displayWidth(values[i]!, types[i]!));
          pending.push(values);
          if (pending.length >= WIDTH_SAMPLE_ROWS) flushPending();
        } else addRow(values);
      }
      if (pending === null) await drained(out, ws, () => failure);
    }
    flushPending();
    if (ws === null) openSheet();
    await wb.commit();
  } finally {
    out.off('error', onError);
  }
  if (failure) throw failure;
  return written;
}

function formatFor(type: ColumnType, formats: XlsxFormatConfig['number_formats']): string | null {
  switch (type) {
    case 'date':
      return formats.date;
    case 'timestamp':
      return formats.timestamp;
    case 'decimal':
      return formats.decimal;
    case 'int':
      return formats.int;
    default:
      return null;
  }
}

function displayWidth(v: XlsxValue, type: ColumnType): number {
  if (v === null) return 0;
  if (v instanceof Date) return type === 'timestamp' ? 19 : 10;
  if (typeof v === 'number')
    return type === 'decimal' ? Math.ceil(String(Math.round(v)).length * 1.35) + 3 : String(v).length;
  if (typeof v === 'boolean') return 5;
  const text = v.richText[0].text;
  const nl = text.indexOf('\n');
  return nl < 0 ? text.length : nl;
}

/**
 * Waits while the destination or the zip entry feeding it asks for a pause: exceljs writes rows into
 * the worksheet part without looking at back-pressure (and archiver compresses more slowly than
 * exceljs renders), so the writer looks on its behalf.
 */
async function drained(
  out: Writable,
  ws: ExcelJS.Worksheet | null,
  failed: () => Error | null,
): Promise<void> {
  const entry = (ws as unknown as { stream?: PartStream } | null)?.stream?.pipes?.[0] as
    LegacyWritable | undefined;
  for (const s of [entry, out as LegacyWritable]) {
    if (!s || !needsDrain(s) || failed() || out.destroyed) continue;
    await untilDrained(s, out);
  }
  const err = failed();
  if (err) throw err;
  if (out.destroyed)
    throw new Error('xlsx export: the output stream was closed before the workbook was complete');
}
