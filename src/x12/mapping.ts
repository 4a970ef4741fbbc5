import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml.js';
import { UserError } from '../errors.js';
import { decimalDigits, integerDigits, isDate } from './elements.js';
import { problem, type X12Problem } from './errors.js';
import { flatten, type LoopNode, type PlacedSegment } from './loops.js';
import type { SetStructure } from './structure.js';
import { X12_TYPES, type TransactionSet, type X12Type } from './types.js';
import { STRUCTURES, validateSet } from './validate.js';

/**
 * Inbound mapping: one transaction set → `{ header, lines }` of named text fields.
 *
 *   mappings/x12/850-in.yaml                       ST*850 … SE, read into loops by its structure (src/x12/sets/)
 *   header:                                        ├─ header scope: every segment outside the line loops
 *     po_number: BEG03                             │    BEG, CUR, REF, SAC, N1 loops, CTT loop…
 *     ship_to: N1[N101=ST].N102                    │
 *   lines:                                         └─ line scope: each occurrence of the PO1 loop, with
 *     loop: PO1                                         everything the structure puts inside it (PID, MEA,
 *     fields:                                           PO4, SAC, AMT, SDQ, DTM, N9 and N1 loops…)
 *       quantity: { path: PO102, type: R }
 *       vendor_part: { product_id: [VP, VN, SK] }   the id of the first qualifier found in any PO106–PO125 pair
 *
 * Paths: `BEG03` (element 3 of the first BEG), `N1[N101=ST].N102` (N102 of the first N1 whose N101
 * is ST; `N101=ST|BT` allows several values), `PO1[*].PO102` (in `lines`, the same as `PO102`),
 * `MEA04-2` (component 2 of MEA04). Types convert X12 values to what PostgreSQL reads: DT → YYYY-MM-DD,
 * TM → HH:MM[:SS], R and N0–N9 → decimal text. Before mapping, the set is validated against its
 * structure (src/x12/validate.ts): those problems are X12 syntax errors. A value the mapping
 * requires but X12 does not is a business problem (`business: true`).
 */

const PATH =
  /^(?:([A-Z][A-Z0-9]{1,2})\[(?:(\*)|([A-Z][A-Z0-9]{1,2})(\d{2})=([^\]]+))\]\.)?([A-Z][A-Z0-9]{1,2})(\d{2})(?:-(\d{1,2}))?$/;

/** A compiled element path. */
export interface ElementPath {
  source: string;
  tag: string;
  /** Qualifier: element `element` of the segment must be one of `values`. */
  where: { element: number; values: string[] } | null;
  /** `[*]`: every occurrence (the line loop). */
  all: boolean;
  element: number;
  component: number | null;
}

/** Parses a path; returns a reason string when it is not valid. */
export function parsePath(source: string): ElementPath | string {
  const m = PATH.exec(source.trim());
  if (!m) {
    return `${JSON.stringify(source)} is not an element path; expected e.g. BEG03, N1[N101=ST].N102, PO1[*].PO102 or MEA04-2`;
  }
  const [, seg, star, condTag, condPos, condValues, tag, pos, comp] = m;
  if (seg !== undefined && seg !== tag) return `${source}: the element ${tag}${pos} is not in segment ${seg}`;
  if (condTag !== undefined && condTag !== tag)
    return `${source}: the qualifier ${condTag}${condPos} is not in segment ${tag}`;
  const element = Number(pos);
  if (element < 1) return `${source}: element positions start at 01`;
  return {
    source,
    tag: tag!,
    where: condTag !== undefined ? { element: Number(condPos), values: condValues!.split('|') } : null,
    all: star !== undefined,
    element,
    component: comp !== undefined ? Number(comp) : null,
  };
}

const pathString = z.string().superRefine((s, ctx) => {
  const p = parsePath(s);
  if (typeof p === 'string') ctx.addIssue({ code: 'custom', message: p });
});

export { X12_TYPES, type X12Type } from './types.js';

const TAG = z.string().regex(/^[A-Z][A-Z0-9]{1,2}$/, 'a segment id such as PO1');
const QUALIFIER = z.string().regex(/^[A-Z0-9]{2}$/, 'a 2-character product id qualifier such as VP, BP, UP');

