import { z } from 'zod';
import { UserError } from '../errors.js';
import {
  ROW_CHANGED,
  ROW_REJECTED,
  ROW_SAME,
  type Cell,
  type RejectFn,
  type RowStep,
  type RowVerdict,
} from './types.js';

/**
 * `validate:` — declared fields with a type and constraints.
 *
 * Each field compiles to two checks that must agree: a fast path (a regex and a few comparisons on
 * the text, run on every row) and a zod schema (run only on a value the fast path refused, to word
 * the reject). test/validate.test.ts holds them to the same verdict on generated values. Values are
 * kept as text and normalised (dates to ISO, booleans to t/f) so PostgreSQL does the casts in COPY.
 */
const base = {
  /** A value must be present (not NULL, not empty). */
  required: z.boolean().default(false),
  /** Human description, shown in `erp schema` and docs. */
  description: z.string().optional(),
  /** Personal or secret data: its values are masked in rejects, reports and messages (src/compliance/sensitive.ts). */
  sensitive: z.boolean().optional(),
};

const stringField = z
  .object({
    type: z.literal('string'),
    ...base,
    max_length: z.number().int().positive().optional(),
    min_length: z.number().int().min(0).optional(),
    /** A JavaScript regular expression the whole value must match. */
    pattern: z.string().optional(),
  })
  .strict();
const intField = z
  .object({
    type: z.literal('int'),
    ...base,
    min: z.number().int().optional(),
    max: z.number().int().optional(),
  })
  .strict();
const decimalField = z
  .object({
    type: z.literal('decimal'),
    ...base,
    /** Total significant digits. */
    precision: z.number().int().min(1).max(1000).default(18),
    /** Digits after the decimal point. */
    scale: z.number().int().min(0).max(1000).default(2),
    min: z.number().optional(),
    max: z.number().optional(),
  })
  .strict()
  .refine((f) => f.scale <= f.precision, { message: 'scale must not exceed precision', path: ['scale'] });
const dateField = z
  .object({
    type: z.literal('date'),
    ...base,
    /** Tokens YYYY, YY, MM, M, DD, D and literal separators, e.g. `MM/DD/YYYY`. */
    format: z.string().default('YYYY-MM-DD'),
  })
  .strict();
const timestampField = z.object({ type: z.literal('timestamp'), ...base }).strict();
const boolField = z.object({ type: z.literal('bool'), ...base }).strict();
const enumField = z.object({ type: z.literal('enum'), ...base, values: z.array(z.string()).min(1) }).strict();

export const fieldSchema = z.discriminatedUnion('type', [
  stringField,
  intField,
  decimalField,
  dateField,
  timestampField,
  boolField,
  enumField,
]);
export type FieldSpec = z.infer<typeof fieldSchema>;

export const validateSchema = z
  .object({
    /** Declared fields by column name. */
    fields: z.record(z.string().min(1), fieldSchema),
  })
  .strict();
export type ValidateConfig = z.infer<typeof validateSchema>;

/** A compiled field: `check` returns the normalised text, or undefined when the value is refused. */
interface CompiledField {
  check(value: string): string | undefined;
  /** Explains a refused value (slow path). */
  explain(value: string): string;
  required: boolean;
  /** Empty text counts as missing (every type but string). */
  emptyIsNull: boolean;
}

const INT = /^[+-]?\d+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/;
const TRUE = new Set(['true', 't', 'yes', 'y', '1', 'TRUE', 'T', 'YES', 'Y', 'True', 'Yes']);
const FALSE = new Set(['false', 'f', 'no', 'n', '0', 'FALSE', 'F', 'NO', 'N', 'False', 'No']);

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1 || y < 1) return false;
  const days =
    m === 2
      ? y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0)
        ? 29
        : 28
      : [4, 6, 9, 11].includes(m)
        ? 30
        : 31;
  return d <= days;
}

/** Date format tokens: the regex group each stands for, and which part of the date it is. */
const DATE_TOKENS = {
  YYYY: ['(\\d{4})', 'Y'],
  YY: ['(\\d{2})', 'YY'],
  MM: ['(\\d{2})', 'M'],
  M: ['(\\d{1,2})', 'M'],
  DD: ['(\\d{2})', 'D'],
  D: ['(\\d{1,2})', 'D'],
} as const;

