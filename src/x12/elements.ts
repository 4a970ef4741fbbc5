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
import type { Delimiters } from './delimiters.js';
import { problem, type X12Problem } from './errors.js';
import type { ElementDef, SegmentDef, SyntaxNote } from './structure.js';
import type { Segment } from './types.js';

/** Where the segment sits, for the problems. */
export interface ElementContext {
  file: string;
  position: number;
  delimiters: Delimiters;
  /** 005010 and later: a repetition separator in a value that does not repeat is AK4 12. */
  repetitions: boolean;
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** True when `v` (8 digits CCYYMMDD, or 6 digits YYMMDD) is a calendar date. */
export function isDate(v: string): boolean {
  let y: number, mo: number, d: number;
  if (/^\d{8}$/.test(v)) [y, mo, d] = [Number(v.slice(0, 4)), Number(v.slice(4, 6)), Number(v.slice(6, 8))];
  else if (/^\d{6}$/.test(v))
    [y, mo, d] = [2000 + Number(v.slice(0, 2)), Number(v.slice(2, 4)), Number(v.slice(4, 6))];
  else return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return mo >= 1 && mo <= 12 && d >= 1 && d <= DAYS[mo - 1]! && !(mo === 2 && d === 29 && !leap);
}

/** True when `v` is HHMM, HHMMSS or HHMMSSd..d. */
export function isTime(v: string): boolean {
  const m = /^(\d{2})(\d{2})(?:(\d{2})(\d{1,2})?)?$/.exec(v);
  return m !== null && Number(m[1]) <= 23 && Number(m[2]) <= 59 && (m[3] === undefined || Number(m[3]) <= 59);
}

/** Characters X12 never allows inside a value: control characters (the delimiters are split out). */
function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
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
  if (ctx.repetitions && ctx.delimiters.repetition && v.includes(ctx.delimiters.repetition)) {
    return {
      ak4: '12',
      why: `a single value; it holds the repetition separator ${ctx.delimiters.repetition}`,
    };
  }
  if (d.type === 'C') return v.length > d.max ? { ak4: '5', why: describeDef(d) } : null;
  if (v.includes(ctx.delimiters.component)) {
    return { ak4: '6', why: `${describeDef(d)}, not a composite (it holds ${ctx.delimiters.component})` };
  }
  let length = v.length;
  switch (d.type) {
    case 'AN':
    case 'ID':
      if (hasControl(v)) return { ak4: '6', why: `${describeDef(d)} without control characters` };
      break;
    case 'DT':
      if (!isDate(v) || (v.length !== d.min && v.length !== d.max)) return { ak4: '8', why: describeDef(d) };
      return null;
    case 'TM':
      if (!isTime(v) || v.length < d.min || v.length > d.max) return { ak4: '9', why: describeDef(d) };
      return null;
    case 'R':
      if (!/^-?(?:\d+\.?\d*|\.\d+)$/.test(v)) return { ak4: '6', why: describeDef(d) };
      length = v.replace(/[-.]/g, '').length;
      break;
    default:
      if (!/^-?\d+$/.test(v)) return { ak4: '6', why: describeDef(d) };
      length = v.startsWith('-') ? v.length - 1 : v.length;
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

/** Checks a syntax note; returns the element at fault, the AK4 code and the reason, or null. */
function checkNote(seg: Segment, note: SyntaxNote): { element: number; ak4: string; why: string } | null {
  const e = seg.elements;
  const present = (n: number): boolean => n < e.length && e[n] !== '';
  const els = note.elements;
  // Cheap answers first: a segment has many notes and nearly all hold.
  if ((note.kind === 'C' || note.kind === 'L') && !present(els[0]!)) return null;
  if ((note.kind === 'P' || note.kind === 'R') && els.every((n) => n >= e.length || e[n] === '')) {
    return note.kind === 'P'
      ? null
      : {
          element: els[0]!,
          ak4: '2',
          why: `at least one of ${els.map((n) => `${seg.tag}${pos2(n)}`).join(', ')} is required (${note.source})`,
        };
  }
  if (note.kind === 'E' && els.filter(present).length <= 1) return null;
  const names = els.map((n) => `${seg.tag}${pos2(n)}`);
  const [first, ...rest] = els as [number, ...number[]];
  switch (note.kind) {
    case 'P': {
      if (!note.elements.some(present)) return null;
      const missing = note.elements.find((n) => !present(n));
      return missing === undefined
        ? null
        : {
            element: missing,
            ak4: '2',
            why: `${names.join(' and ')} go together (${note.source}): all or none`,
          };
    }
    case 'R':
      return note.elements.some(present)
        ? null
        : {
            element: first,
            ak4: '2',
            why: `at least one of ${names.join(', ')} is required (${note.source})`,
          };
    case 'C': {
      if (!present(first)) return null;
      const missing = rest.find((n) => !present(n));
      return missing === undefined
        ? null
        : {
            element: missing,
            ak4: '2',
            why: `${names.slice(1).join(' and ')} required when ${names[0]} is present (${note.source})`,
          };
    }
    case 'L':
      return !present(first) || rest.some(present)
        ? null
        : {
            element: rest[0]!,
            ak4: '2',
            why: `one of ${names.slice(1).join(', ')} required when ${names[0]} is present (${note.source})`,
          };
    case 'E': {
      const there = note.elements.filter(present);
      return there.length <= 1
        ? null
        : {
            element: there[1]!,
            ak4: '10',
            why: `only one of ${names.join(', ')} may be present (${note.source})`,
          };
    }
  }
}

/** Checks `seg` against `def`, pushing a problem per bad element onto `out`. */
export function checkElements(def: SegmentDef, seg: Segment, ctx: ElementContext, out: X12Problem[]): void {
  const push = (element: number, ak4: string, value: string | undefined, text: string): void => {
    out.push(
      problem({
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
      }),
    );
  };
  const defs = def.elements;
  const count = seg.elements.length - 1;
  for (let i = 1; i <= count || i <= defs.length; i++) {
    const v = seg.elements[i] ?? '';
    const name = `${seg.tag}${pos2(i)}`;
    const d = defs[i - 1];
    if (d === undefined) {
      if (v !== '') {
        push(i, '3', v, `${name} is ${JSON.stringify(v)}, but ${seg.tag} has ${defs.length} elements`);
        return;
      }
      continue;
    }
    if (v === '') {
      if (d.req === 'M')
        push(i, '1', undefined, `${name} is empty; it is mandatory: expected ${describeDef(d)}`);
      continue;
    }
    const bad = checkValue(v, d, ctx);
    if (bad) push(i, bad.ak4, v, `${name} is ${JSON.stringify(v)}; expected ${bad.why}`);
  }
  for (const note of def.notes) {
    const bad = checkNote(seg, note);
    if (bad) push(bad.element, bad.ak4, undefined, `${seg.tag}${pos2(bad.element)}: ${bad.why}`);
  }
}
