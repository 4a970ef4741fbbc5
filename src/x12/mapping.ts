import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../config-file.js';
import { UserError } from '../errors.js';
import { problem, type X12Problem } from './errors.js';
import { X12_TYPES, type Segment, type TransactionSet, type X12Type } from './types.js';

/**
 * Inbound mapping: one transaction set → `{ header, lines }` of named text fields.
 *
 *   mappings/x12/850-in.yaml                       ST*850 … SE
 *   header:                                        ├─ header scope: segments outside the line loop
 *     po_number: BEG03                             │    BEG, CUR, REF, N1 loops, CTT…
 *     ship_to: N1[N101=ST].N102                    │
 *   lines:                                         └─ line scope: each PO1 up to the next PO1
 *     loop: PO1                                         (or a segment of `until`)
 *     fields: { quantity: { path: PO102, type: R } }
 *
 * Paths: `BEG03` (element 3 of the first BEG), `N1[N101=ST].N102` (N102 of the first N1 whose N101
 * is ST; `N101=ST|BT` allows several values), `PO1[*].PO102` (in `lines`, the same as `PO102`),
 * `MEA04-2` (component 2 of MEA04). Types convert X12 values to what PostgreSQL reads: DT → YYYY-MM-DD,
 * TM → HH:MM[:SS], R and N0–N9 → decimal text. Problems carry the segment number, element and the
 * 997/999 codes (AK3 3 mandatory segment missing, AK4 1 missing element, 6 bad number, 8 bad date, 9 bad time).
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

/** One field: a path, or a path with a type and whether it is required. */
export const inboundFieldSchema = z.union([
  pathString,
  z
    .object({
      /** Element path, e.g. BEG03 or N1[N101=ST].N102. */
      path: pathString,
      /** How the value is read. @defaultValue AN */
      type: z.enum(X12_TYPES).default('AN'),
      /** A missing segment or empty element is an error (AK3 3 / AK4 1) and rejects the set. @defaultValue false */
      required: z.boolean().default(false),
    })
    .strict(),
]);

const TAG = z.string().regex(/^[A-Z][A-Z0-9]{1,2}$/, 'a segment id such as PO1');

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
        /** Segment that starts each line, e.g. PO1, IT1, LIN. */
        loop: TAG,
        /** Segments that end the line loop (summary segments). @defaultValue [CTT, AMT, SE] */
        until: z.array(TAG).default(['CTT', 'AMT', 'SE']),
        /** Line fields: paths searched within the line's own segments. */
        fields: z.record(z.string(), inboundFieldSchema),
      })
      .strict()
      .optional(),
  })
  .strict();

export type InboundMappingConfig = z.output<typeof inboundMappingSchema>;

interface CompiledField {
  name: string;
  path: ElementPath;
  type: X12Type;
  required: boolean;
}

/** A mapping ready to apply; see {@link compileInboundMapping}. */
export interface InboundMapping {
  name: string;
  transactionSet: string;
  header: CompiledField[];
  lines: { loop: string; until: Set<string>; fields: CompiledField[] } | null;
}

function compileFields(
  fields: Record<string, z.output<typeof inboundFieldSchema>>,
  inLines: boolean,
  name: string,
): CompiledField[] {
  return Object.entries(fields).map(([field, spec]) => {
    const s = typeof spec === 'string' ? { path: spec, type: 'AN' as const, required: false } : spec;
    const p = parsePath(s.path) as ElementPath;
    if (p.all && !inLines) {
      throw new UserError(`${name}: header.${field}: ${s.path} selects every ${p.tag}; put it under lines`);
    }
    return { name: field, path: p, type: s.type, required: s.required };
  });
}

/** Compiles a validated mapping; `name` is used in messages. */
export function compileInboundMapping(config: InboundMappingConfig, name: string): InboundMapping {
  return {
    name,
    transactionSet: config.transaction_set,
    header: compileFields(config.header, false, name),
    lines: config.lines
      ? {
          loop: config.lines.loop,
          until: new Set(config.lines.until),
          fields: compileFields(config.lines.fields, true, name),
        }
      : null,
  };
}

/** Loads `mappings/<name>.yaml` under `home` (e.g. name `x12/850-in`). */
export async function loadInboundMapping(home: string, name: string): Promise<InboundMapping> {
  const file = path.join(home, 'mappings', `${name}.yaml`);
  return compileInboundMapping(await loadYamlFile(file, inboundMappingSchema), name);
}

/** A mapped transaction set. */
export interface MappedTransaction {
  header: Record<string, string | null>;
  lines: Record<string, string | null>[];
  /** Missing required values and unreadable ones; empty when the set mapped cleanly. */
  problems: X12Problem[];
}

/** Segments of one scope (header or one line), with their position in the set. */
interface Scope {
  segments: { seg: Segment; position: number }[];
  /** Position used to report a missing segment of this scope. */
  anchor: number;
}