/** Compiles a date format like `MM/DD/YYYY` into a parser returning ISO `YYYY-MM-DD`. */
export function compileDateFormat(format: string): (value: string) => string | undefined {
  const order: ('Y' | 'YY' | 'M' | 'D')[] = [];
  let src = '^';
  const tokens = /YYYY|YY|MM|M|DD|D/g;
  let last = 0;
  for (let m = tokens.exec(format); m; m = tokens.exec(format)) {
    src += escapeRegex(format.slice(last, m.index));
    const t = m[0] as keyof typeof DATE_TOKENS;
    src += DATE_TOKENS[t][0];
    order.push(DATE_TOKENS[t][1]);
    last = m.index + t.length;
  }
  src += escapeRegex(format.slice(last)) + '$';
  if (!order.some((o) => o === 'Y' || o === 'YY') || !order.includes('M') || !order.includes('D')) {
    throw new UserError(
      `date format '${format}' needs a year (YYYY or YY), a month (MM or M) and a day (DD or D)`,
    );
  }
  if (format === 'YYYY-MM-DD')
    return (value) => (value.length === 10 && isoDatePrefix(value) ? value : undefined);
  const re = new RegExp(src);
  const yi = order.findIndex((o) => o === 'Y' || o === 'YY') + 1;
  const twoDigitYear = order.includes('YY');
  const mi = order.indexOf('M') + 1;
  const di = order.indexOf('D') + 1;
  return (value) => {
    const m = re.exec(value);
    if (!m) return undefined;
    let y = Number(m[yi]);
    if (twoDigitYear) y = y < 70 ? 2000 + y : 1900 + y;
    const mo = Number(m[mi]);
    const d = Number(m[di]);
    if (!validDate(y, mo, d)) return undefined;
    return `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
  };
}

const DIGITS = 2 ** 26;

/**
 * Scans `v` as a plain decimal (`[+-]?digits[.digits]`): -1 when it is not one, else its digits
 * before the point (leading zeros not counted) × 2^26 + its digits after it (a cell is far shorter
 * than 2^26 characters, so both counts fit). One number, no array:
 * the validate fast path runs this on every decimal of a load.
 */
function scanDecimal(v: string): number {
  const len = v.length;
  if (len >= DIGITS) return -1;
  let i = 0;
  let c = v.charCodeAt(0);
  if (c === 43 || c === 45) i++; // + -
  let lead = 0;
  while (i < len && v.charCodeAt(i) === 48) {
    lead++;
    i++;
  }
  let int = 0;
  for (; i < len; i++) {
    c = v.charCodeAt(i);
    if (c < 48 || c > 57) break;
    int++;
  }
  let frac = 0;
  if (i < len) {
    if (v.charCodeAt(i) !== 46) return -1; // .
    for (i++; i < len; i++) {
      c = v.charCodeAt(i);
      if (c < 48 || c > 57) return -1;
      frac++;
    }
  }
  if (lead + int + frac === 0) return -1;
  return int * DIGITS + frac;
}

/** Significant digits before and after the point, or undefined when `v` is not a plain decimal. */
function decimalDigits(v: string): [number, number] | undefined {
  const d = scanDecimal(v);
  return d < 0 ? undefined : [Math.floor(d / DIGITS), d % DIGITS];
}

/** `decimalDigits(v)` within `intDigits` and `scale`. */
function decimalFits(v: string, intDigits: number, scale: number): boolean {
  const d = scanDecimal(v);
  return d >= 0 && Math.floor(d / DIGITS) <= intDigits && d % DIGITS <= scale;
}

/** The value of `v` (at most 15 characters) when it is `[+-]?digits`, else undefined; as INT and Number. */
function shortInt(v: string): number | undefined {
  const len = v.length;
  let i = 0;
  let neg = false;
  const c0 = v.charCodeAt(0);
  if (c0 === 43 || c0 === 45) {
    neg = c0 === 45;
    i = 1;
  }
  if (i >= len) return undefined;
  let n = 0;
  for (; i < len; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

/** Reads `n` ASCII digits of `v` at `at`, or -1 when one of them is not a digit. */
function digitsAt(v: string, at: number, n: number): number {
  let x = 0;
  for (let i = at; i < at + n; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    x = x * 10 + c;
  }
  return x;
}

/** True when `v` starts with a valid ISO date YYYY-MM-DD. */
function isoDatePrefix(v: string): boolean {
  if (v.length < 10 || v.charCodeAt(4) !== 45 || v.charCodeAt(7) !== 45) return false;
  const y = digitsAt(v, 0, 4);
  const m = digitsAt(v, 5, 2);
  const d = digitsAt(v, 8, 2);
  return y >= 0 && m >= 0 && d >= 0 && validDate(y, m, d);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Compiles `pattern` to match the whole value, as `pattern:` promises (`a|b` means `^(?:a|b)$`). */
function compilePattern(pattern: string, field: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`, 'u');
  } catch (err) {
    throw new UserError(
      `validate.fields.${field}.pattern: not a valid regular expression: ${(err as Error).message}`,
    );
  }
}

