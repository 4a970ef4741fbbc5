import type { Delimiters } from './delimiters.js';
import { problem, type X12Problem } from './errors.js';
import type { ElementDef, SegmentDef, SyntaxNote } from './structure.js';
import type { Segment } from './types.js';

/**
 * Element-level checks of one segment against its definition — what a 997 AK4 / 999 IK4 reports:
 *
 *   AK403  1 mandatory element missing      4 too short     7 code value not in the list   10 exclusion violated
 *          2 conditional element missing    5 too long      8 invalid date                 12 too many repetitions
 *          3 too many elements              6 bad character 9 invalid time
 *
 * Each problem names the segment, the element, the bad value and what was expected; its AK3 code
 * is 8 (segment has data element errors), so every AK3 it produces carries its AK4.
 */

/** Where the segment sits, for the problems. */
export interface ElementContext {
  file: string;
  position: number;
  delimiters: Delimiters;
  /** 005010 and later: a repetition separator in a value that does not repeat is AK4 12. */
  repetitions: boolean;
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The number of `v[from, to)` read as decimal digits, or -1 when one is not a digit. */
function digitsAt(v: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = v.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** True when `v` (8 digits CCYYMMDD, or 6 digits YYMMDD) is a calendar date. */
export function isDate(v: string): boolean {
  let y: number, mo: number, d: number;
  if (v.length === 8) {
    y = digitsAt(v, 0, 4);
    mo = digitsAt(v, 4, 6);
    d = digitsAt(v, 6, 8);
  } else if (v.length === 6) {
    y = digitsAt(v, 0, 2);
    if (y >= 0) y += 2000;
    mo = digitsAt(v, 2, 4);
    d = digitsAt(v, 4, 6);
  } else return false;
  if (y < 0 || mo < 0 || d < 0) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return mo >= 1 && mo <= 12 && d >= 1 && d <= DAYS[mo - 1]! && !(mo === 2 && d === 29 && !leap);
}

/** True when `v` is HHMM, HHMMSS or HHMMSSd..d. */
export function isTime(v: string): boolean {
  const n = v.length;
  if (n !== 4 && n !== 6 && n !== 7 && n !== 8) return false;
  if (digitsAt(v, 0, n) < 0) return false;
  return digitsAt(v, 0, 2) <= 23 && digitsAt(v, 2, 4) <= 59 && (n < 6 || digitsAt(v, 4, 6) <= 59);
}

/** What one pass over a value found (see {@link scan}). */
const CONTROL = 1;
const COMPONENT = 2;
const REPETITION = 4;

/**
 * One pass over `v`: control characters, the component separator, the repetition separator
 * (`repetition` is -1 when values cannot repeat). No allocation: this runs for every element.
 */
function scan(v: string, component: number, repetition: number): number {
  let flags = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) flags |= CONTROL;
    else if (c === component) flags |= COMPONENT;
    else if (c === repetition) flags |= REPETITION;
  }
  return flags;
}

/** Digits of a decimal number (R): -1 when `v` is not one (an optional leading minus, one optional point). */
export function decimalDigits(v: string): number {
  let digits = 0;
  let points = 0;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c === 46 /* . */) {
      if (++points > 1) return -1;
    } else if (c !== 45 /* - */ || i !== 0) return -1;
  }
  return digits === 0 ? -1 : digits;
}

