/**
 * Serialising X12: element formatting (N0–N9, R, ID, DT, TM), segments, and an envelope writer
 * that numbers and counts for you (SE01, GE01, IEA01).
 *
 *   InterchangeWriter: begin() ─► beginGroup() ─► transaction() … ─► endGroup() ─► … ─► end()
 *                       ISA         GS              ST … SE            GE                 IEA
 *
 * Every method returns the text it produced, so a caller can stream it (`out.write`) or join it.
 */
import { delimiterProblems, ISA_LENGTH, type Delimiters } from './delimiters.js';
import { showChar } from './errors.js';
import { UserError } from '../errors.js';

/** How segments are written: delimiters plus an optional line break after each terminator. */
export interface OutputFormat {
  delimiters: Delimiters;
  /** Written after every segment terminator: '', '\n' or '\r\n'. */
  lineBreak: string;
}

/** An element: text, or the components of a composite. */
export type ElementValue = string | readonly string[];

/** A segment to write: `[tag, element1, element2, …]`. */
export type SegmentValues = readonly [string, ...ElementValue[]];

/** A value that cannot be written as asked: too long, not a number, contains a delimiter… */
export class X12FormatError extends UserError {
  override name = 'X12FormatError';
}

/** Checks a format once; throws when the delimiters are unusable. */
export function checkFormat(f: OutputFormat): void {
  const problems = delimiterProblems(f.delimiters);
  if (problems.length > 0) throw new X12FormatError(`invalid output delimiters: ${problems.join('; ')}`);
  if (!['', '\n', '\r\n'].includes(f.lineBreak))
    throw new X12FormatError(`line break must be '', LF or CRLF`);
}

function forbidden(f: OutputFormat): string[] {
  const d = f.delimiters;
  return [d.element, d.component, d.segment, ...(d.repetition ? [d.repetition] : []), '\r', '\n'];
}

/**
 * One segment as text: elements joined by the element separator, components by the component
 * separator, trailing empty elements dropped (X12 syntax), terminator and line break appended.
 * Throws when a value contains one of the delimiters.
 */
export function serializeSegment(values: SegmentValues, f: OutputFormat): string {
  const bad = forbidden(f);
  const parts: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const comps = typeof v === 'string' ? [v] : v;
    for (const c of comps) {
      for (const ch of bad) {
        if (c.includes(ch)) {
          throw new X12FormatError(
            `${values[0]}${String(i).padStart(2, '0')}: the value ${JSON.stringify(c)} contains the delimiter ${showChar(ch)}; change the data or the partner's delimiters`,
          );
        }
      }
    }
    let text = typeof v === 'string' ? v : v.join(f.delimiters.component);
    if (typeof v !== 'string') {
      // Trailing empty components are dropped like trailing elements.
      let n = v.length;
      while (n > 0 && v[n - 1] === '') n--;
      text = v.slice(0, n).join(f.delimiters.component);
    }
    parts.push(text);
  }
  let n = parts.length;
  while (n > 1 && parts[n - 1] === '') n--;
  return parts.slice(0, n).join(f.delimiters.element) + f.delimiters.segment + f.lineBreak;
}

// ── numbers ──────────────────────────────────────────────────────────────────────────────────────

/** A decimal as an integer and a scale: 12.50 → { units: 1250n, scale: 2 }. */
interface Dec {
  units: bigint;
  scale: number;
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/** Parses a number or a decimal string exactly (no floating-point rounding of strings). */
export function parseDecimal(value: number | string | bigint, what = 'value'): Dec {
  let text: string;
  if (typeof value === 'bigint') return { units: value, scale: 0 };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new X12FormatError(`${what}: ${value} is not a finite number`);
    // Plain notation, never an exponent: 1e-7 → 0.0000001.
    text = value.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
  } else {
    text = value.trim();
  }
  const m = DECIMAL.exec(text);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) {
    throw new X12FormatError(`${what}: ${JSON.stringify(value)} is not a decimal number`);
  }
  const frac = m[3] ?? '';
  const units = BigInt((m[2] || '0') + frac) * (m[1] === '-' ? -1n : 1n);
  return { units, scale: frac.length };
}

