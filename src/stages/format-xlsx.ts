import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { finished, Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type ExcelJS from 'exceljs';
import { z } from 'zod';
import { NUMBER_TEXT, neutraliseFormula } from '../csv-writer.js';
import { CancelledError, UserError } from '../errors.js';
import type { Batch, Cell, ColumnType, FormatReader, FormatWriter, RejectFn } from './types.js';

/**
 * `format: { kind: xlsx }` — Excel workbooks, read and written as streams.
 *
 * Reading:
 *
 *   input ──► exceljs WorkbookReader (unzip, workbook.xml, rels, styles.xml; spools parts that
 *   │          arrive before what they need to a temp file)
 *   ├── xl/sharedStrings.xml ──► our SAX pass ──► string table
 *   └── xl/worksheets/sheetN.xml (the chosen sheet only) ──► our SAX pass ──► cells as text ──► batches
 *                                                                                 └──► rejects
 *
 * exceljs decodes each XML chunk on its own (`TextDecoder.decode(chunk)` without `stream: true`),
 * which turns a multi-byte character split across two chunks into U+FFFD; it also loses the type of
 * a formula's cached result (a TRUE becomes 1, an error becomes NaN) and keeps only the last run of
 * an inline rich string. So it drives the zip and the small metadata parts, and the two parts that
 * carry data (shared strings, the sheet) are parsed here with a streaming decoder and saxes — the
 * parser exceljs itself uses — resolved through exceljs so the two always agree.
 *
 * Writing: exceljs's streaming WorkbookWriter, one committed row at a time, waiting for the
 * destination (and the zip entry in front of it) to drain.
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

// ─── reading ───────────────────────────────────────────────────────────────────────────────────

/** Rows gathered before a batch is handed on. */
const BATCH_ROWS = 1000;

/** The parts of exceljs's SAX parser (saxes) used here. */
interface SaxTag {
  name: string;
  attributes: Record<string, string>;
}
interface SaxParser {
  on(event: 'opentag' | 'closetag', handler: (tag: SaxTag) => void): void;
  on(event: 'text', handler: (text: string) => void): void;
  on(event: 'error', handler: (err: Error) => void): void;
  write(chunk: string): unknown;
  close(): unknown;
}
type SaxParserClass = new (opts?: { position?: boolean }) => SaxParser;

// saxes is exceljs's dependency; resolve it from exceljs so both use the same copy.
let loaded: { ExcelJS: typeof ExcelJS; SaxesParser: SaxParserClass } | null = null;

/**
 * exceljs and its XML parser, loaded (synchronously, they are CommonJS) on first use: a process that
 * reads or writes no workbook never pays for them.
 */
function excel(): { ExcelJS: typeof ExcelJS; SaxesParser: SaxParserClass } {
  if (loaded === null) {
    const requireHere = createRequire(import.meta.url);
    const lib = requireHere('exceljs') as typeof ExcelJS;
    const requireFromExceljs = createRequire(requireHere.resolve('exceljs'));
    const { SaxesParser } = requireFromExceljs('saxes') as { SaxesParser: SaxParserClass };
    loaded = { ExcelJS: lib, SaxesParser };
  }
  return loaded;
}

/** A worksheet part as our `_parseWorksheet` replacement hands it over. */
interface SheetPart {
  partNo: string;
  iterator: AsyncIterable<Buffer | string>;
}

/**
 * The members of exceljs's WorkbookReader this module relies on (exceljs 4.4, lib/stream/xlsx/
 * workbook-reader.js). Its `parse()` loop calls `_parseSharedStrings(entry)` and
 * `_parseWorksheet(iterator, sheetNo)`; both are replaced on the instance.
 */
interface WorkbookReaderInternals {
  model?: { sheets?: Array<{ name: string; rId: string; state?: string }> };
  workbookRels?: Array<{ Id: string; Target: string }>;
  properties?: { model?: { date1904?: boolean } };
  styles: StylesInternals;
  sharedStrings?: string[];
  _parseSharedStrings(entry: AsyncIterable<Buffer>): AsyncGenerator<unknown>;
  _parseWorksheet(iterator: AsyncIterable<Buffer | string>, sheetNo: string): Generator<unknown>;
  [Symbol.asyncIterator](): AsyncIterator<SheetPart>;
}

/** exceljs's parsed styles.xml: cell formats (`cellXfs`) and custom number formats. */
interface StylesInternals {
  model?: { styles?: Array<{ numFmtId?: number } | undefined> };
  index?: { numFmt?: Array<string | undefined> };
}

async function* readXlsx(
  config: XlsxFormatConfig,
  input: Readable,
  fileName: string,
  reject: RejectFn,
): AsyncGenerator<Batch> {
  if (!config.header && config.columns === undefined) {
    throw new UserError(`${fileName}: an xlsx format without a header needs \`columns\``);
  }
  const reader = new (excel().ExcelJS.stream.xlsx.WorkbookReader)(input, {
    sharedStrings: 'cache',
    styles: 'cache',
    hyperlinks: 'ignore',
    worksheets: 'emit',
    entries: 'ignore',
  }) as unknown as WorkbookReaderInternals;
  const initialStyles = reader.styles;
  // exceljs's parse loop delegates to these with `yield*`; ours read the part and emit nothing.
  // eslint-disable-next-line require-yield
  reader._parseSharedStrings = async function* (entry) {
    reader.sharedStrings = await readSharedStrings(entry, fileName);
  };
  reader._parseWorksheet = function* (iterator, sheetNo) {
    yield { eventType: 'worksheet', value: { partNo: sheetNo, iterator } satisfies SheetPart };
  };

  // exceljs pipes the input into the unzipper, and pipe() does not pass errors on: without this
  // guard a failed or cancelled input would leave the read waiting forever.
  const guard = new InputGuard(input);
  let tempDir: string | null = null;
  const spooled: Array<{ partNo: string; file: string }> = [];
  let done = false;
  try {
    try {
      for await (const part of raced(reader, guard)) {
        const target =
          reader.model && reader.workbookRels ? findTarget(config.sheet, reader, fileName) : null;
        if (target !== null && part.partNo !== target.partNo) {
          discard(part.iterator);
          continue;
        }
        // The sheet can be read now only once the styles (date formats) are known.
        if (target !== null && reader.styles !== initialStyles && !done) {
          yield* readSheet(config, raced(part.iterator, guard), reader, target.name, fileName, reject);
          done = true;
          continue;
        }
        tempDir ??= await mkdtemp(path.join(os.tmpdir(), 'erp-xlsx-'));
        const file = path.join(tempDir, `sheet${part.partNo}.xml`);
        await pipeline(Readable.from(raced(part.iterator, guard)), createWriteStream(file));
        spooled.push({ partNo: part.partNo, file });
      }
    } catch (err) {
      throw zipError(err, fileName);
    }
    if (done) return;
    if (!reader.model || !reader.workbookRels) {
      throw new UserError(`${fileName}: not an xlsx workbook (no xl/workbook.xml or its relationships)`);
    }
    const target = findTarget(config.sheet, reader, fileName);
    const found = spooled.find((s) => s.partNo === target.partNo);
    if (!found) {
      throw new UserError(
        `${fileName}: the part of sheet '${target.name}' (${target.part}) is missing from the workbook`,
      );
    }
    yield* readSheet(config, createReadStream(found.file), reader, target.name, fileName, reject);
  } finally {
    if (tempDir !== null) await rm(tempDir, { recursive: true, force: true });
  }
}

/**
 * Watches `input` for an error or a close before its end. (Racing every read against one
 * long-pending promise would pile a reaction per chunk onto it, each holding that chunk.)
 */
class InputGuard {
  private error: Error | null = null;
  private readonly waiting = new Set<(err: Error) => void>();

  constructor(input: Readable) {
    finished(input, (err) => {
      if (!err) return;
      this.error = err;
      for (const fail of this.waiting) fail(err);
    });
  }

  /** `it.next()`, rejected early if the input fails first. */
  next<T>(it: AsyncIterator<T>): Promise<IteratorResult<T>> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiting.add(reject);
      it.next().then(
        (r) => {
          this.waiting.delete(reject);
          resolve(r);
        },
        (err: unknown) => {
          this.waiting.delete(reject);
          reject(err as Error);
        },
      );
    });
  }
}

