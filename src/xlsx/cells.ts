/**
 * Pure cell and number helpers for XLSX: number-format classification, column letters, and the
 * conversions between Excel's cell values (numbers, date serials, inline strings) and COPY-ready
 * text, in both directions.
 */
import { NUMBER_TEXT } from '../csv/writer.js';
import type { Cell, ColumnType } from '../stages/types.js';

/** styles.xml as the reader needs it: the number format of each cell format (`s` index). */
export interface Styles {
  /** `cellXfs[i].numFmtId`. */
  xfNumFmt: number[];
  /** Custom number formats by id. */
  numFmts: Map<number, string>;
}

/** OOXML escapes characters XML cannot hold as `_xHHHH_`. */
const OOXML_ESCAPE = /_x([0-9A-Fa-f]{4})_/g;
export function unescapeOoxml(text: string): string {
  return text.includes('_x')
    ? text.replace(OOXML_ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    : text;
}

/**
 * Text as OOXML stores it: characters XML cannot hold, and CR (which an XML parser turns into LF),
 * as `_xHHHH_`; an underscore that starts such a sequence is itself escaped (`_x005F_`), so text
 * that happens to read `_x000D_` comes back as written.
 */
// Control characters are exactly what these patterns are for.
/* eslint-disable no-control-regex */
const OOXML_UNSAFE = /_(?=x[0-9A-Fa-f]{4}_)|[\x00-\x08\x0B\x0C\x0D\x0E-\x1F\uFFFE\uFFFF]/g;
const OOXML_UNSAFE_TEST = /_x[0-9A-Fa-f]{4}_|[\x00-\x08\x0B\x0C\x0D\x0E-\x1F\uFFFE\uFFFF]/;
/* eslint-enable no-control-regex */
export function escapeOoxml(text: string): string {
  if (!OOXML_UNSAFE_TEST.test(text)) return text;
  return text.replace(
    OOXML_UNSAFE,
    (c) => `_x${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}_`,
  );
}

/** How a cell's number format presents its number. */
type NumberKind = 'number' | 'date' | 'time' | 'elapsed';

/** Built-in number formats (ids without a formatCode in styles.xml) that show dates or times. */
const BUILTIN_DATE_IDS = new Set([
  14, 15, 16, 17, 18, 19, 20, 21, 22, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 45, 47,
]);
const BUILTIN_ELAPSED_IDS = new Set([46]);
/** Built-in formats that show a time of day and no date. */
const BUILTIN_TIME_IDS = new Set([18, 19, 20, 21, 45, 47]);

/** A date format that shows no day, month or year: a time of day (`hh:mm`, `h:mm:ss AM/PM`). */
function timeOnly(code: string): boolean {
  const plain = code.replace(/"[^"]*"|\\.|\[[^\]]*\]/g, '').split(';')[0] ?? '';
  return !/[dy]/i.test(plain) && !/(^|[^hs:])m+(?![:m]*s)/i.test(plain.replace(/AM\/PM|A\/P/gi, ''));
}
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

export function styleKinds(styles: Styles): (s: number) => NumberKind {
  const cache = new Map<number, NumberKind>();
  return (s) => {
    let kind = cache.get(s);
    if (kind === undefined) {
      const id = styles.xfNumFmt[s] ?? 0;
      const code = styles.numFmts.get(id);
      if (code !== undefined) {
        kind = classifyNumberFormat(code);
        if (kind === 'date' && timeOnly(code)) kind = 'time';
      } else if (BUILTIN_ELAPSED_IDS.has(id)) kind = 'elapsed';
      else if (BUILTIN_TIME_IDS.has(id)) kind = 'time';
      else kind = BUILTIN_DATE_IDS.has(id) ? 'date' : 'number';
      cache.set(s, kind);
    }
    return kind;
  };
}

/** `A` → 0, `AB` → 27; -1 when the reference has no column letters. */
export function columnIndex(ref: string): number {
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
 * `HH:MM:SS` for a time alone (serial below 1, 1900 system only). The 1900 system counts Excel's phantom 1900-02-29
 * (serial 60); the 1904 system starts at 1904-01-01. Null when out of Excel's range.
 */
export function excelSerialToIso(serial: number, date1904: boolean, time = false): string | null {
  if (!(serial >= 0) || serial >= 2_958_466) return null;
  let whole = Math.floor(serial);
  let ms = Math.round((serial - whole) * DAY_MS);
  if (ms >= DAY_MS) {
    whole++;
    ms -= DAY_MS;
  }
  // Day 0 is no date in the 1900 system, so a serial below 1 is a time of day; in the 1904 system
  // day 0 is 1904-01-01, a time of day only when the cell's format shows no date (`time`).
  if (whole === 0 && (!date1904 || time)) return timeOfDay(ms);
  let epochDays: number;
  if (date1904) epochDays = whole - 24_107;
  else if (whole === 60) return null;
  else epochDays = whole < 60 ? whole - 25_568 : whole - 25_569;
  const d = new Date(epochDays * DAY_MS);
  const date = `${String(d.getUTCFullYear()).padStart(4, '0')}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}`;
  return ms === 0 ? date : `${date}T${timeOfDay(ms)}`;
}

/** A duration serial (format `[h]:mm:ss`) as `H:MM:SS`, which PostgreSQL reads as an interval. */
export function elapsedText(serial: number): string {
  const total = Math.round(Math.abs(serial) * DAY_MS);
  const h = Math.floor(total / 3_600_000);
  const rest = timeOfDay(total % 3_600_000);
  return `${serial < 0 ? '-' : ''}${h}:${rest.slice(3)}`;
}

/** An ISO 8601 date cell (`t="d"`) as COPY-ready text. */
export function isoCellText(v: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}:\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(v.trim());
  if (!m) return v.trim();
  if (!m[2] || (m[2] === '00:00:00' && !/[1-9]/.test(m[3] ?? ''))) return m[1]!;
  return `${m[1]}T${m[2]}${m[3] && /[1-9]/.test(m[3]) ? m[3] : ''}${m[4] && m[4] !== 'Z' ? m[4] : ''}`;
}

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
 * A value for the XLSX writer: typed when the column type and the text agree, otherwise the exact
 * text. An inline string is never evaluated, so text needs no formula neutralisation (that is CSV's).
 * Text is a one-run rich text, written as a standard inline string (`t="inlineStr"`, `<is><r><t>`),
 * not `t="str"`, the type of a formula's string result.
 */
export type XlsxValue = InlineText | number | boolean | Date | null;
interface InlineText {
  richText: [{ text: string }];
}
export const inline = (text: string): InlineText => ({ richText: [{ text: escapeOoxml(text) }] });

/**
 * Milliseconds since 1970 of a UTC wall-clock time. `Date.UTC` reads years 0–99 as 1900–1999, which
 * turned 0001-01-01 into 1901-01-01, a date Excel holds; set the full year afterwards instead.
 */
function utcMs(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): number {
  const t = new Date(Date.UTC(2000, 0, 1, h, mi, s, ms));
  t.setUTCFullYear(y, mo - 1, d);
  return t.getTime();
}

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
      const d = m ? toDate(utcMs(Number(m[1]), Number(m[2]), Number(m[3]))) : null;
      if (d) return d;
      break;
    }
    case 'timestamp': {
      const m = TIMESTAMP_TEXT.exec(cell);
      if (m) {
        const ms = Math.round(Number(`0${m[7] ?? ''}`) * 1000);
        const d = toDate(
          utcMs(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0), ms),
        );
        if (d) return d;
      }
      break;
    }
    case 'text':
      break;
  }
  return inline(cell);
}