/** Digits of an integer (N0–N9): -1 when `v` is not one (an optional leading minus). */
export function integerDigits(v: string): number {
  const from = v.charCodeAt(0) === 45 ? 1 : 0;
  if (from === v.length) return -1;
  for (let i = from; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  return v.length - from;
}

const describeDef = (d: ElementDef): string => {
  const len = d.min === d.max ? `${d.min}` : `${d.min}–${d.max}`;
  switch (d.type) {
    case 'R':
      return `a decimal number (R) of ${len} digits`;
    case 'DT':
      return d.max === 6 ? 'a date YYMMDD (DT)' : 'a date CCYYMMDD (DT)';
    case 'TM':
      return 'a time HHMM[SS[d]] (TM)';
    case 'ID':
      return `a code (ID) of ${len} characters`;
    case 'AN':
      return `text (AN) of ${len} characters`;
    case 'C':
      return `a composite of at most ${d.max} characters`;
    default:
      return `an integer (${d.type}, ${d.type.slice(1)} implied decimals) of ${len} digits`;
  }
};

/** Checks one value against its definition: null when it is good, else the AK4 code and reason. */
export function checkValue(
  v: string,
  d: ElementDef,
  ctx: ElementContext,
): { ak4: string; why: string } | null {
  const delimiters = ctx.delimiters;
  const repetition = ctx.repetitions && delimiters.repetition ? delimiters.repetition.charCodeAt(0) : -1;
  const flags = scan(v, delimiters.component.charCodeAt(0), repetition);
  if (flags & REPETITION) {
    return {
      ak4: '12',
      why: `a single value; it holds the repetition separator ${delimiters.repetition}`,
    };
  }
  if (d.type === 'C') return v.length > d.max ? { ak4: '5', why: describeDef(d) } : null;
  if (flags & COMPONENT) {
    return { ak4: '6', why: `${describeDef(d)}, not a composite (it holds ${delimiters.component})` };
  }
  let length = v.length;
  switch (d.type) {
    case 'AN':
    case 'ID':
      if (flags & CONTROL) return { ak4: '6', why: `${describeDef(d)} without control characters` };
      break;
    case 'DT':
      if ((v.length !== d.min && v.length !== d.max) || !isDate(v)) return { ak4: '8', why: describeDef(d) };
      return null;
    case 'TM':
      if (v.length < d.min || v.length > d.max || !isTime(v)) return { ak4: '9', why: describeDef(d) };
      return null;
    case 'R':
      length = decimalDigits(v);
      if (length < 0) return { ak4: '6', why: describeDef(d) };
      break;
    default:
      length = integerDigits(v);
      if (length < 0) return { ak4: '6', why: describeDef(d) };
  }
  if (length < d.min) return { ak4: '4', why: describeDef(d) };
  if (length > d.max) return { ak4: '5', why: describeDef(d) };
  if (d.codes && !d.codes.has(v)) {
    const list = [...d.codes];
    return {
      ak4: '7',
      why: `one of ${list.length > 12 ? `${list.slice(0, 12).join(', ')} … (${list.length} codes)` : list.join(', ')}`,
    };
  }
  return null;
}

const pos2 = (n: number): string => String(n).padStart(2, '0');

/** True when element `n` of `e` holds a value. */
const has = (e: readonly string[], n: number): boolean => n < e.length && e[n] !== '';

/** How many of `els` hold a value in `e` (the elements of a segment). */
function countPresent(e: readonly string[], els: readonly number[]): number {
  let n = 0;
  for (let k = 0; k < els.length; k++) {
    const i = els[k]!;
    if (i < e.length && e[i] !== '') n++;
  }
  return n;
}

/** Checks a syntax note; returns the element at fault, the AK4 code and the reason, or null. */
function checkNote(seg: Segment, note: SyntaxNote): { element: number; ak4: string; why: string } | null {
  const e = seg.elements;
  const els = note.elements;
  // Cheap answers first, without allocating: a segment has many notes and nearly all hold.
  switch (note.kind) {
    case 'P': {
      const n = countPresent(e, els);
      if (n === 0 || n === els.length) return null;
      break;
    }
    case 'R':
      if (countPresent(e, els) > 0) return null;
      break;
    case 'E':
      if (countPresent(e, els) <= 1) return null;
      break;
    case 'C':
    case 'L': {
      if (!has(e, els[0]!)) return null;
      const rest = countPresent(e, els) - 1;
      if (note.kind === 'C' ? rest === els.length - 1 : rest > 0) return null;
      break;
    }
  }
  const present = (n: number): boolean => has(e, n);
  const names = els.map((n) => `${seg.tag}${pos2(n)}`);
  const rest = els.slice(1);
  switch (note.kind) {
    case 'P':
      return {
        element: els.find((n) => !present(n))!,
        ak4: '2',
        why: `${names.join(' and ')} go together (${note.source}): all or none`,
      };
    case 'R':
      return {
        element: els[0]!,
        ak4: '2',
        why: `at least one of ${names.join(', ')} is required (${note.source})`,
      };
    case 'C':
      return {
        element: rest.find((n) => !present(n))!,
        ak4: '2',
        why: `${names.slice(1).join(' and ')} required when ${names[0]} is present (${note.source})`,
      };
    case 'L':
      return {
        element: rest[0]!,
        ak4: '2',
        why: `one of ${names.slice(1).join(', ')} required when ${names[0]} is present (${note.source})`,
      };
    case 'E':
      return {
        element: els.filter(present)[1]!,
        ak4: '10',
        why: `only one of ${names.join(', ')} may be present (${note.source})`,
      };
  }
}

function elementProblem(
  seg: Segment,
  ctx: ElementContext,
  element: number,
  ak4: string,
  value: string | undefined,
  text: string,
): X12Problem {
  return problem({
    code: 'ELEMENT_SYNTAX',
    level: 'element',
    file: ctx.file,
    segment: seg.ordinal,
    segmentId: seg.tag,
    positionInSet: ctx.position,
    element,
    ...(value !== undefined ? { value } : {}),
    text,
    ack: { ak3: '8', ak4 },
  });
}

/** Checks `seg` against `def`, pushing a problem per bad element onto `out`. */
export function checkElements(def: SegmentDef, seg: Segment, ctx: ElementContext, out: X12Problem[]): void {
  const defs = def.elements;
  const e = seg.elements;
  const count = e.length - 1;
  // Past the last element sent, only a mandatory one can be wrong (missing).
  const last = count > def.lastMandatory ? count : def.lastMandatory;
  for (let i = 1; i <= last; i++) {
    const v = i <= count ? e[i]! : '';
    const d = defs[i - 1];
    if (d === undefined) {
      if (v !== '') {
        const text = `${seg.tag}${pos2(i)} is ${JSON.stringify(v)}, but ${seg.tag} has ${defs.length} elements`;
        out.push(elementProblem(seg, ctx, i, '3', v, text));
        return;
      }
      continue;
    }
    if (v === '') {
      if (d.req === 'M') {
        const text = `${seg.tag}${pos2(i)} is empty; it is mandatory: expected ${describeDef(d)}`;
        out.push(elementProblem(seg, ctx, i, '1', undefined, text));
      }
      continue;
    }
    const bad = checkValue(v, d, ctx);
    if (bad !== null) {
      const text = `${seg.tag}${pos2(i)} is ${JSON.stringify(v)}; expected ${bad.why}`;
      out.push(elementProblem(seg, ctx, i, bad.ak4, v, text));
    }
  }
  const notes = def.notes;
  for (let k = 0; k < notes.length; k++) {
    const bad = checkNote(seg, notes[k]!);
    if (bad) {
      const text = `${seg.tag}${pos2(bad.element)}: ${bad.why}`;
      out.push(elementProblem(seg, ctx, bad.element, bad.ak4, undefined, text));
    }
  }
}
