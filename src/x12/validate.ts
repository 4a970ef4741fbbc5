import { checkElements, type ElementContext } from './elements.js';
import { problem, type X12Problem } from './errors.js';
import { readLoops, type LoopTree, type PlacedSegment } from './loops.js';
import { PURCHASE_ORDER_850 } from './sets/850.js';
import type { ControlTotal, SetStructure } from './structure.js';
import type { TransactionSet } from './types.js';

/**
 * Validation of one transaction set against its structure:
 *
 *   readLoops (order, loops, mandatory segments) ─► checkElements per segment ─► control totals (CTT)
 *
 * Everything found is an X12 syntax problem (AK3/AK4, IK3/IK4) that rejects the set.
 */

/** The structures erp knows, by ST01. */
export const STRUCTURES: ReadonlyMap<string, SetStructure> = new Map([['850', PURCHASE_ORDER_850]]);

/** A validated set: its loops and every syntax problem. */
export interface ValidatedSet extends LoopTree {
  structure: SetStructure;
}

/** An exact decimal as a scaled integer. */
interface Decimal {
  units: bigint;
  scale: number;
}

function decimal(v: string): Decimal | null {
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(v);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return null;
  const frac = m[3] ?? '';
  const units = BigInt(`${m[2] || '0'}${frac}`) * (m[1] === '-' ? -1n : 1n);
  return { units, scale: frac.length };
}

function rescale(d: Decimal, scale: number): bigint {
  return d.units * 10n ** BigInt(scale - d.scale);
}

const show = (d: Decimal): string => {
  const neg = d.units < 0n;
  const digits = (neg ? -d.units : d.units).toString().padStart(d.scale + 1, '0');
  const int = digits.slice(0, digits.length - d.scale);
  const frac = d.scale > 0 ? `.${digits.slice(-d.scale)}`.replace(/\.?0+$/, '') : '';
  return `${neg ? '-' : ''}${int}${frac}`;
};

/**
 * The sum of `values` as a scaled integer in a double, when every step is exact (at most 15
 * digits each, the sum a safe integer); null otherwise (the caller sums with bigint instead).
 */
function quickSum(values: readonly string[]): { units: number; scale: number } | null {
  let units = 0;
  let scale = 0;
  for (const v of values) {
    let n = 0;
    let s = -1;
    let digits = 0;
    let neg = false;
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        n = n * 10 + (c - 48);
        digits++;
        if (s >= 0) s++;
      } else if (c === 46 && s < 0) s = 0;
      else if (c === 45 && i === 0) neg = true;
      else return null;
    }
    if (digits === 0 || digits > 15) return null;
    if (s < 0) s = 0;
    if (neg) n = -n;
    while (scale < s) {
      units *= 10;
      scale++;
    }
    for (let k = s; k < scale; k++) n *= 10;
    units += n;
    if (!Number.isSafeInteger(units) || !Number.isSafeInteger(n)) return null;
  }
  return { units, scale };
}

function checkTotal(total: ControlTotal, tree: LoopTree, set: TransactionSet, out: X12Problem[]): void {
  // The trailer (CTT) is near the end of the set.
  let trailer: PlacedSegment | undefined;
  const segs = set.segments;
  for (let i = segs.length - 1; i >= 0; i--) {
    if (segs[i]!.tag === total.segment) {
      trailer = { seg: segs[i]!, position: i + 1 };
      break;
    }
  }
  if (!trailer) return;
  const lines = tree.root.loops.filter((l) => l.id === total.loop);
  const file = set.group.interchange.file;
  const at = (element: number, value: string, text: string): void => {
    out.push(
      problem({
        code: 'CONTROL_TOTAL',
        level: 'element',
        file,
        segment: trailer!.seg.ordinal,
        segmentId: trailer!.seg.tag,
        positionInSet: trailer!.position,
        element,
        value,
        text,
        ack: { ak3: '8', ak4: '7' },
      }),
    );
  };
  const name = (n: number): string => `${total.segment}${String(n).padStart(2, '0')}`;
  const count = trailer.seg.elements[total.countElement] ?? '';
  if (/^\d+$/.test(count) && Number(count) !== lines.length) {
    at(
      total.countElement,
      count,
      `${name(total.countElement)} says ${count} ${total.loop} line item${count === '1' ? '' : 's'}, but ${lines.length} ${lines.length === 1 ? 'was' : 'were'} read; the set is rejected rather than loaded with lines missing`,
    );
  }
  const hash = total.hash;
  if (!hash) return;
  const declaredText = trailer.seg.elements[hash.element] ?? '';
  if (declaredText === '') return;
  const values: string[] = [];
  for (const l of lines) {
    const s =
      l.segments[0]!.seg.tag === hash.of.tag
        ? l.segments[0]
        : l.segments.find((p) => p.seg.tag === hash.of.tag);
    const v = s?.seg.elements[hash.of.element] ?? '';
    if (v !== '') values.push(v);
  }
  // The common case, exactly and without bigint: equal sums at the same scale.
  const quick = quickSum(values);
  const quickDeclared = quickSum([declaredText]);
  if (quick && quickDeclared) {
    let [a, b] = [quick.units, quickDeclared.units];
    for (let k = quick.scale; k < quickDeclared.scale; k++) a *= 10;
    for (let k = quickDeclared.scale; k < quick.scale; k++) b *= 10;
    if (Number.isSafeInteger(a) && Number.isSafeInteger(b) && a === b) return;
  }
  const declared = decimal(declaredText);
  if (!declared) return;
  let sum: Decimal = { units: 0n, scale: 0 };
  for (const text of values) {
    const v = decimal(text);
    if (!v) continue;
    const scale = Math.max(sum.scale, v.scale);
    sum = { units: rescale(sum, scale) + rescale(v, scale), scale };
  }
  const scale = Math.max(sum.scale, declared.scale);
  const a = rescale(sum, scale);
  const b = rescale(declared, scale);
  // A hash total longer than CTT02's 10 digits is sent with its high-order digits cut off.
  const abs = (n: bigint): bigint => (n < 0n ? -n : n);
  const m = 10n ** 10n;
  const truncatedMatch =
    abs(declared.units).toString().length >= 10 &&
    sum.scale <= declared.scale &&
    abs(rescale(sum, declared.scale)) % m === abs(declared.units) % m;
  if (a !== b && !truncatedMatch) {
    at(
      hash.element,
      trailer.seg.elements[hash.element]!,
      `${name(hash.element)} hash total is ${show(declared)}, but the ${hash.of.tag}${String(hash.of.element).padStart(2, '0')} quantities read add up to ${show(sum)}`,
    );
  }
}

/** Validates `set` against `structure`; see the module comment. */
export function validateSet(structure: SetStructure, set: TransactionSet): ValidatedSet {
  const tree = readLoops(structure, set);
  const problems = tree.problems;
  const d = set.group.interchange.delimiters;
  const ctx: ElementContext = {
    file: set.group.interchange.file,
    position: 0,
    delimiters: d,
    repetitions: d.repetition !== null && d.repetition !== undefined,
  };
  const segs = set.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const def = structure.segments.get(seg.tag);
    if (!def) continue;
    ctx.position = i + 1;
    checkElements(def, seg, ctx, problems);
  }
  for (const t of structure.totals) checkTotal(t, tree, set, problems);
  return { ...tree, structure };
}