/** Rounds to `scale` places, half away from zero. */
function rescale(d: Dec, scale: number): bigint {
  if (scale >= d.scale) return d.units * 10n ** BigInt(scale - d.scale);
  const div = 10n ** BigInt(d.scale - scale);
  const neg = d.units < 0n;
  const abs = neg ? -d.units : d.units;
  let q = abs / div;
  if ((abs % div) * 2n >= div) q += 1n;
  return neg ? -q : q;
}

/** Length and padding rules for a numeric element. */
export interface NumericOptions {
  /** Pad with leading zeros to this many digits (the sign is not counted). */
  minLength?: number;
  /** Most digits allowed (the sign and a decimal point are not counted); more throws. */
  maxLength?: number;
  /** Name used in error messages, e.g. `IT104`. */
  name?: string;
}

function digitsWithin(sign: string, digits: string, o: NumericOptions): string {
  if (o.maxLength !== undefined && digits.replace('.', '').length > o.maxLength) {
    throw new X12FormatError(
      `${o.name ?? 'value'}: ${sign}${digits} has ${digits.replace('.', '').length} digits; at most ${o.maxLength} fit`,
    );
  }
  return sign + digits;
}

/**
 * Nn: implied decimal. `formatImplied(12.5, 2)` → `"1250"`, `formatImplied('-0.4', 0)` → `"0"`.
 * Rounds half away from zero.
 */
export function formatImplied(
  value: number | string | bigint,
  decimals: number,
  o: NumericOptions = {},
): string {
  const units = rescale(parseDecimal(value, o.name), decimals);
  const neg = units < 0n;
  let digits = (neg ? -units : units).toString();
  if (o.minLength !== undefined) digits = digits.padStart(o.minLength, '0');
  return digitsWithin(neg ? '-' : '', digits, o);
}

/**
 * R: explicit decimal, no exponent, no trailing zeros. `formatDecimal('12.50')` → `"12.5"`,
 * `formatDecimal(1e-7)` → `"0.0000001"`; with `maxDecimals` it rounds first.
 */
export function formatDecimal(
  value: number | string | bigint,
  o: NumericOptions & { maxDecimals?: number } = {},
): string {
  let d = parseDecimal(value, o.name);
  if (o.maxDecimals !== undefined && d.scale > o.maxDecimals) {
    d = { units: rescale(d, o.maxDecimals), scale: o.maxDecimals };
  }
  const neg = d.units < 0n;
  let s = (neg ? -d.units : d.units).toString();
  if (d.scale > 0) {
    s = s.padStart(d.scale + 1, '0');
    s = `${s.slice(0, s.length - d.scale)}.${s.slice(s.length - d.scale)}`.replace(/\.?0+$/, '');
  }
  if (s === '0') return digitsWithin('', s, o);
  return digitsWithin(neg ? '-' : '', s, o);
}

// ── text ─────────────────────────────────────────────────────────────────────────────────────────

/** Length rules for an AN or ID element. */
export interface TextOptions {
  /** Pad with trailing spaces to at least this length. */
  minLength?: number;
  /** Longest value; longer throws. */
  maxLength?: number;
  name?: string;
}

/** AN / ID: checks length, pads to the minimum with spaces. */
export function formatText(value: string, o: TextOptions = {}): string {
  if (o.maxLength !== undefined && value.length > o.maxLength) {
    throw new X12FormatError(
      `${o.name ?? 'value'}: ${JSON.stringify(value)} is ${value.length} characters; at most ${o.maxLength} fit`,
    );
  }
  return o.minLength !== undefined ? value.padEnd(o.minLength, ' ') : value;
}

/** Fixed-length ID (and ISA fields): exactly `length` characters, padded with spaces. */
export function formatId(value: string, length: number, name?: string): string {
  return formatText(value, { minLength: length, maxLength: length, ...(name ? { name } : {}) });
}

// ── dates and times ──────────────────────────────────────────────────────────────────────────────

const ISO_DATE = /^(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{2}):?(\d{2})(?::?(\d{2}))?)?/;

/** Date parts of a Date (UTC) or an ISO date/time string (taken as written, no time zone shift). */
function dateParts(
  value: Date | string,
  name?: string,
): { y: string; mo: string; d: string; h: string; mi: string; s: string } {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new X12FormatError(`${name ?? 'date'}: invalid Date`);
    const iso = value.toISOString();
    return {
      y: iso.slice(0, 4),
      mo: iso.slice(5, 7),
      d: iso.slice(8, 10),
      h: iso.slice(11, 13),
      mi: iso.slice(14, 16),
      s: iso.slice(17, 19),
    };
  }
  const m = ISO_DATE.exec(value.trim());
  if (!m)
    throw new X12FormatError(
      `${name ?? 'date'}: ${JSON.stringify(value)} is not a date (expected YYYY-MM-DD)`,
    );
  return { y: m[1]!, mo: m[2]!, d: m[3]!, h: m[4] ?? '00', mi: m[5] ?? '00', s: m[6] ?? '00' };
}

