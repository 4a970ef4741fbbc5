import type { X12Type } from './types.js';

/**
 * Declarative transaction set structures: which segments a set may hold, in which order, how often,
 * grouped into which loops — and, per segment, its elements (requirement, type, length, codes) and
 * syntax notes. The loop reader (src/x12/loops.ts) walks a set against a structure; the element
 * checker (src/x12/elements.ts) checks each segment against its definition; mappings address loops
 * by their id (`PO1`), so a segment inside a line is never mistaken for the end of the line loop.
 *
 *   850 ─ ST BEG CUR REF* PER* FOB* SAC* ITD* DTM* TD1* TD5* ── N9 loop* ─ N1 loop* ─ PO1 loop+ ─ CTT loop? ─ AMT? SE
 *                                                                            └─ PO1 CUR CTP* MEA* PID loop* PO4* REF* SAC* DTM* TD5* SDQ* AMT* N9 loop* N1 loop*
 */

/** One element of a segment. `req`: M mandatory, O optional, X conditional (see the syntax notes). */
export interface ElementDef {
  req: 'M' | 'O' | 'X';
  /** X12 data type; `C` is a composite, checked for length only. */
  type: X12Type | 'C';
  min: number;
  max: number;
  /** Allowed code values (a closed list), or null when any value of the right shape is read. */
  codes: ReadonlySet<string> | null;
}

/**
 * A syntax note: `P` paired (all or none), `R` required (at least one), `C` conditional (if the
 * first then all the others), `E` exclusion (at most one), `L` list conditional (if the first then
 * at least one of the others). Element positions are 1-based.
 */
export interface SyntaxNote {
  kind: 'P' | 'R' | 'C' | 'E' | 'L';
  elements: number[];
  /** As written in the standard, e.g. `P0607`. */
  source: string;
}

/** One segment's definition. */
export interface SegmentDef {
  tag: string;
  name: string;
  /** elements[0] is element 01. */
  elements: ElementDef[];
  notes: SyntaxNote[];
  /**
   * First element of repeating product/service id pairs (qualifier, id), e.g. 6 for PO106/PO107 …
   * PO124/PO125; null when the segment has none.
   */
  idPairsFrom: number | null;
  /** Position of the last mandatory element (0 when none): the checker stops there when fewer are sent. */
  lastMandatory: number;
}

/** One place in a loop: a segment or a nested loop, with how often it may occur. */
export type StructureEntry =
  | { kind: 'segment'; tag: string; min: number; max: number }
  | { kind: 'loop'; loop: LoopDef; min: number; max: number };

/** A loop: its first entry is the segment that starts each occurrence (except for the set itself). */
export interface LoopDef {
  /** The loop's id: the tag of its first segment (`N1`, `PO1`), or the set id for the whole set. */
  id: string;
  entries: StructureEntry[];
  /** Per tag: the entries where a segment with that tag can stand (a segment, or a loop it starts). */
  starts: Map<string, number[]>;
}

/** A control total a trailer segment (CTT) carries about a loop. */
export interface ControlTotal {
  /** Segment holding the totals, e.g. CTT. */
  segment: string;
  /** Element holding the count of `loop` occurrences, e.g. 1 (CTT01). */
  countElement: number;
  /** The counted loop, e.g. PO1. */
  loop: string;
  /** Element holding the hash total, e.g. 2 (CTT02), and the element summed, e.g. PO1 element 2. */
  hash: { element: number; of: { tag: string; element: number } } | null;
}

/** A transaction set's structure. */
export interface SetStructure {
  /** ST01, e.g. 850. */
  id: string;
  name: string;
  root: LoopDef;
  segments: Map<string, SegmentDef>;
  totals: ControlTotal[];
  /** Every loop by id (an id used at several levels maps to the first found, outermost). */
  loops: Map<string, LoopDef>;
  /**
   * Segments the standard puts in this set that erp does not check element by element (TD3, PKG,
   * MAN…): placed where the structure names them, kept wherever else they stand, never an error;
   * a mapping cannot read them, so they are reported as unused.
   */
  standardOnly: ReadonlySet<string>;
}