/** One field: a path, a path with a type and whether it is required, or a product id by qualifier. */
export const inboundFieldSchema = z.union([
  pathString,
  z
    .object({
      /** Element path, e.g. BEG03 or N1[N101=ST].N102. */
      path: pathString,
      /** How the value is read. @defaultValue AN */
      type: z.enum(X12_TYPES).default('AN'),
      /** An empty or missing value rejects the set (a business problem: X12 itself may allow it). @defaultValue false */
      required: z.boolean().default(false),
    })
    .strict(),
  z
    .object({
      /**
       * Product id qualifiers in order of preference, e.g. [VP, VN, SK]: the id of the first one
       * found in any (qualifier, id) pair of the segment (PO106/PO107 … PO124/PO125) is read.
       */
      product_id: z.array(QUALIFIER).min(1),
      /** Segment holding the pairs. @defaultValue the line loop's segment (PO1) */
      segment: TAG.optional(),
      /** @defaultValue false */
      required: z.boolean().default(false),
    })
    .strict(),
]);

/** `mappings/x12/<set>-in.yaml`. */
export const inboundMappingSchema = z
  .object({
    description: z.string().optional(),
    /** ST01 this mapping reads, e.g. '850'. */
    transaction_set: z.string().regex(/^\d{3}$/, 'a 3-digit transaction set id'),
    /** Header fields: paths searched in the segments outside the line loop. */
    header: z.record(z.string(), inboundFieldSchema).default({}),
    /** Line items: one row per occurrence of `loop`. */
    lines: z
      .object({
        /** The loop of the set's structure that holds one line, e.g. PO1. */
        loop: TAG,
        /** No longer read: kept only to say so. */
        until: z.unknown().optional(),
        /** Line fields: paths searched within the line's loop, nested loops included. */
        fields: z.record(z.string(), inboundFieldSchema),
      })
      .strict()
      .superRefine((l, ctx) => {
        if (l.until !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['until'],
            message:
              'is no longer read: the line loop ends where the transaction set structure says (src/x12/sets/); remove until',
          });
        }
      })
      .optional(),
  })
  .strict();

export type InboundMappingConfig = z.output<typeof inboundMappingSchema>;

/** A compiled field: an element path, or a product id by qualifier. */
export type CompiledField =
  | { kind: 'path'; name: string; path: ElementPath; type: X12Type; required: boolean }
  | { kind: 'product'; name: string; segment: string; from: number; qualifiers: string[]; required: boolean };

/** A mapping ready to apply; see {@link compileInboundMapping}. */
export interface InboundMapping {
  name: string;
  transactionSet: string;
  /** The set's structure, or null when erp declares none (then the mapping reads the header only). */
  structure: SetStructure | null;
  header: CompiledField[];
  lines: { loop: string; fields: CompiledField[] } | null;
  /** Segment ids each scope reads: what is not in them is reported as unused. */
  reads: { header: Set<string>; lines: Set<string> };
}

/** How a field is described in messages: `BEG03` or `product id VP, VN or SK (PO106–PO125)`. */
export function describeField(f: CompiledField): string {
  if (f.kind === 'path') return f.path.source;
  const q = f.qualifiers;
  const list = q.length === 1 ? q[0]! : `${q.slice(0, -1).join(', ')} or ${q[q.length - 1]!}`;
  return `product id ${list} in any ${f.segment}${String(f.from).padStart(2, '0')}–${f.segment}25 pair`;
}