/** DT: `CCYYMMDD` (GS04, BIG01, …) or `YYMMDD` (ISA09). Dates are UTC for Date objects. */
export function formatDate(
  value: Date | string,
  format: 'CCYYMMDD' | 'YYMMDD' = 'CCYYMMDD',
  name?: string,
): string {
  const p = dateParts(value, name);
  return format === 'CCYYMMDD' ? `${p.y}${p.mo}${p.d}` : `${p.y.slice(2)}${p.mo}${p.d}`;
}

/** TM: `HHMM` (ISA10, GS05) or `HHMMSS`. Accepts a Date (UTC), an ISO date-time or `HH:MM[:SS]`. */
export function formatTime(value: Date | string, format: 'HHMM' | 'HHMMSS' = 'HHMM', name?: string): string {
  let h: string;
  let mi: string;
  let s: string;
  const t = typeof value === 'string' ? /^(\d{2}):?(\d{2})(?::?(\d{2}))?$/.exec(value.trim()) : null;
  if (t) {
    [h, mi, s] = [t[1]!, t[2]!, t[3] ?? '00'];
  } else {
    ({ h, mi, s } = dateParts(value, name));
  }
  return format === 'HHMM' ? `${h}${mi}` : `${h}${mi}${s}`;
}

// ── envelopes ────────────────────────────────────────────────────────────────────────────────────

/** Largest ISA13 / GS06 / ST02 value (9 digits). */
export const MAX_CONTROL_NUMBER = 999_999_999;

/** A control number as text: ISA13 is 9 digits zero-padded, ST02 at least 4, GS06 as is. */
export function formatControlNumber(n: number | bigint | string, minDigits: number): string {
  const s = String(n);
  if (!/^\d{1,9}$/.test(s) || BigInt(s) < 1n) {
    throw new X12FormatError(`control number ${JSON.stringify(s)} must be 1 to ${MAX_CONTROL_NUMBER}`);
  }
  return s.padStart(minDigits, '0');
}

/** What an ISA says; fixed widths are applied by {@link isaSegment}. */
export interface IsaFields {
  senderQualifier: string;
  senderId: string;
  receiverQualifier: string;
  receiverId: string;
  /** ISA09/ISA10 */
  date: Date;
  controlNumber: number | bigint | string;
  /** ISA12: 00401 (ISA11 = U) or 00501 (ISA11 = repetition separator) */
  version: '00401' | '00501';
  /** ISA14 */
  ackRequested: boolean;
  /** ISA15 */
  usage: 'P' | 'T' | 'I';
  /** ISA01/ISA02 (default 00 and blanks) */
  authorization?: { qualifier: string; value: string };
  /** ISA03/ISA04 (default 00 and blanks) */
  security?: { qualifier: string; value: string };
}

/** The ISA segment, exactly 106 characters before the line break. */
export function isaSegment(isa: IsaFields, f: OutputFormat): string {
  const d = f.delimiters;
  let isa11 = 'U';
  if (isa.version === '00501') {
    if (!d.repetition) throw new X12FormatError('ISA version 00501 needs a repetition separator in ISA11');
    isa11 = d.repetition;
  }
  const fields = [
    'ISA',
    formatId(isa.authorization?.qualifier ?? '00', 2, 'ISA01'),
    formatId(isa.authorization?.value ?? '', 10, 'ISA02'),
    formatId(isa.security?.qualifier ?? '00', 2, 'ISA03'),
    formatId(isa.security?.value ?? '', 10, 'ISA04'),
    formatId(isa.senderQualifier, 2, 'ISA05'),
    formatId(isa.senderId, 15, 'ISA06'),
    formatId(isa.receiverQualifier, 2, 'ISA07'),
    formatId(isa.receiverId, 15, 'ISA08'),
    formatDate(isa.date, 'YYMMDD'),
    formatTime(isa.date, 'HHMM'),
    isa11,
    isa.version,
    formatControlNumber(isa.controlNumber, 9),
    isa.ackRequested ? '1' : '0',
    isa.usage,
    d.component,
  ];
  for (let i = 1; i < 16; i++) {
    for (const ch of forbidden(f)) {
      if (i !== 11 && fields[i]!.includes(ch)) {
        throw new X12FormatError(
          `ISA${String(i).padStart(2, '0')}: ${JSON.stringify(fields[i])} contains the delimiter ${showChar(ch)}`,
        );
      }
    }
  }
  const text = fields.join(d.element) + d.segment;
  if (text.length !== ISA_LENGTH) throw new X12FormatError(`internal: ISA is ${text.length} characters`);
  return text + f.lineBreak;
}