function find(scope: Scope, p: ElementPath): { seg: Segment; position: number } | undefined {
  for (const s of scope.segments) {
    if (s.seg.tag !== p.tag) continue;
    if (p.where && !p.where.values.includes(s.seg.elements[p.where.element] ?? '')) continue;
    return s;
  }
  return undefined;
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function convert(value: string, type: X12Type): { value: string } | { error: string; ak4: string } {
  switch (type) {
    case 'AN':
    case 'ID':
      return { value: value.trimEnd() };
    case 'R': {
      if (!/^-?(\d+\.?\d*|\.\d+)$/.test(value)) return { error: 'expected a decimal number (R)', ak4: '6' };
      const neg = value.startsWith('-');
      const v = neg ? value.slice(1) : value;
      return {
        value: (neg ? '-' : '') + (v.startsWith('.') ? `0${v}` : v.endsWith('.') ? v.slice(0, -1) : v),
      };
    }
    case 'DT': {
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
      if (!/^-?\d+$/.test(value))
        return { error: `expected digits only (${type}, implied decimals)`, ak4: '6' };
      const places = Number(type.slice(1));
      if (places === 0) return { value };
      const neg = value.startsWith('-');
      const digits = (neg ? value.slice(1) : value).padStart(places + 1, '0');
      return { value: `${neg ? '-' : ''}${digits.slice(0, -places)}.${digits.slice(-places)}` };
    }
  }
}

function readFields(
  fields: CompiledField[],
  scope: Scope,
  set: TransactionSet,
  problems: X12Problem[],
  component: string,
  context: string,
): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const file = set.group.interchange.file;
  for (const f of fields) {
    const hit = find(scope, f.path);
    let raw = hit?.seg.elements[f.path.element] ?? '';
    if (raw !== '' && f.path.component !== null) raw = raw.split(component)[f.path.component - 1] ?? '';
    const name = `${f.path.tag}${String(f.path.element).padStart(2, '0')}`;
    if (raw === '') {
      out[f.name] = null;
      if (!f.required) continue;
      if (!hit) {
        const which = f.path.where
          ? `${f.path.tag} segment with ${f.path.tag}${String(f.path.where.element).padStart(2, '0')}=${f.path.where.values.join('|')}`
          : `${f.path.tag} segment`;
        // A missing segment has no segment number; name the transaction set instead.
        problems.push({
          code: 'SEGMENT_MISSING',
          level: 'segment',
          file,
          segment: null,
          segmentId: f.path.tag,
          positionInSet: scope.anchor,
          message: `${file}, transaction set ${set.id} ${set.controlNumber} (ST at segment ${set.segments[0]!.ordinal})${context}: no ${which}; field ${f.name} (${f.path.source}) is required`,
          ack: { ak3: '3' },
        });
      } else {
        problems.push(
          problem({
            code: 'ELEMENT_MISSING',
            level: 'element',
            file,
            segment: hit.seg.ordinal,
            segmentId: hit.seg.tag,
            positionInSet: hit.position,
            element: f.path.element,
            ...(f.path.component !== null ? { component: f.path.component } : {}),
            text: `${name} is empty; field ${f.name} (${f.path.source}) is required`,
            ack: { ak4: '1' },
          }),
        );
      }
      continue;
    }
    const c = convert(raw, f.type);
    if ('value' in c) {
      out[f.name] = c.value;
    } else {
      out[f.name] = null;
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
          text: `${name} is ${JSON.stringify(raw)}; ${c.error} for field ${f.name}`,
          ack: { ak4: c.ak4 },
        }),
      );
    }
  }
  return out;
}

/**
 * Maps one transaction set. Problems are returned, not thrown; push them onto `set.problems`
 * before the group ends to have them acknowledged (AK3/AK4) and the set rejected.
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
    return { header: {}, lines: [], problems };
  }
  const header: Scope = { segments: [], anchor: 2 };
  const lineScopes: Scope[] = [];
  const loop = mapping.lines;
  let current: Scope | null = null;
  let loopDone = false;
  const segs = set.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const entry = { seg, position: i + 1 };
    if (loop && !loopDone) {
      if (seg.tag === loop.loop) {
        current = { segments: [entry], anchor: i + 1 };
        lineScopes.push(current);
        continue;
      }
      if (current && loop.until.has(seg.tag)) {
        loopDone = true;
        current = null;
      }
    }
    if (current) current.segments.push(entry);
    else header.segments.push(entry);
  }
  const component = set.group.interchange.delimiters.component;
  const headerOut = readFields(mapping.header, header, set, problems, component, '');
  const lines = loop
    ? lineScopes.map((scope, n) =>
        readFields(loop.fields, scope, set, problems, component, `, line ${n + 1}`),
      )
    : [];
  return { header: headerOut, lines, problems };
}