function compileFields(
  fields: Record<string, z.output<typeof inboundFieldSchema>>,
  lineSegment: string | null,
  structure: SetStructure | null,
  name: string,
  scope: string,
): CompiledField[] {
  return Object.entries(fields).map(([field, spec]): CompiledField => {
    const at = `${name}: ${scope}.${field}`;
    if (typeof spec !== 'string' && 'product_id' in spec) {
      const segment = spec.segment ?? lineSegment;
      if (segment === null) throw new UserError(`${at}: product_id needs segment (e.g. PO1) outside lines`);
      const def = structure?.segments.get(segment);
      if (!def || def.idPairsFrom === null) {
        throw new UserError(
          `${at}: segment ${segment} has no product id pairs in the ${structure?.id ?? ''} structure`,
        );
      }
      return {
        kind: 'product',
        name: field,
        segment,
        from: def.idPairsFrom,
        qualifiers: spec.product_id,
        required: spec.required,
      };
    }
    const s = typeof spec === 'string' ? { path: spec, type: 'AN' as const, required: false } : spec;
    const p = parsePath(s.path) as ElementPath;
    if (p.all && lineSegment === null) {
      throw new UserError(`${at}: ${s.path} selects every ${p.tag}; put it under lines`);
    }
    if (structure && !structure.segments.has(p.tag)) {
      throw new UserError(
        `${at}: ${s.path} reads segment ${p.tag}, which is not in the ${structure.id} structure (src/x12/sets/${structure.id}.ts)`,
      );
    }
    return { kind: 'path', name: field, path: p, type: s.type, required: s.required };
  });
}

const tagsOf = (fields: CompiledField[]): string[] =>
  fields.map((f) => (f.kind === 'path' ? f.path.tag : f.segment));

/** Compiles a validated mapping; `name` is used in messages. */
export function compileInboundMapping(config: InboundMappingConfig, name: string): InboundMapping {
  const structure = STRUCTURES.get(config.transaction_set) ?? null;
  let lines: InboundMapping['lines'] = null;
  if (config.lines) {
    const loopDef = structure?.loops.get(config.lines.loop);
    if (!structure || !loopDef) {
      throw new UserError(
        structure
          ? `${name}: lines.loop: ${config.lines.loop} is not a loop of the ${structure.id} structure; loops: ${[...structure.loops.keys()].filter((k) => k !== structure.id).join(', ')}`
          : `${name}: lines: erp declares no structure for transaction set ${config.transaction_set} (it knows ${[...STRUCTURES.keys()].join(', ')}), so its loops cannot be read`,
      );
    }
    lines = {
      loop: config.lines.loop,
      fields: compileFields(config.lines.fields, config.lines.loop, structure, name, 'lines.fields'),
    };
  }
  const header = compileFields(config.header, null, structure, name, 'header');
  const totals = structure?.totals.map((t) => t.segment) ?? [];
  return {
    name,
    transactionSet: config.transaction_set,
    structure,
    header,
    lines,
    reads: {
      header: new Set(['ST', 'SE', ...totals, ...tagsOf(header)]),
      lines: new Set(lines ? [lines.loop, ...tagsOf(lines.fields)] : []),
    },
  };
}

/** Loads `mappings/<name>.yaml` under `home` (e.g. name `x12/850-in`). */
export async function loadInboundMapping(home: string, name: string): Promise<InboundMapping> {
  const file = path.join(home, 'mappings', `${name}.yaml`);
  return compileInboundMapping(await loadYamlFile(file, inboundMappingSchema), name);
}

/** Where a product id was found on a line. */
export interface ProductIdHit {
  qualifier: string;
  /** Element of the id (the qualifier is the one before). */
  element: number;
}

/** A mapped transaction set. */
export interface MappedTransaction {
  header: Record<string, string | null>;
  lines: Record<string, string | null>[];
  /** Per line: the first segment of its loop (PO1), for messages and acks. */
  lineAnchors: PlacedSegment[];
  /** Per line and product-id field: where the id was found, or null. */
  productIds: Record<string, ProductIdHit | null>[];
  /** Syntax problems (structure, elements, control totals) and business ones (`business`); empty when clean. */
  problems: X12Problem[];
  /** Segments present but read by no field: `SAC` (header) or `PO1/AMT` (in a line). */
  unused: string[];
}

/** Segments of one scope (header or one line), with their position in the set. */
interface Scope {
  segments: PlacedSegment[];
  /** Position used to report a missing segment of this scope. */
  anchor: number;
}

/** Per field list: the indexes of the fields reading each segment id (built once per mapping). */
const FIELDS_BY_TAG = new WeakMap<CompiledField[], Map<string, number[]>>();

