/**
 * Validation of one transaction set against its structure:
 *
 *   readLoops (order, loops, mandatory segments) ─► checkElements per segment ─► control totals (CTT)
 *
 * Everything found is an X12 syntax problem (AK3/AK4, IK3/IK4) that rejects the set.
 */
import { checkElements, type ElementContext } from './elements.js';
import { problem, type X12Problem } from './errors.js';
import { readLoops, type LoopNode, type LoopTree, type PlacedSegment } from './loops.js';
import { PURCHASE_ORDER_850 } from './sets/850.js';
import type { ControlTotal, SetStructure } from './structure.js';
import type { TransactionSet } from './types.js';

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

function checkTotal(total: ControlTotal, tree: LoopTree, set: TransactionSet, out: X12Problem[]): void {
  let trailer: PlacedSegment | undefined;
  const visit = (node: LoopNode): void => {
    for (const s of node.segments) if (s.seg.tag === total.segment) trailer ??= s;
    for (const l of node.loops) visit(l);
  };
  visit(tree.root);
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
  const declared = hash ? decimal(trailer.seg.elements[hash.element] ?? '') : null;
  if (!hash || !declared) return;
  let sum: Decimal = { units: 0n, scale: 0 };
  for (const l of lines) {
    const s = l.segments.find((p) => p.seg.tag === hash.of.tag);
    const v = s ? decimal(s.seg.elements[hash.of.element] ?? '') : null;
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