/** The zod schema of one field's text value: the slow path that words a reject. */
export function fieldValueSchema(spec: FieldSpec, name: string): z.ZodType<string> {
  switch (spec.type) {
    case 'string': {
      let s = z.string();
      if (spec.min_length !== undefined)
        s = s.refine(
          (v) => [...v].length >= spec.min_length!,
          `expected at least ${spec.min_length} characters`,
        );
      if (spec.max_length !== undefined)
        s = s.refine(
          (v) => [...v].length <= spec.max_length!,
          `expected at most ${spec.max_length} characters`,
        );
      if (spec.pattern !== undefined) {
        const re = compilePattern(spec.pattern, name);
        s = s.refine((v) => re.test(v), `expected text matching ${spec.pattern}`);
      }
      return s;
    }
    case 'int':
      return (
        z
          .string()
          // Abort here: the checks below call BigInt, which throws on anything but a whole number.
          .regex(INT, { message: 'expected a whole number', abort: true })
          .refine((v) => {
            const n = BigInt(v);
            return n >= INT64_MIN && n <= INT64_MAX;
          }, 'expected a whole number within the 64-bit range')
          .refine(
            (v) => spec.min === undefined || BigInt(v) >= BigInt(spec.min),
            `expected a number ≥ ${spec.min}`,
          )
          .refine(
            (v) => spec.max === undefined || BigInt(v) <= BigInt(spec.max),
            `expected a number ≤ ${spec.max}`,
          )
      );
    case 'decimal': {
      const intDigits = spec.precision - spec.scale;
      return z
        .string()
        .refine((v) => decimalDigits(v) !== undefined, 'expected a decimal number like 1234.50')
        .refine(
          (v) => (decimalDigits(v)?.[0] ?? 0) <= intDigits,
          `expected at most ${intDigits} digits before the decimal point (decimal(${spec.precision},${spec.scale}))`,
        )
        .refine(
          (v) => (decimalDigits(v)?.[1] ?? 0) <= spec.scale,
          `expected at most ${spec.scale} digits after the decimal point (decimal(${spec.precision},${spec.scale}))`,
        )
        .refine((v) => spec.min === undefined || Number(v) >= spec.min, `expected a number ≥ ${spec.min}`)
        .refine((v) => spec.max === undefined || Number(v) <= spec.max, `expected a number ≤ ${spec.max}`);
    }
    case 'date': {
      const parse = compileDateFormat(spec.format);
      return z.string().refine((v) => parse(v) !== undefined, `expected a date as ${spec.format}`);
    }
    case 'timestamp':
      return z.string().refine((v) => {
        const m = TIMESTAMP.exec(v);
        if (!m) return false;
        if (!validDate(Number(m[1]), Number(m[2]), Number(m[3]))) return false;
        return m[4] === undefined || (Number(m[4]) < 24 && Number(m[5]) < 60 && Number(m[6] ?? 0) < 60);
      }, 'expected an ISO 8601 timestamp like 2026-11-30T17:45:00Z');
    case 'bool':
      return z
        .string()
        .refine((v) => TRUE.has(v) || FALSE.has(v), 'expected a boolean (true/false, yes/no, 1/0)');
    case 'enum':
      return z.enum(spec.values as [string, ...string[]], {
        message: `expected one of ${spec.values.join(', ')}`,
      });
  }
}