function fieldsByTag(fields: CompiledField[]): Map<string, number[]> {
  let index = FIELDS_BY_TAG.get(fields);
  if (index === undefined) {
    index = new Map();
    fields.forEach((f, i) => {
      const tag = f.kind === 'path' ? f.path.tag : f.segment;
      const list = index!.get(tag) ?? [];
      list.push(i);
      index!.set(tag, list);
    });
    FIELDS_BY_TAG.set(fields, index);
  }
  return index;
}

/**
 * The segment each field reads in `scope`, in one pass: the first with the field's tag (and, for a
 * qualified path, a qualifier among the allowed values).
 */
function findAll(fields: CompiledField[], scope: Scope): (PlacedSegment | undefined)[] {
  const index = fieldsByTag(fields);
  const hits = new Array<PlacedSegment | undefined>(fields.length);
  const segments = scope.segments;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const wanted = index.get(s.seg.tag);
    if (wanted === undefined) continue;
    for (let k = 0; k < wanted.length; k++) {
      const n = wanted[k]!;
      if (hits[n] !== undefined) continue;
      const f = fields[n]!;
      if (
        f.kind === 'path' &&
        f.path.where &&
        !f.path.where.values.includes(s.seg.elements[f.path.where.element] ?? '')
      )
        continue;
      hits[n] = s;
    }
  }
  return hits;
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function convert(value: string, type: X12Type): { value: string } | { error: string; ak4: string } {
  switch (type) {
    case 'AN':
    case 'ID':
      return { value: value.trimEnd() };
    case 'R': {
      if (decimalDigits(value) < 0) return { error: 'expected a decimal number (R)', ak4: '6' };
      const neg = value.startsWith('-');
      const v = neg ? value.slice(1) : value;
      return {
        value: (neg ? '-' : '') + (v.startsWith('.') ? `0${v}` : v.endsWith('.') ? v.slice(0, -1) : v),
      };
    }
    case 'DT': {
      // The common case first: CCYYMMDD, checked without a regex.
      if (value.length === 8 && isDate(value))
        return { value: `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}` };
      let y: number, mo: number, d: number;
      if (/^\d{8}$/.test(value))
        [y, mo, d] = [Number(value.slice(0, 4)), Number(value.slice(4, 6)), Number(value.slice(6, 8))];
      else if (/^\d{6}$/.test(value)) {
        const yy = Number(value.slice(0, 2));
        [y, mo, d] = [yy < 50 ? 2000 + yy : 1900 + yy, Number(value.slice(2, 4)), Number(value.slice(4, 6))];
      } else return { error: 'expected a date CCYYMMDD', ak4: '8' };
      const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
      if (mo < 1 || mo > 12 || d < 1 || d > DAYS[mo - 1]! || (mo === 2 && d === 29 && !leap)) {
        return { error: 'expected a valid calendar date CCYYMMDD', ak4: '8' };
      }
      return {
        value: `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`,
      };
    }
    case 'TM': {
      const m = /^(\d{2})(\d{2})(\d{2})?(\d{1,2})?$/.exec(value);
      if (!m || Number(m[1]) > 23 || Number(m[2]) > 59 || (m[3] !== undefined && Number(m[3]) > 59)) {
        return { error: 'expected a time HHMM or HHMMSS', ak4: '9' };
      }
      return { value: `${m[1]}:${m[2]}${m[3] !== undefined ? `:${m[3]}` : ''}` };
    }
    default: {
      // N0–N9: implied decimal places.
      if (integerDigits(value) < 0)
        return { error: `expected digits only (${type}, implied decimals)`, ak4: '6' };
      const places = Number(type.slice(1));
      if (places === 0) return { value };
      const neg = value.startsWith('-');
      const digits = (neg ? value.slice(1) : value).padStart(places + 1, '0');
      return { value: `${neg ? '-' : ''}${digits.slice(0, -places)}.${digits.slice(-places)}` };
    }
  }
}

function productId(
  hit: PlacedSegment | undefined,
  f: Extract<CompiledField, { kind: 'product' }>,
): { hit: PlacedSegment; id: ProductIdHit; value: string } | { hit: PlacedSegment | undefined } {
  if (!hit) return { hit };
  const e = hit.seg.elements;
  for (const q of f.qualifiers) {
    for (let i = f.from; i + 1 < e.length; i += 2) {
      if (e[i] === q && e[i + 1] !== '')
        return { hit, id: { qualifier: q, element: i + 1 }, value: e[i + 1]! };
    }
  }
  return { hit };
}