/** A GS header to write; GS06 and GE01/GE02 are handled by the writer. */
export interface GroupFields {
  /** GS01 */
  functionalId: string;
  /** GS02 */
  senderId: string;
  /** GS03 */
  receiverId: string;
  /** GS04/GS05 */
  date: Date;
  /** GS06 */
  controlNumber: number | bigint | string;
  /** GS08, e.g. 004010, 005010, 005010X231A1 */
  version: string;
}

/**
 * Writes one interchange, keeping the counts the trailers need. Each method returns text; the
 * writer itself holds no segments, so an interchange of any size streams.
 */
export class InterchangeWriter {
  private readonly f: OutputFormat;
  private readonly isa: IsaFields;
  private state: 'new' | 'interchange' | 'group' | 'done' = 'new';
  private groups = 0;
  private sets = 0;
  private gs06 = '';

  constructor(format: OutputFormat, isa: IsaFields) {
    checkFormat(format);
    this.f = format;
    this.isa = isa;
  }

  /** Segment count of every transaction set written so far, in order (for tests and logs). */
  readonly setSegmentCounts: number[] = [];

  /** The ISA. */
  begin(): string {
    this.expect('new', 'begin()');
    this.state = 'interchange';
    return isaSegment(this.isa, this.f);
  }

  /** A GS. */
  beginGroup(g: GroupFields): string {
    this.expect('interchange', 'beginGroup()');
    this.state = 'group';
    this.groups++;
    this.sets = 0;
    this.gs06 = formatControlNumber(g.controlNumber, 1);
    return serializeSegment(
      [
        'GS',
        formatText(g.functionalId, { maxLength: 2, name: 'GS01' }),
        formatText(g.senderId, { maxLength: 15, name: 'GS02' }),
        formatText(g.receiverId, { maxLength: 15, name: 'GS03' }),
        formatDate(g.date, 'CCYYMMDD'),
        formatTime(g.date, 'HHMM'),
        this.gs06,
        'X',
        g.version,
      ],
      this.f,
    );
  }

  /**
   * ST, the body segments, SE with SE01 counted. `body` holds the segments between ST and SE.
   * `implementationRef` is ST03 (e.g. 005010X231A1 for a 999).
   */
  transaction(
    id: string,
    controlNumber: number | bigint | string,
    body: Iterable<SegmentValues>,
    implementationRef?: string,
  ): string {
    this.expect('group', 'transaction()');
    const st02 = formatControlNumber(controlNumber, 4);
    let text = serializeSegment(
      implementationRef ? ['ST', id, st02, implementationRef] : ['ST', id, st02],
      this.f,
    );
    let count = 1;
    for (const seg of body) {
      text += serializeSegment(seg, this.f);
      count++;
    }
    count++;
    text += serializeSegment(['SE', String(count), st02], this.f);
    this.sets++;
    this.setSegmentCounts.push(count);
    return text;
  }

  /** GE with GE01 counted. */
  endGroup(): string {
    this.expect('group', 'endGroup()');
    this.state = 'interchange';
    return serializeSegment(['GE', String(this.sets), this.gs06], this.f);
  }

  /** IEA with IEA01 counted. */
  end(): string {
    this.expect('interchange', 'end()');
    this.state = 'done';
    return serializeSegment(
      ['IEA', String(this.groups), formatControlNumber(this.isa.controlNumber, 9)],
      this.f,
    );
  }

  private expect(state: InterchangeWriter['state'], call: string): void {
    if (this.state !== state) throw new Error(`InterchangeWriter: ${call} called in state ${this.state}`);
  }
}