/**
 * Element definitions in a compact form, one string per element: `M ID 2 2`, `O AN 1 30`,
 * `X R 1 15 A|C|N` (the optional fifth field is the closed code list).
 */
export function elements(...specs: string[]): ElementDef[] {
  return specs.map((spec) => {
    const [req, type, min, max, codes] = spec.split(' ');
    return {
      req: req as ElementDef['req'],
      type: type as ElementDef['type'],
      min: Number(min),
      max: Number(max),
      codes: codes ? new Set(codes.split('|')) : null,
    };
  });
}

/** Syntax notes as written in the standard: `P0607`, `R0203`, `C0302`, `R03050608`. */
export function notes(...sources: string[]): SyntaxNote[] {
  return sources.map((source) => {
    const kind = source[0] as SyntaxNote['kind'];
    const digits = source.slice(1);
    const list: number[] = [];
    for (let i = 0; i < digits.length; i += 2) list.push(Number(digits.slice(i, i + 2)));
    return { kind, elements: list, source };
  });
}

/** A segment definition. */
export function segment(
  tag: string,
  name: string,
  defs: ElementDef[],
  syntax: SyntaxNote[] = [],
  idPairsFrom: number | null = null,
): SegmentDef {
  let lastMandatory = 0;
  defs.forEach((d, i) => {
    if (d.req === 'M') lastMandatory = i + 1;
  });
  return { tag, name, elements: defs, notes: syntax, idPairsFrom, lastMandatory };
}

type EntrySpec = string | { loop: LoopDef; min?: number; max?: number };

/**
 * A loop from a compact list: `'BEG'` (mandatory, once), `'REF*'` (optional, repeats), `'CUR?'`
 * (optional, once), `'PO1+'` (mandatory, repeats), or a nested loop `{ loop, min, max }`.
 */
export function loop(id: string, ...specs: EntrySpec[]): LoopDef {
  const entries: StructureEntry[] = specs.map((s) => {
    if (typeof s !== 'string')
      return { kind: 'loop', loop: s.loop, min: s.min ?? 0, max: s.max ?? Number.POSITIVE_INFINITY };
    const m = /^([A-Z][A-Z0-9]{1,2})([*?+]?)$/.exec(s);
    if (!m) throw new Error(`structure ${id}: bad entry ${s}`);
    const mod = m[2];
    return {
      kind: 'segment',
      tag: m[1]!,
      min: mod === '' || mod === '+' ? 1 : 0,
      max: mod === '*' || mod === '+' ? Number.POSITIVE_INFINITY : 1,
    };
  });
  const starts = new Map<string, number[]>();
  entries.forEach((e, i) => {
    const tag = e.kind === 'segment' ? e.tag : (e.loop.entries[0] as { tag: string }).tag;
    const list = starts.get(tag) ?? [];
    list.push(i);
    starts.set(tag, list);
  });
  return { id, entries, starts };
}

/** Assembles a structure and checks that every segment it places is defined. */
export function structure(
  id: string,
  name: string,
  root: LoopDef,
  segs: SegmentDef[],
  totals: ControlTotal[],
  standard: readonly string[] = [],
): SetStructure {
  const segments = new Map(segs.map((s) => [s.tag, s]));
  const standardOnly = new Set(standard.filter((t) => !segments.has(t)));
  const loops = new Map<string, LoopDef>();
  const visit = (l: LoopDef): void => {
    if (!loops.has(l.id)) loops.set(l.id, l);
    for (const e of l.entries) {
      if (e.kind === 'loop') visit(e.loop);
      else if (!segments.has(e.tag) && !standardOnly.has(e.tag))
        throw new Error(`structure ${id}: segment ${e.tag} is not defined`);
    }
  };
  visit(root);
  return { id, name, root, segments, totals, loops, standardOnly };
}