function readFields(
  fields: CompiledField[],
  scope: Scope,
  set: TransactionSet,
  problems: X12Problem[],
  context: string,
  ids: Record<string, ProductIdHit | null> | null,
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const file = set.group.interchange.file;
  const component = set.group.interchange.delimiters.component;
  const hits = findAll(fields, scope);
  for (let n = 0; n < fields.length; n++) {
    const f = fields[n]!;
    let hit: PlacedSegment | undefined = hits[n];
    let raw = '';
    if (f.kind === 'product') {
      const r = productId(hit, f);
      hit = r.hit;
      if ('id' in r) {
        raw = r.value;
        if (ids) ids[f.name] = r.id;
      } else if (ids) ids[f.name] = null;
    } else {
      raw = hit?.seg.elements[f.path.element] ?? '';
      if (raw !== '' && f.path.component !== null) raw = raw.split(component)[f.path.component - 1] ?? '';
    }
    if (raw === '') {
      out[f.name] = null;
      if (!f.required) continue;
      // Required by the mapping, not by X12: a business problem (the structure check reports X12's own).
      if (!hit) {
        const tag = f.kind === 'product' ? f.segment : f.path.tag;
        // A segment X12 itself requires is already reported by the structure check.
        if (problems.some((p) => p.code === 'SEGMENT_MISSING' && !p.business && p.segmentId === tag))
          continue;
        const which =
          f.kind === 'product'
            ? `${f.segment} segment`
            : f.path.where
              ? `${f.path.tag} segment with ${f.path.tag}${String(f.path.where.element).padStart(2, '0')}=${f.path.where.values.join('|')}`
              : `${f.path.tag} segment`;
        problems.push({
          code: 'SEGMENT_MISSING',
          level: 'transaction',
          business: true,
          file,
          segment: null,
          segmentId: f.kind === 'product' ? f.segment : f.path.tag,
          positionInSet: scope.anchor,
          message: `${file}, transaction set ${set.id} ${set.controlNumber} (ST at segment ${set.segments[0]!.ordinal})${context}: no ${which}; field ${f.name} (${describeField(f)}) is required by the mapping`,
          ack: { ak5: '5' },
        });
      } else {
        const element = f.kind === 'product' ? f.from + 1 : f.path.element;
        problems.push(
          problem({
            code: 'ELEMENT_MISSING',
            level: 'element',
            business: true,
            file,
            segment: hit.seg.ordinal,
            segmentId: hit.seg.tag,
            positionInSet: hit.position,
            element,
            ...(f.kind === 'path' && f.path.component !== null ? { component: f.path.component } : {}),
            text:
              f.kind === 'product'
                ? `${context.replace(/^, /, '')}${context ? ': ' : ''}no ${describeField(f)}; field ${f.name} is required by the mapping${hit.seg.elements.length > f.from ? ` (the pairs hold ${pairsOf(hit, f.from)})` : ''}`
                : `${f.path.tag}${String(f.path.element).padStart(2, '0')} is empty; field ${f.name} (${f.path.source}) is required by the mapping`,
            ack: { ak3: '8', ak4: '7' },
          }),
        );
      }
      continue;
    }
    if (f.kind === 'product') {
      out[f.name] = raw.trimEnd();
      continue;
    }
    const c = convert(raw, f.type);
    if ('value' in c) {
      out[f.name] = c.value;
    } else {
      out[f.name] = null;
      // The structure check already reported this element: once is enough for the ack.
      if (problems.some((p) => p.segment === hit!.seg.ordinal && p.element === f.path.element)) continue;
      problems.push(
        problem({
          code: 'ELEMENT_INVALID',
          level: 'element',
          file,
          segment: hit!.seg.ordinal,
          segmentId: hit!.seg.tag,
          positionInSet: hit!.position,
          element: f.path.element,
          ...(f.path.component !== null ? { component: f.path.component } : {}),
          value: raw,
          text: `${f.path.tag}${String(f.path.element).padStart(2, '0')} is ${JSON.stringify(raw)}; ${c.error} for field ${f.name}`,
          ack: { ak3: '8', ak4: c.ak4 },
        }),
      );
    }
  }
  return out;
}

