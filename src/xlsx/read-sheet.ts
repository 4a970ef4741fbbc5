/**
 * The worksheet parser of the XLSX reader: one worksheet part (whatever its name) through saxes,
 * cells resolved to COPY-ready text with the workbook's shared strings and styles, rows gathered
 * into batches, bad rows rejected; the header row names the columns.
 */
import { UserError } from '../errors.js';
import type { XlsxFormatConfig } from '../stages/format-xlsx.js';
import { BatchBuffer } from '../stages/batch-buffer.js';
import type { Batch, Cell, RejectFn } from '../stages/types.js';
import {
  columnIndex,
  columnLetter,
  elapsedText,
  excelSerialToIso,
  isoCellText,
  plainNumber,
  styleKinds,
  unescapeOoxml,
  type Styles,
} from './cells.js';
import { localName, newParser, saxChunks } from './lib.js';

/** What a sheet refers to: the workbook's tables and date system. */
export interface SheetContext {
  strings: readonly string[];
  styles: Styles;
  date1904: boolean;
}

/** Limits checked while the sheet streams. */
export interface SheetLimits {
  maxCellsPerRow: number;
  maxCellChars: number;
}

/** Rows gathered before a batch is handed on. */
const BATCH_ROWS = 1000;

/** A cell value as the sheet parser produced it: text, or a problem to report. */
interface BadCell {
  col: number;
  value: string | null;
  reason: string;
}

const SIMPLE_NUMBER = /^-?\d+(\.\d+)?$/;

export async function* readSheet(
  config: XlsxFormatConfig,
  iterable: AsyncIterable<Buffer>,
  context: SheetContext,
  limits: SheetLimits,
  sheetName: string,
  fileName: string,
  reject: RejectFn,
): AsyncGenerator<Batch> {
  const where = `${fileName}[${sheetName}]`;
  const strings = context.strings;
  const date1904 = context.date1904;
  const kindOf = styleKinds(context.styles);
  let cellsInRow = 0;
  const at = (): string => `${where}, row ${rowNo}, column ${columnLetter(Math.max(col, 0))}`;
  const tooLong = (): UserError =>
    new UserError(`${at()}: the cell has more than ${limits.maxCellChars} characters (max_cell_chars)`);

  let columns: string[] | null = config.header ? null : [...config.columns!];
  const buffer = new BatchBuffer();

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
          text = excelSerialToIso(n, date1904, kind === 'time');
          if (text === null) {
            bad.push({ col, value: raw, reason: `date serial ${raw} is outside the dates Excel can show` });
            nonEmpty = true;
            return;
          }
        }
      }
    }
    if (text === null || text === '') return;
    // `_x0000_` decodes to NUL, which PostgreSQL text cannot hold: the row's reject, as in CSV,
    // rather than COPY failing the whole file in its own words.
    if (text.includes('\0')) {
      bad.push({
        col,
        value: text.replace(/\0/g, '\\x00').slice(0, 200),
        reason: 'a NUL character (_x0000_); text cannot hold NUL',
      });
      nonEmpty = true;
      return;
    }
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
    buffer.push(cells, rowNo);
  };

  const parser = newParser();
  let error: Error | null = null;
  parser.on('error', (err) => (error ??= err));
  parser.on('opentag', (tag) => {
    const name = localName(tag.name);
    switch (name) {
      case 'c': {
        if (++cellsInRow > limits.maxCellsPerRow) {
          throw new UserError(
            `${where}, row ${rowNo}: more than ${limits.maxCellsPerRow} cells in the row (max_cells_per_row)`,
          );
        }
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
        cellsInRow = 0;
        break;
      }
    }
  });
  parser.on('text', (t) => {
    if (capture === 'v' || capture === 'is') {
      value += t;
      // _xHHHH_ escapes shrink by 7 to 1 when decoded; anything longer cannot fit the limit.
      if (value.length > limits.maxCellChars * 7) throw tooLong();
    } else if (capture === 'f') formula += t;
  });
  parser.on('closetag', (tag) => {
    const name = localName(tag.name);
    switch (name) {
      case 'c':
        cellText();
        if ((cells[col]?.length ?? 0) > limits.maxCellChars) throw tooLong();
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

  for await (const _ of saxChunks(iterable, parser, where, limits.maxCellChars * 7 + 1024, tooLong)) {
    if (error)
      throw new UserError(`${where}: malformed sheet XML after row ${rowNo}: ${(error as Error).message}`);
    if (buffer.size >= BATCH_ROWS) yield buffer.take(columns)!;
  }
  if (error)
    throw new UserError(`${where}: malformed sheet XML after row ${rowNo}: ${(error as Error).message}`);
  if (columns === null) {
    throw new UserError(
      `${where}: the sheet is empty${config.skip_rows > 0 ? ` after the ${config.skip_rows} skipped rows` : ''}; expected a header row`,
    );
  }
  const last = buffer.take(columns);
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