/** The fast path of one field. */
function compileField(spec: FieldSpec, name: string): CompiledField {
  const slow = fieldValueSchema(spec, name);
  const explain = (value: string): string => {
    const r = slow.safeParse(value);
    return r.success
      ? 'refused by the fast path but accepted by the schema (please report this)'
      : r.error.issues[0]!.message;
  };
  const common = { explain, required: spec.required, emptyIsNull: spec.type !== 'string' };
  switch (spec.type) {
    case 'string': {
      const { max_length: max, min_length: min } = spec;
      const re = spec.pattern !== undefined ? compilePattern(spec.pattern, name) : null;
      return {
        ...common,
        check(v) {
          // v.length counts UTF-16 units; count code points only when it could matter.
          if (max !== undefined && v.length > max && [...v].length > max) return undefined;
          if (min !== undefined && v.length < min * 2 && [...v].length < min) return undefined;
          if (re !== null && !re.test(v)) return undefined;
          return v;
        },
      };
    }
    case 'int': {
      const lo = spec.min ?? Number.MIN_SAFE_INTEGER;
      const hi = spec.max ?? Number.MAX_SAFE_INTEGER;
      const bounded = spec.min !== undefined || spec.max !== undefined;
      return {
        ...common,
        check(v) {
          // Up to 15 characters (sign included) a Number is exact; 16 digits can exceed 2^53.
          if (v.length <= 15) {
            const n = shortInt(v);
            return n === undefined || n < lo || n > hi ? undefined : v;
          }
          if (!INT.test(v)) return undefined;
          const n = BigInt(v);
          if (n < INT64_MIN || n > INT64_MAX) return undefined;
          if (
            bounded &&
            ((spec.min !== undefined && n < BigInt(spec.min)) ||
              (spec.max !== undefined && n > BigInt(spec.max)))
          )
            return undefined;
          return v;
        },
      };
    }
    case 'decimal': {
      const intDigits = spec.precision - spec.scale;
      const { min, max, scale } = spec;
      return {
        ...common,
        check(v) {
          if (!decimalFits(v, intDigits, scale)) return undefined;
          if (min !== undefined || max !== undefined) {
            const n = Number(v);
            if ((min !== undefined && n < min) || (max !== undefined && n > max)) return undefined;
          }
          return v;
        },
      };
    }
    case 'date': {
      const parse = compileDateFormat(spec.format);
      return { ...common, check: parse };
    }
    case 'timestamp':
      return {
        ...common,
        check(v) {
          if (!isoDatePrefix(v) || !TIMESTAMP.test(v)) return undefined;
          // The pattern fixed where hours, minutes and seconds stand: HH at 11, MM at 14, SS at 17.
          if (v.length > 10 && (digitsAt(v, 11, 2) > 23 || digitsAt(v, 14, 2) > 59)) return undefined;
          if (v.length > 16 && v.charCodeAt(16) === 58 && digitsAt(v, 17, 2) > 59) return undefined;
          return v;
        },
      };
    case 'bool':
      return { ...common, check: (v) => (TRUE.has(v) ? 't' : FALSE.has(v) ? 'f' : undefined) };
    case 'enum': {
      const values = new Set(spec.values);
      return { ...common, check: (v) => (values.has(v) ? v : undefined) };
    }
  }
}

/** Creates the validate step of a pipeline. */
export function createValidate(config: ValidateConfig): RowStep {
  const compiled = Object.entries(config.fields).map(([name, spec]) => ({
    name,
    spec,
    field: compileField(spec, name),
  }));
  const compileCheck = (
    input: readonly string[],
    fileName: string,
    targetTypes: readonly string[],
  ): ((row: Cell[], line: number, reject: RejectFn) => RowVerdict) => {
    const missing = compiled.filter((c) => !input.includes(c.name)).map((c) => c.name);
    if (missing.length > 0) {
      throw new UserError(
        `${fileName}: declared field${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} not found; the file's columns are: ${input.join(', ')}`,
      );
    }
    const checks = compiled.map((c) => {
      const index = input.indexOf(c.name);
      // A boolean column reads yes, 1, TRUE… as true itself: its normalisation changes nothing loaded.
      const same = c.spec.type === 'bool' && targetTypes[index] === 'bool';
      return { ...c, index, same };
    });
    return (row: Cell[], line: number, reject: RejectFn): RowVerdict => {
      let verdict: RowVerdict = ROW_SAME;
      for (let i = 0; i < checks.length; i++) {
        const c = checks[i]!;
        const v = row[c.index];
        if (v === null || v === undefined || (v === '' && c.field.emptyIsNull)) {
          if (c.field.required) {
            reject({
              file: fileName,
              line,
              field: c.name,
              value: v ?? null,
              reason: 'required value is missing',
            });
            verdict = ROW_REJECTED;
          } else if (v !== null) {
            row[c.index] = null;
            if (verdict !== ROW_REJECTED) verdict = ROW_CHANGED;
          }
          continue;
        }
        const out = c.field.check(v);
        if (out === undefined) {
          reject({ file: fileName, line, field: c.name, value: v, reason: c.field.explain(v) });
          verdict = ROW_REJECTED;
        } else if (out !== v) {
          row[c.index] = out;
          if (verdict !== ROW_REJECTED && !c.same) verdict = ROW_CHANGED;
        }
      }
      return verdict;
    };
  };
  return {
    columns: (input) => input,
    compileCheck,
    compile(input, fileName) {
      const check = compileCheck(input, fileName, []);
      return (row, line, reject) => (check(row, line, reject) === ROW_REJECTED ? null : row);
    },
  };
}