/** "VN 123, BP X-1" — the (qualifier, id) pairs of a segment, for messages. */
function pairsOf(hit: PlacedSegment, from: number): string {
  const e = hit.seg.elements;
  const pairs: string[] = [];
  for (let i = from; i < e.length; i += 2) if (e[i]) pairs.push(`${e[i]} ${JSON.stringify(e[i + 1] ?? '')}`);
  return pairs.join(', ') || 'nothing';
}

/** Splits the loop tree into the header scope and one scope per occurrence of the line loop. */
function scopes(root: LoopNode, loop: string | null): { header: PlacedSegment[]; lines: LoopNode[] } {
  const header: PlacedSegment[] = [];
  const lines: LoopNode[] = [];
  const visit = (node: LoopNode): void => {
    let i = 0;
    for (const child of node.loops) {
      const first = child.segments[0]!.position;
      while (i < node.segments.length && node.segments[i]!.position < first) header.push(node.segments[i++]!);
      if (child.id === loop) lines.push(child);
      else visit(child);
    }
    while (i < node.segments.length) header.push(node.segments[i++]!);
  };
  visit(root);
  return { header, lines };
}

function unusedOf(segments: PlacedSegment[], reads: Set<string>, prefix: string, out: Set<string>): void {
  for (const s of segments) if (!reads.has(s.seg.tag)) out.add(prefix + s.seg.tag);
}

/**
 * Validates and maps one transaction set. Problems are returned, not thrown; push them onto
 * `set.problems` before the group ends to have them acknowledged (AK3/AK4) and the set rejected.
 */
export function mapTransaction(mapping: InboundMapping, set: TransactionSet): MappedTransaction {
  const problems: X12Problem[] = [];
  if (set.id !== mapping.transactionSet) {
    problems.push(
      problem({
        code: 'SET_NOT_SUPPORTED',
        level: 'transaction',
        file: set.group.interchange.file,
        segment: set.segments[0]!.ordinal,
        segmentId: 'ST',
        positionInSet: 1,
        element: 1,
        value: set.id,
        text: `transaction set ${set.id} cannot be read with mapping ${mapping.name}, which reads ${mapping.transactionSet}`,
        ack: { ak5: '1' },
      }),
    );
    return { header: {}, lines: [], lineAnchors: [], productIds: [], problems, unused: [] };
  }
  let headerSegments: PlacedSegment[];
  let lineNodes: LoopNode[] = [];
  if (mapping.structure) {
    const v = validateSet(mapping.structure, set);
    problems.push(...v.problems);
    const sc = scopes(v.root, mapping.lines?.loop ?? null);
    headerSegments = sc.header;
    lineNodes = sc.lines;
  } else {
    headerSegments = set.segments.map((seg, i) => ({ seg, position: i + 1 }));
  }
  const unused = new Set<string>();
  unusedOf(headerSegments, mapping.reads.header, '', unused);
  const headerOut = readFields(
    mapping.header,
    { segments: headerSegments, anchor: 2 },
    set,
    problems,
    '',
    null,
  );
  const lines: Record<string, string | null>[] = [];
  const productIds: Record<string, ProductIdHit | null>[] = [];
  const loop = mapping.lines;
  if (loop) {
    lineNodes.forEach((node, n) => {
      const segments = flatten(node);
      unusedOf(segments, mapping.reads.lines, `${loop.loop}/`, unused);
      const ids: Record<string, ProductIdHit | null> = {};
      lines.push(
        readFields(
          loop.fields,
          { segments, anchor: segments[0]!.position },
          set,
          problems,
          `, line ${n + 1}`,
          ids,
        ),
      );
      productIds.push(ids);
    });
  }
  return {
    header: headerOut,
    lines,
    lineAnchors: lineNodes.map((l) => l.segments[0]!),
    productIds,
    problems,
    unused: [...unused],
  };
}
