/**
 * The streaming XLSX writer: the sheet XML is built here, a batch at a time, and zipped by yazl.
 *
 *   batches ──► typed cells (cells.ts xlsxValue) ──► <row> XML, one string a batch ──► sheet part
 *     (a PassThrough, waited on for 'drain') ──► yazl: deflate, zip entry ──► out (piped)
 *   at the end: styles, workbook, relationships and content types as small parts.
 *
 * Typed cells with the configured number formats (one cell format per column type), inline strings
 * (`t="inlineStr"`, never a formula), `auto` column widths from a sample of rows, further sheets past
 * `max_rows_per_sheet`, a bold and optionally frozen header. exceljs's WorkbookWriter did this before
 * at about ten times the CPU per cell (its cell, style and XML-stream objects; docs/performance.md).
 */
import { PassThrough, type Writable } from 'node:stream';
import { ZipFile } from 'yazl';
import { untilDrained } from '../csv/writer.js';
import { UserError } from '../errors.js';
import type { XlsxFormatConfig } from './options.js';
import type { Batch, ColumnType } from '../stages/types.js';
import { columnLetter, escapeOoxml, xlsxValue, type XlsxValue } from './cells.js';

/** Excel's longest cell text. */
const EXCEL_MAX_TEXT = 32_767;
/** Rows sampled to size `auto` columns. */
const WIDTH_SAMPLE_ROWS = 1000;
/** Deflate level of the parts: 1 gave files ~25 % larger for about half the deflate time; see docs/performance.md. */
const DEFLATE_LEVEL = 6;
/** Days from Excel's epoch (1899-12-30, 1900 system) to 1970-01-01. */
const EXCEL_EPOCH_DAYS = 25_569;
const DAY_MS = 86_400_000;

const MAIN_NS = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
const REL_NS = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
const PKG_REL_NS = 'http://schemas.openxmlformats.org/package/2006/relationships';
const XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n';

const XML_SPECIAL = /[&<>"]/;
const XML_SPECIALS = /[&<>"]/g;
const XML_ENTITY: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
/** Text for an XML text node or attribute value. */
function xmlText(s: string): string {
  return XML_SPECIAL.test(s) ? s.replace(XML_SPECIALS, (c) => XML_ENTITY[c]!) : s;
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
  const failed = (): Error | null => failure;
  out.on('error', onError);
  const zip = new ZipFile();
  const zipped = zip.outputStream as NodeJS.ReadableStream & NodeJS.EventEmitter;
  zipped.on('error', onError);
  zipped.pipe(out);

  // Cell formats (cellXfs): 0 the default, then one per distinct number format, then the header's bold.
  const numFmts: string[] = [];
  const styleOf = (type: ColumnType): number => {
    const code = formatFor(type, config.number_formats);
    if (code === null) return 0;
    let i = numFmts.indexOf(code);
    if (i < 0) i = numFmts.push(code) - 1;
    return i + 1;
  };
  const styles = types.map(styleOf);
  const boldStyle = numFmts.length + 1;
  const letters = columns.map((_, i) => columnLetter(i));
  /** Each column's style attribute of a cell, built once: the rows only reuse it. */
  const styleAttrs = styles.map((x) => (x ? ` s="${x}"` : ''));
  const explicitWidths = config.column_widths === 'auto' ? {} : config.column_widths;
  const widths = columns.map((c) => c.length);
  const frozen = config.freeze_header && config.header;

  const sheetNames: string[] = [];
  let part: PassThrough | null = null;
  let rowsOnSheet = 0;
  let written = 0;
  let pending: XlsxValue[][] | null = [];
  let xml = '';

  const flushXml = async (): Promise<void> => {
    if (xml === '' || part === null) return;
    const ok = part.write(xml);
    xml = '';
    if (!ok && !failure && !out.destroyed) await untilDrained(part, out);
    const err = failed();
    if (err) throw err;
    if (out.destroyed)
      throw new Error('xlsx export: the output stream was closed before the workbook was complete');
  };

  const closeSheet = (): void => {
    xml += '</sheetData></worksheet>';
    part!.end(xml);
    xml = '';
    part = null;
  };

  const openSheet = (): void => {
    if (part !== null) closeSheet();
    const n = sheetNames.length + 1;
    sheetNames.push(n === 1 ? config.sheet_name : `${config.sheet_name.slice(0, 25)} (${n})`);
    part = new PassThrough({ highWaterMark: 1 << 16 });
    zip.addReadStream(part, `xl/worksheets/sheet${n}.xml`, { compressionLevel: DEFLATE_LEVEL });
    const cols = columns
      .map((name, i) => {
        const width = explicitWidths[name] ?? Math.min(60, Math.max(8, widths[i]! + 2));
        const style = styles[i] ? ` style="${styles[i]}"` : '';
        return `<col min="${i + 1}" max="${i + 1}" width="${width}"${style} customWidth="1"/>`;
      })
      .join('');
    const view = frozen
      ? '<sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView>'
      : '<sheetView workbookViewId="0"/>';
    xml +=
      `${XML_HEAD}<worksheet xmlns="${MAIN_NS}" xmlns:r="${REL_NS}"><sheetViews>${view}</sheetViews>` +
      `<sheetFormatPr defaultRowHeight="15"/><cols>${cols}</cols><sheetData>`;
    rowsOnSheet = 0;
    if (config.header) {
      xml += '<row r="1">';
      for (let i = 0; i < columns.length; i++)
        xml += `<c r="${letters[i]}1" s="${boldStyle}" t="inlineStr">${inlineXml(escapeOoxml(columns[i]!))}</c>`;
      xml += '</row>';
      rowsOnSheet = 1;
    }
  };

  const addRow = (values: XlsxValue[]): void => {
    if (part === null || rowsOnSheet >= config.max_rows_per_sheet) openSheet();
    const r = ++rowsOnSheet;
    let row = `<row r="${r}">`;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (v === null) continue;
      const s = styleAttrs[i]!;
      const ref = `${letters[i]}${r}`;
      if (typeof v === 'number') row += `<c r="${ref}"${s}><v>${v}</v></c>`;
      else if (typeof v === 'boolean') row += `<c r="${ref}"${s} t="b"><v>${v ? 1 : 0}</v></c>`;
      else if (v instanceof Date)
        row += `<c r="${ref}"${s}><v>${EXCEL_EPOCH_DAYS + v.getTime() / DAY_MS}</v></c>`;
      else row += `<c r="${ref}"${s} t="inlineStr">${inlineXml(v.richText[0].text)}</c>`;
    }
    xml += `${row}</row>`;
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
      if (pending === null) await flushXml();
    }
    flushPending();
    if (part === null) openSheet();
    closeSheet();
    addMetaParts(zip, sheetNames, numFmts, boldStyle);
    if (failure) throw failure;
    const done = new Promise<void>((resolve, reject) => {
      out.once('finish', resolve);
      out.once('close', resolve);
      out.once('error', reject);
      zipped.once('error', reject);
    });
    zip.end();
    await done;
  } catch (err) {
    // Stop the zip feeding a destination that is going away; the caller removes the file.
    zipped.unpipe(out);
    throw err;
  } finally {
    out.off('error', onError);
  }
  if (failure) throw failure;
  if (!out.writableFinished)
    throw new Error('xlsx export: the output stream was closed before the workbook was complete');
  return written;
}