/** Iterates `iterable`, failing as soon as the guarded input fails. */
async function* raced<T>(iterable: AsyncIterable<T>, guard: InputGuard): AsyncGenerator<T> {
  const it = iterable[Symbol.asyncIterator]();
  for (;;) {
    const next = await guard.next(it);
    if (next.done) return;
    yield next.value;
  }
}

/** Skips a worksheet part: an unread zip entry is drained by exceljs; a spooled temp file is closed. */
function discard(iterator: AsyncIterable<Buffer | string>): void {
  const maybeStream = iterator as { destroy?: () => void };
  if (typeof maybeStream.destroy === 'function') maybeStream.destroy();
}

function zipError(err: unknown, fileName: string): unknown {
  if (err instanceof UserError || err instanceof CancelledError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/invalid signature|end of central directory|FILE_ENDED|unexpected end/i.test(message)) {
    return new UserError(
      `${fileName}: not a readable xlsx workbook (${message}); expected an Excel 2007+ .xlsx file (not .xls, not encrypted)`,
    );
  }
  return err;
}

/** Finds the configured sheet in workbook.xml and its worksheet part number from the relationships. */
function findTarget(
  sheet: string | number,
  reader: WorkbookReaderInternals,
  fileName: string,
): { name: string; partNo: string; part: string } {
  const sheets = reader.model?.sheets ?? [];
  const names = sheets.map((s) => `'${s.name}'`).join(', ') || '(none)';
  const entry = typeof sheet === 'number' ? sheets[sheet - 1] : sheets.find((s) => s.name === sheet);
  if (!entry) {
    if (typeof sheet === 'number') {
      throw new UserError(
        `${fileName}: the workbook has ${sheets.length} sheet${sheets.length === 1 ? '' : 's'}, so sheet ${sheet} does not exist; its sheets are: ${names}`,
      );
    }
    throw new UserError(`${fileName}: the workbook has no sheet '${sheet}'; its sheets are: ${names}`);
  }
  const rel = reader.workbookRels?.find((r) => r.Id === entry.rId);
  // Targets are relative to xl/ ("worksheets/sheet1.xml") or absolute ("/xl/worksheets/sheet1.xml").
  const part = rel ? rel.Target.replace(/^\/?xl\//, '').replace(/^\.\//, '') : '';
  const m = /^worksheets\/sheet(\d+)\.xml$/.exec(part);
  if (!m) {
    throw new UserError(
      `${fileName}: sheet '${entry.name}' is stored as '${part || '(no relationship)'}', which is not a worksheet part (a chart sheet?)`,
    );
  }
  return { name: entry.name, partNo: m[1]!, part: `xl/${part}` };
}

/** Decodes a part's bytes as UTF-8 across chunk boundaries and feeds a SAX parser. */
async function* saxChunks(iterable: AsyncIterable<Buffer | string>, parser: SaxParser): AsyncGenerator<void> {
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of iterable) {
    parser.write(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    yield;
  }
  parser.write(decoder.decode());
  parser.close();
}

/** OOXML escapes characters XML cannot hold as `_xHHHH_`. */
const OOXML_ESCAPE = /_x([0-9A-Fa-f]{4})_/g;
function unescapeOoxml(text: string): string {
  return text.includes('_x')
    ? text.replace(OOXML_ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    : text;
}

/** Reads xl/sharedStrings.xml into plain strings: rich text runs joined, phonetic hints dropped. */
async function readSharedStrings(entry: AsyncIterable<Buffer>, fileName: string): Promise<string[]> {
  const strings: string[] = [];
  const parser = new (excel().SaxesParser)({ position: false });
  let error: Error | null = null;
  let inSi = false;
  let inT = false;
  let phonetic = 0;
  let text = '';
  parser.on('error', (err) => (error ??= err));
  parser.on('opentag', (tag) => {
    const name = localName(tag.name);
    if (name === 'si') {
      inSi = true;
      text = '';
    } else if (name === 't' && inSi && phonetic === 0) inT = true;
    else if (name === 'rPh') phonetic++;
  });
  parser.on('text', (t) => {
    if (inT) text += t;
  });
  parser.on('closetag', (tag) => {
    const name = localName(tag.name);
    if (name === 't') inT = false;
    else if (name === 'rPh') phonetic--;
    else if (name === 'si') {
      strings.push(unescapeOoxml(text));
      inSi = false;
    }
  });
  for await (const _ of saxChunks(entry, parser)) {
    if (error)
      throw new UserError(`${fileName}: malformed xl/sharedStrings.xml: ${(error as Error).message}`);
  }
  if (error) throw new UserError(`${fileName}: malformed xl/sharedStrings.xml: ${(error as Error).message}`);
  return strings;
}

function localName(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(i + 1);
}

/** How a cell's number format presents its number. */
type NumberKind = 'number' | 'date' | 'elapsed';

/** Built-in number formats (ids without a formatCode in styles.xml) that show dates or times. */
const BUILTIN_DATE_IDS = new Set([
  14, 15, 16, 17, 18, 19, 20, 21, 22, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 45, 47,
]);
const BUILTIN_ELAPSED_IDS = new Set([46]);
for (let id = 50; id <= 58; id++) BUILTIN_DATE_IDS.add(id);

/** Classifies a format code: quoted text, escapes, fill/padding and [colour]/[condition]/[$locale] parts ignored. */
export function classifyNumberFormat(code: string): NumberKind {
  const plain = code
    .replace(/"[^"]*"/g, '')
    .replace(/\\./g, '')
    .replace(/[_*]./g, '');
  if (/\[(h+|m+|s+)\]/i.test(plain)) return 'elapsed';
  const bare = plain.replace(/\[[^\]]*\]/g, '');
  // Only the first section (positive numbers) decides; "General" and "@" hold no date letters.
  const first = bare.split(';')[0] ?? '';
  return /[dmyhs]/i.test(first.replace(/General/gi, '').replace(/E[+-]/g, '')) ? 'date' : 'number';
}

function styleKinds(styles: StylesInternals): (s: number) => NumberKind {
  const cache = new Map<number, NumberKind>();
  return (s) => {
    let kind = cache.get(s);
    if (kind === undefined) {
      const id = styles.model?.styles?.[s]?.numFmtId ?? 0;
      const code = styles.index?.numFmt?.[id];
      if (code !== undefined) kind = classifyNumberFormat(code);
      else kind = BUILTIN_ELAPSED_IDS.has(id) ? 'elapsed' : BUILTIN_DATE_IDS.has(id) ? 'date' : 'number';
      cache.set(s, kind);
    }
    return kind;
  };
}

/** `A` → 0, `AB` → 27; -1 when the reference has no column letters. */
function columnIndex(ref: string): number {
  let n = 0;
  let i = 0;
  for (; i < ref.length; i++) {
    const c = ref.charCodeAt(i);
    if (c >= 65 && c <= 90) n = n * 26 + (c - 64);
    else if (c >= 97 && c <= 122) n = n * 26 + (c - 96);
    else break;
  }
  return i === 0 ? -1 : n - 1;
}

/** 0 → `A`, 27 → `AB`. */
export function columnLetter(index: number): string {
  let s = '';
  let n = index + 1;
  while (n > 0) {
    const r = (n - 1) % 26;
    s = String.fromCharCode(65 + r) + s;
    n = Math.floor((n - 1) / 26);
  }
  return s;
}

/** A cell value as the sheet parser produced it: text, or a problem to report. */
interface BadCell {
  col: number;
  value: string | null;
  reason: string;
}

const SIMPLE_NUMBER = /^-?\d+(\.\d+)?$/;

/**
 * A number as plain decimal text, as COPY accepts it: no exponent, rounded to the 15 significant
 * digits Excel itself keeps (so 0.1+0.2 reads as 0.3, the value Excel shows).
 */
export function plainNumber(n: number): string {
  if (n === 0) return '0';
  const s = String(Number(n.toPrecision(15)));
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const digits = m[2]! + (m[3] ?? '');
  const point = Number(m[4]) + 1;
  if (point <= 0) return `${m[1]}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${m[1]}${digits}${'0'.repeat(point - digits.length)}`;
  return `${m[1]}${digits.slice(0, point)}.${digits.slice(point)}`;
}

const DAY_MS = 86_400_000;
const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

function timeOfDay(ms: number): string {
  const s = Math.floor(ms / 1000);
  const frac = ms % 1000;
  const text = `${pad2(Math.floor(s / 3600))}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}`;
  return frac === 0 ? text : `${text}.${String(frac).padStart(3, '0')}`;
}

/**
 * An Excel date serial as ISO text: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` when it has a time of day,
 * `HH:MM:SS` for a time alone (serial below 1). The 1900 system counts Excel's phantom 1900-02-29
 * (serial 60); the 1904 system starts at 1904-01-01. Null when out of Excel's range.
 */
export function excelSerialToIso(serial: number, date1904: boolean): string | null {
  if (!(serial >= 0) || serial >= 2_958_466) return null;
  let whole = Math.floor(serial);
  let ms = Math.round((serial - whole) * DAY_MS);
  if (ms >= DAY_MS) {
    whole++;
    ms -= DAY_MS;
  }
  if (whole === 0) return timeOfDay(ms);
  let epochDays: number;
  if (date1904) epochDays = whole - 24_107;
  else if (whole === 60) return null;
  else epochDays = whole < 60 ? whole - 25_568 : whole - 25_569;
  const d = new Date(epochDays * DAY_MS);
  const date = `${String(d.getUTCFullYear()).padStart(4, '0')}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  return ms === 0 ? date : `${date}T${timeOfDay(ms)}`;
}

/** A duration serial (format `[h]:mm:ss`) as `H:MM:SS`, which PostgreSQL reads as an interval. */
function elapsedText(serial: number): string {
  const total = Math.round(Math.abs(serial) * DAY_MS);
  const h = Math.floor(total / 3_600_000);
  const rest = timeOfDay(total % 3_600_000);
  return `${serial < 0 ? '-' : ''}${h}:${rest.slice(3)}`;
}

/** An ISO 8601 date cell (`t="d"`) as COPY-ready text. */
function isoCellText(v: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}:\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(v.trim());
  if (!m) return v.trim();
  if (!m[2] || (m[2] === '00:00:00' && !/[1-9]/.test(m[3] ?? ''))) return m[1]!;
  return `${m[1]}T${m[2]}${m[3] && /[1-9]/.test(m[3]) ? m[3] : ''}${m[4] && m[4] !== 'Z' ? m[4] : ''}`;
}

async function* readSheet(
  config: XlsxFormatConfig,
  iterable: AsyncIterable<Buffer | string>,
  reader: WorkbookReaderInternals,
  sheetName: string,
  fileName: string,
  reject: RejectFn,
): AsyncGenerator<Batch> {
  const where = `${fileName}[${sheetName}]`;
  const strings = reader.sharedStrings ?? [];
  const date1904 = reader.properties?.model?.date1904 === true;
  const kindOf = styleKinds(reader.styles);

  let columns: string[] | null = config.header ? null : [...config.columns!];
  let rows: Cell[][] = [];
  let lines: number[] = [];

  // Parse state of the current row and cell.
  let rowNo = 0;
  let cells: Cell[] = [];
  let bad: BadCell[] = [];
  let nonEmpty = false;
  let col = -1;
  let type = 'n';
  let style = 0;
  let capture: 'v' | 'is' | 'f' | null = null;
  let value = '';
  let hasValue = false;
  let formula: string | null = null;
  let inIs = false;
  let phonetic = 0;

  const cellText = (): void => {
    let text: Cell = null;
    const raw = value;
    if (formula !== null && !hasValue) {
      bad.push({
        col,
        value: formula ? `=${formula}` : null,
        reason: `the formula${formula ? ` =${formula}` : ''} has no cached result (the workbook was saved by a program that does not calculate; open and save it in Excel or LibreOffice)`,
      });
      nonEmpty = true;
      return;
    }
    if (!hasValue) return;
    switch (type) {
      case 's': {
        const s = strings[Number(raw)];
        if (s === undefined) {
          bad.push({
            col,
            value: raw,
            reason: `shared string ${raw} does not exist in xl/sharedStrings.xml`,
          });
          nonEmpty = true;
          return;
        }
        text = s;
        break;
      }
      case 'inlineStr':
        text = unescapeOoxml(raw);
        break;
      case 'str':
        text = unescapeOoxml(raw);
        break;
      case 'b':
        if (raw === '1' || raw === '0') text = raw === '1' ? 'true' : 'false';
        else {
          bad.push({ col, value: raw, reason: `'${raw}' is not a boolean (expected 0 or 1)` });
          nonEmpty = true;
          return;
        }
        break;
      case 'e':
        bad.push({
          col,
          value: raw,
          reason: `the cell holds the error ${raw}${formula ? ` (formula =${formula})` : ''}`,
        });
        nonEmpty = true;
        return;
      case 'd':
        text = raw === '' ? null : isoCellText(raw);
        break;
      default: {
        if (raw === '') return;
        const kind = kindOf(style);
        if (kind === 'number' && raw.length <= 16 && SIMPLE_NUMBER.test(raw)) {
          text = raw;
          break;
        }
        const n = Number(raw);
        if (!Number.isFinite(n)) {
          bad.push({ col, value: raw, reason: `'${raw}' is not a number` });
          nonEmpty = true;
          return;
        }
        if (kind === 'number') text = plainNumber(n);
        else if (kind === 'elapsed') text = elapsedText(n);
        else {
          text = excelSerialToIso(n, date1904);
          if (text === null) {
            bad.push({ col, value: raw, reason: `date serial ${raw} is outside the dates Excel can show` });
            nonEmpty = true;
            return;
          }
        }
      }
    }
    if (text === null || text === '') return;
    while (cells.length < col) cells.push(null);
    cells[col] = text;
    nonEmpty = true;
  };

  const endRow = (): void => {
    if (!nonEmpty || rowNo <= config.skip_rows) return;
    if (columns === null) {
      columns = headerColumns(cells, bad, config.columns, where, rowNo);
      return;
    }
    const width = columns.length;
    if (cells.length > width) {
      const extra = cells.findIndex((c, i) => i >= width && c !== null);
      if (extra >= 0) {
        bad.push({
          col: extra,
          value: cells[extra]!,
          reason: `column ${columnLetter(extra)} has a value but the table has only ${width} column${width === 1 ? '' : 's'} (A–${columnLetter(width - 1)})`,
        });
      }
      cells.length = width;
    }
    if (bad.length > 0) {
      const first = bad[0]!;
      const others = bad.slice(1).map((b) => columnLetter(b.col));
      reject({
        file: where,
        line: rowNo,
        field: first.col < width ? columns[first.col]! : null,
        value: first.value,
        reason: `row ${rowNo}, column ${columnLetter(first.col)}: ${first.reason}${others.length > 0 ? ` (also column${others.length > 1 ? 's' : ''} ${others.join(', ')})` : ''}`,
      });
      return;
    }
    while (cells.length < width) cells.push(null);
    rows.push(cells);
    lines.push(rowNo);
  };

  const parser = new (excel().SaxesParser)({ position: false });
  let error: Error | null = null;
  parser.on('error', (err) => (error ??= err));
  parser.on('opentag', (tag) => {
    const name = localName(tag.name);
    switch (name) {
      case 'c': {
        const a = tag.attributes;
        const ref = a.r;
        const idx = ref === undefined ? -1 : columnIndex(ref);
        col = idx >= 0 ? idx : col + 1;
        type = a.t ?? 'n';
        style = a.s === undefined ? 0 : Number(a.s);
        value = '';
        hasValue = false;
        formula = null;
        break;
      }
      case 'v':
        capture = 'v';
        hasValue = true;
        break;
      case 'f':
        capture = 'f';
        formula = '';
        break;
      case 'is':
        inIs = true;
        hasValue = true;
        break;
      case 't':
        if (inIs && phonetic === 0) capture = 'is';
        break;
      case 'rPh':
        phonetic++;
        break;
      case 'row': {
        const r = tag.attributes.r;
        rowNo = r === undefined ? rowNo + 1 : Number(r);
        cells = [];
        bad = [];
        nonEmpty = false;
        col = -1;
        break;
      }
    }
  });
  parser.on('text', (t) => {
    if (capture === 'v' || capture === 'is') value += t;
    else if (capture === 'f') formula += t;
  });
  parser.on('closetag', (tag) => {
    const name = localName(tag.name);
    switch (name) {
      case 'c':
        cellText();
        break;
      case 'v':
      case 'f':
      case 't':
        capture = null;
        break;
      case 'is':
        inIs = false;
        break;
      case 'rPh':
        phonetic--;
        break;
      case 'row':
        endRow();
        break;
    }
  });

  const flush = (): Batch | null => {
    if (rows.length === 0 || columns === null) return null;
    const batch: Batch = { columns, rows, lines };
    rows = [];
    lines = [];
    return batch;
  };
  for await (const _ of saxChunks(iterable, parser)) {
    if (error)
      throw new UserError(`${where}: malformed sheet XML after row ${rowNo}: ${(error as Error).message}`);
    if (rows.length >= BATCH_ROWS) yield flush()!;
  }
  if (error)
    throw new UserError(`${where}: malformed sheet XML after row ${rowNo}: ${(error as Error).message}`);
  if (columns === null) {
    throw new UserError(
      `${where}: the sheet is empty${config.skip_rows > 0 ? ` after the ${config.skip_rows} skipped rows` : ''}; expected a header row`,
    );
  }
  const last = flush();
  if (last) yield last;
}

function headerColumns(
  cells: Cell[],
  bad: BadCell[],
  explicit: string[] | undefined,
  where: string,
  row: number,
): string[] {
  if (bad.length > 0) {
    const b = bad[0]!;
    throw new UserError(
      `${where}, row ${row}, column ${columnLetter(b.col)}: the header cell is unusable: ${b.reason}`,
    );
  }
  let width = cells.length;
  while (width > 0 && (cells[width - 1] ?? '').trim() === '') width--;
  if (explicit) {
    if (explicit.length !== width) {
      throw new UserError(
        `${where}, row ${row}: the header has ${width} columns (A–${columnLetter(width - 1)}) but the pipeline declares ${explicit.length} (${explicit.join(', ')})`,
      );
    }
    return [...explicit];
  }
  const names: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < width; i++) {
    const name = (cells[i] ?? '').trim();
    if (name === '')
      throw new UserError(`${where}, row ${row}, column ${columnLetter(i)}: the header cell is empty`);
    if (seen.has(name)) {
      throw new UserError(
        `${where}, row ${row}, column ${columnLetter(i)}: header column '${name}' appears twice`,
      );
    }
    seen.add(name);
    names.push(name);
  }
  return names;
}

// ─── writing ───────────────────────────────────────────────────────────────────────────────────

/** True when `text` is a finite number Excel can hold exactly (at most 15 significant digits). */
export function isExactNumber(text: string): boolean {
  if (!NUMBER_TEXT.test(text)) return false;
  const digits = text
    .replace(/e.*$/i, '')
    .replace(/[^0-9]/g, '')
    .replace(/^0+/, '')
    .replace(/0+$/, '');
  return digits.length <= 15 && Number.isFinite(Number(text));
}

const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$/;
/** Excel's first and last representable day (1900 system, the one written). */
const EXCEL_MIN_MS = Date.UTC(1900, 2, 1);
const EXCEL_MAX_MS = Date.UTC(10000, 0, 1);

/**
 * A value for exceljs: typed when the column type and the text agree, otherwise neutralised text.
 * Text goes out as a one-run rich text so exceljs writes a standard inline string
 * (`t="inlineStr"`, `<is><r><t>`); a plain string would become `t="str"`, the type of a formula's
 * string result.
 */
type XlsxValue = InlineText | number | boolean | Date | null;
interface InlineText {
  richText: [{ text: string }];
}
const inline = (text: string): InlineText => ({ richText: [{ text }] });

function toDate(ms: number): Date | null {
  return ms >= EXCEL_MIN_MS && ms < EXCEL_MAX_MS ? new Date(ms) : null;
}

/** Converts one cell for a column of `type`. Timestamps keep their wall-clock time; Excel has no time zones. */
export function xlsxValue(cell: Cell, type: ColumnType): XlsxValue {
  if (cell === null) return null;
  switch (type) {
    case 'int':
    case 'decimal':
      if (isExactNumber(cell)) return Number(cell);
      // Too many digits for a double: keep every digit as text. A number cannot become a formula.
      if (NUMBER_TEXT.test(cell)) return inline(cell);
      break;
    case 'bool':
      if (cell === 't' || cell === 'true') return true;
      if (cell === 'f' || cell === 'false') return false;
      break;
    case 'date': {
      const m = DATE_TEXT.exec(cell);
      const d = m ? toDate(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
      if (d) return d;
      break;
    }
    case 'timestamp': {
      const m = TIMESTAMP_TEXT.exec(cell);
      if (m) {
        const ms = Math.round(Number(`0${m[7] ?? ''}`) * 1000);
        const d = toDate(
          Date.UTC(
            Number(m[1]),
            Number(m[2]) - 1,
            Number(m[3]),
            Number(m[4]),
            Number(m[5]),
            Number(m[6] ?? 0),
            ms,
          ),
        );
        if (d) return d;
      }
      break;
    }
    case 'text':
      break;
  }
  return inline(neutraliseFormula(cell));
}

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

async function writeXlsx(
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
      const header = ws.addRow(columns.map((c) => inline(neutraliseFormula(c))));
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
            v.richText[0].text.length > EXCEL_MAX_TEXT
          ) {
            throw new UserError(
              `xlsx export, row ${written + (pending?.length ?? 0) + 1}, column '${columns[i]}': ${v.richText[0].text.length} characters exceed Excel's limit of ${EXCEL_MAX_TEXT} per cell`,
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
  const err = failed();
  if (err) throw err;
  if (out.destroyed)
    throw new Error('xlsx export: the output stream was closed before the workbook was complete');
}