/** An inline string's `<is>`: one run, whitespace kept. */
function inlineXml(text: string): string {
  const space = text !== text.trim() ? ' xml:space="preserve"' : '';
  return `<is><r><t${space}>${xmlText(text)}</t></r></is>`;
}

/** styles.xml, the workbook and the package's relationships and content types. */
function addMetaParts(
  zip: ZipFile,
  sheets: readonly string[],
  numFmts: readonly string[],
  bold: number,
): void {
  const add = (name: string, text: string): void =>
    zip.addBuffer(Buffer.from(XML_HEAD + text), name, { compressionLevel: DEFLATE_LEVEL });
  const fmts = numFmts
    .map((code, i) => `<numFmt numFmtId="${164 + i}" formatCode="${xmlText(code)}"/>`)
    .join('');
  const xfs = numFmts
    .map(
      (_, i) =>
        `<xf numFmtId="${164 + i}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>`,
    )
    .join('');
  add(
    'xl/styles.xml',
    `<styleSheet xmlns="${MAIN_NS}">` +
      (numFmts.length > 0 ? `<numFmts count="${numFmts.length}">${fmts}</numFmts>` : '') +
      '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>' +
      '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>' +
      '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>' +
      '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>' +
      '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>' +
      `<cellXfs count="${bold + 1}"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>${xfs}` +
      '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>' +
      '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>' +
      '</styleSheet>',
  );
  add(
    'xl/workbook.xml',
    `<workbook xmlns="${MAIN_NS}" xmlns:r="${REL_NS}"><bookViews><workbookView/></bookViews><sheets>` +
      sheets
        .map((name, i) => `<sheet name="${xmlText(name)}" sheetId="${i + 1}" r:id="rId${i + 1}"/>`)
        .join('') +
      '</sheets></workbook>',
  );
  add(
    'xl/_rels/workbook.xml.rels',
    `<Relationships xmlns="${PKG_REL_NS}">` +
      sheets
        .map(
          (_, i) =>
            `<Relationship Id="rId${i + 1}" Type="${REL_NS}/worksheet" Target="worksheets/sheet${i + 1}.xml"/>`,
        )
        .join('') +
      `<Relationship Id="rId${sheets.length + 1}" Type="${REL_NS}/styles" Target="styles.xml"/></Relationships>`,
  );
  add(
    '_rels/.rels',
    `<Relationships xmlns="${PKG_REL_NS}"><Relationship Id="rId1" Type="${REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
  );
  const ct = 'application/vnd.openxmlformats-officedocument.spreadsheetml';
  add(
    '[Content_Types].xml',
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
      '<Default Extension="xml" ContentType="application/xml"/>' +
      `<Override PartName="/xl/workbook.xml" ContentType="${ct}.sheet.main+xml"/>` +
      sheets
        .map(
          (_, i) =>
            `<Override PartName="/xl/worksheets/sheet${i + 1}.xml" ContentType="${ct}.worksheet+xml"/>`,
        )
        .join('') +
      `<Override PartName="/xl/styles.xml" ContentType="${ct}.styles+xml"/></Types>`,
  );
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
