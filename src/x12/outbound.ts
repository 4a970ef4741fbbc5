import { once } from 'node:events';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml.js';
import { isaVersion, outputFormat, usageIndicator, type X12Profile } from './partner.js';
import { X12_TYPES } from './types.js';
import {
  formatDate,
  formatDecimal,
  formatImplied,
  formatText,
  formatTime,
  InterchangeWriter,
  X12FormatError,
  type ElementValue,
  type SegmentValues,
} from './writer.js';

/**
 * Outbound documents (810 invoices, 856 ship notices, …) from plain objects through a mapping file.
 *
 *   { header, lines[] } ──mappings/x12/810-out.yaml──► ST  header segments
 *                                                          line segments × lines          (810: IT1, PID…)
 *                                                       or HL loops S → O → I             (856)
 *                                                          summary segments               (TDS, CTT…)
 *                                                      SE (counted by the writer)
 *
 * A segment is written when its `when` field has a value; without `when`, when any of its
 * field elements has a value, or always if it has only constants and computed values.
 * Field values are looked up in the line (or the HL group's first line), then in the header.
 */

const TAG = /^[A-Z][A-Z0-9]{1,2}$/;
const ELEMENT_KEY = /^([A-Z][A-Z0-9]{1,2})(\d{2})(?:-(\d{1,2}))?$/;

/** X12 output types. DT writes CCYYMMDD (YYMMDD with max: 6); TM writes HHMM (HHMMSS with max: 6). */
export const OUT_TYPES = X12_TYPES;

/** Computed element values. */
export const COMPUTED = ['line_count', 'line_number', 'hl_count', 'hl_id', 'hl_parent'] as const;

/** One element: a field name, or a field / constant / computed value with formatting. */
export const outboundElementSchema = z.union([
  z.string().min(1),
  z
    .object({
      /** Field of the line or header. */
      field: z.string().optional(),
      /** A constant. */
      const: z.union([z.string(), z.number()]).optional(),
      /** A value the builder computes: line_count, line_number, hl_count. */
      computed: z.enum(COMPUTED).optional(),
      /** Sum of a line field over all lines (e.g. CTT02 hash total of quantities). */
      sum: z.string().optional(),
      /** X12 type. @defaultValue AN */
      type: z.enum(OUT_TYPES).default('AN'),
      /** Minimum length: AN/ID padded with spaces, Nn with leading zeros. */
      min: z.number().int().positive().optional(),
      /** Maximum length; a longer value is an error. */
      max: z.number().int().positive().optional(),
      /** R: round to at most this many decimals. */
      decimals: z.number().int().min(0).optional(),
      /** An empty value is an error. @defaultValue false */
      required: z.boolean().default(false),
      /** Used when the field is empty. */
      default: z.union([z.string(), z.number()]).optional(),
      /** Leave the element empty unless this field has a value (a qualifier such as VP before its id). */
      when: z.string().optional(),
    })
    .strict()
    .refine(
      (e) => [e.field, e.const, e.computed, e.sum].filter((x) => x !== undefined).length === 1,
      'give exactly one of field, const, computed or sum',
    ),
]);

/** One segment: its elements keyed by name (BIG02, MEA04-1), and when to write it. */
export const outboundSegmentSchema = z
  .object({
    segment: z.string().regex(TAG, 'a segment id such as BIG'),
    /** Write the segment only when this field has a value. */
    when: z.string().optional(),
    elements: z.record(
      z.string().regex(ELEMENT_KEY, 'an element name such as BIG02 or MEA04-1'),
      outboundElementSchema,
    ),
  })
  .strict()
  .superRefine((s, ctx) => {
    for (const key of Object.keys(s.elements)) {
      const m = ELEMENT_KEY.exec(key);
      if (m && m[1] !== s.segment) {
        ctx.addIssue({
          code: 'custom',
          message: `${key} is not an element of ${s.segment}`,
          path: ['elements', key],
        });
      }
    }
  });

/** One level of an 856-style hierarchy. */
export const hierarchyLevelSchema = z
  .object({
    /** HL03 level code: S shipment, O order, T tare, P pack, I item. */
    level: z.string().min(1).max(2),
    /**
     * How this level's records are formed: `header` (one, from the header; only the first level),
     * `group` (one per distinct value of `group_by` among the parent's lines), or `line` (one per
     * line; only the last level).
     */
    from: z.enum(['header', 'group', 'line']),
    /** Line field whose value forms the groups (with from: group). */
    group_by: z.string().optional(),
    segments: z.array(outboundSegmentSchema).default([]),
  })
  .strict();

/** `mappings/x12/<set>-out.yaml`. */
export const outboundMappingSchema = z
  .object({
    description: z.string().optional(),
    /** ST01, e.g. '810'. */
    transaction_set: z.string().regex(/^\d{3}$/, 'a 3-digit transaction set id'),
    /** GS01, e.g. IN for 810, SH for 856. */
    functional_id: z.string().regex(/^[A-Z]{2}$/, 'a 2-letter functional identifier such as IN or SH'),
    /** Segments written once after ST, from the header. */
    header: z.array(outboundSegmentSchema).default([]),
    /** Segments written for every line (810). */
    lines: z.array(outboundSegmentSchema).optional(),
    /** HL levels (856): HL01 id, HL02 parent, HL03 level, HL04 child flag are written for you. */
    hierarchy: z.array(hierarchyLevelSchema).optional(),
    /** Segments written once before SE (TDS, CTT…). */
    summary: z.array(outboundSegmentSchema).default([]),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.lines && m.hierarchy)
      ctx.addIssue({ code: 'custom', message: 'give lines or hierarchy, not both', path: ['hierarchy'] });
    const h = m.hierarchy ?? [];
    h.forEach((lvl, i) => {
      if (lvl.from === 'header' && i !== 0)
        ctx.addIssue({
          code: 'custom',
          message: 'only the first level can be from: header',
          path: ['hierarchy', i, 'from'],
        });
      if (lvl.from === 'line' && i !== h.length - 1)
        ctx.addIssue({
          code: 'custom',
          message: 'only the last level can be from: line',
          path: ['hierarchy', i, 'from'],
        });
      if (lvl.from === 'group' && !lvl.group_by)
        ctx.addIssue({ code: 'custom', message: 'from: group needs group_by', path: ['hierarchy', i] });
    });
  });

export type OutboundMapping = z.output<typeof outboundMappingSchema> & { name: string };

/** Loads `mappings/<name>.yaml` under `home` (e.g. `x12/810-out`). */
export async function loadOutboundMapping(home: string, name: string): Promise<OutboundMapping> {
  const file = path.join(home, 'mappings', `${name}.yaml`);
  return { ...(await loadYamlFile(file, outboundMappingSchema)), name };
}

/** A field value as it comes from PostgreSQL or JSON. */
export type FieldValue = string | number | bigint | boolean | Date | null | undefined;

/** One document: header fields and line items. */
export interface OutboundDocument {
  header: Record<string, FieldValue>;
  lines: Record<string, FieldValue>[];
}

type SegSpec = z.output<typeof outboundSegmentSchema>;
type ElSpec = z.output<typeof outboundElementSchema>;

interface Ctx {
  doc: OutboundDocument;
  label: string;
  record: Record<string, FieldValue> | null;
  lineNumber: number | null;
  hlId: number | null;
  hlParent: number | null;
  hlCount: number;
}

const empty = (v: FieldValue): boolean => v === null || v === undefined || v === '';

function lookup(ctx: Ctx, field: string): FieldValue {
  const v = ctx.record?.[field];
  return empty(v) ? ctx.doc.header[field] : v;
}

function formatValue(
  v: Exclude<FieldValue, null | undefined>,
  spec: Exclude<ElSpec, string>,
  name: string,
): string {
  const t = spec.type;
  const asText = (): string => (v instanceof Date ? v.toISOString() : String(v));
  switch (t) {
    case 'AN':
    case 'ID':
      return formatText(asText(), {
        ...(spec.min ? { minLength: spec.min } : {}),
        ...(spec.max ? { maxLength: spec.max } : {}),
        name,
      });
    case 'R':
      return formatDecimal(typeof v === 'number' || typeof v === 'bigint' ? v : asText(), {
        ...(spec.decimals !== undefined ? { maxDecimals: spec.decimals } : {}),
        ...(spec.max ? { maxLength: spec.max } : {}),
        name,
      });
    case 'DT':
      return formatDate(v instanceof Date ? v : asText(), spec.max === 6 ? 'YYMMDD' : 'CCYYMMDD', name);
    case 'TM':
      return formatTime(
        v instanceof Date ? v : asText(),
        spec.max !== undefined && spec.max >= 6 ? 'HHMMSS' : 'HHMM',
        name,
      );
    default:
      return formatImplied(
        typeof v === 'number' || typeof v === 'bigint' ? v : asText(),
        Number(t.slice(1)),
        {
          ...(spec.min ? { minLength: spec.min } : {}),
          ...(spec.max ? { maxLength: spec.max } : {}),
          name,
        },
      );
  }
}

function sumOf(doc: OutboundDocument, field: string): string {
  // Exact decimal sum via the R formatter's parser: add scaled integers.
  let units = 0n;
  let scale = 0;
  for (const line of doc.lines) {
    const v = line[field];
    if (empty(v)) continue;
    const text = formatDecimal(v instanceof Date ? v.toISOString() : (v as string | number | bigint));
    const frac = text.split('.')[1] ?? '';
    const s = frac.length;
    const u = BigInt(text.replace('.', ''));
    if (s > scale) {
      units *= 10n ** BigInt(s - scale);
      scale = s;
    }
    units += u * 10n ** BigInt(scale - s);
  }
  const neg = units < 0n;
  let digits = (neg ? -units : units).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return (neg ? '-' : '') + digits;
}

function elementValue(spec: ElSpec, key: string, ctx: Ctx): { value: string; fromField: boolean } {
  const s: Exclude<ElSpec, string> =
    typeof spec === 'string' ? { field: spec, type: 'AN', required: false } : spec;
  let v: FieldValue;
  let fromField = false;
  if (s.when !== undefined && empty(lookup(ctx, s.when))) return { value: '', fromField };
  if (s.const !== undefined) v = s.const;
  else if (s.sum !== undefined) v = sumOf(ctx.doc, s.sum);
  else if (s.computed !== undefined) {
    v = {
      line_count: ctx.doc.lines.length,
      line_number: ctx.lineNumber,
      hl_count: ctx.hlCount,
      hl_id: ctx.hlId,
      hl_parent: ctx.hlParent,
    }[s.computed];
  } else {
    v = lookup(ctx, s.field!);
    fromField = true;
  }
  if (empty(v) && s.default !== undefined) v = s.default;
  if (empty(v)) {
    if (s.required) {
      throw new X12FormatError(
        `${ctx.label}: ${key}${s.field ? ` (field ${s.field})` : ''} is required but empty`,
      );
    }
    return { value: '', fromField };
  }
  try {
    return { value: formatValue(v as Exclude<FieldValue, null | undefined>, s, key), fromField };
  } catch (err) {
    if (err instanceof X12FormatError) {
      throw new X12FormatError(`${ctx.label}${s.field ? `, field ${s.field}` : ''}: ${err.message}`);
    }
    throw err;
  }
}

/** One segment's values, or null when the segment is not written (see the module comment). */
function buildSegment(spec: SegSpec, ctx: Ctx): SegmentValues | null {
  if (spec.when !== undefined && empty(lookup(ctx, spec.when))) return null;
  const values: ElementValue[] = [];
  let fieldElements = 0;
  let filledFields = 0;
  for (const [key, el] of Object.entries(spec.elements)) {
    const m = ELEMENT_KEY.exec(key)!;
    const pos = Number(m[2]);
    const comp = m[3] !== undefined ? Number(m[3]) : null;
    const { value, fromField } = elementValue(el, key, ctx);
    if (fromField) {
      fieldElements++;
      if (value !== '') filledFields++;
    }
    while (values.length < pos) values.push('');
    if (comp === null) values[pos - 1] = value;
    else {
      const prev = values[pos - 1];
      const comps = typeof prev === 'string' ? (prev === '' ? [] : [prev]) : [...prev!];
      while (comps.length < comp) comps.push('');
      comps[comp - 1] = value;
      values[pos - 1] = comps;
    }
  }
  if (spec.when === undefined && fieldElements > 0 && filledFields === 0) return null;
  return [spec.segment, ...values];
}

function segmentsFor(specs: readonly SegSpec[], ctx: Ctx, out: SegmentValues[]): void {
  for (const spec of specs) {
    const seg = buildSegment(spec, ctx);
    if (seg) out.push(seg);
  }
}

/**
 * The segments between ST and SE for one document. `label` names the document in errors
 * (e.g. `invoice INV-1`); a value that cannot be written throws an {@link X12FormatError}.
 */
export function buildTransactionBody(
  mapping: OutboundMapping,
  doc: OutboundDocument,
  label: string,
): SegmentValues[] {
  const out: SegmentValues[] = [];
  const base: Ctx = { doc, label, record: null, lineNumber: null, hlId: null, hlParent: null, hlCount: 0 };
  segmentsFor(mapping.header, base, out);
  if (mapping.lines) {
    doc.lines.forEach((line, i) => {
      segmentsFor(
        mapping.lines!,
        { ...base, label: `${label}, line ${i + 1}`, record: line, lineNumber: i + 1 },
        out,
      );
    });
  }
  let hlCount = 0;
  if (mapping.hierarchy && mapping.hierarchy.length > 0) {
    const levels = mapping.hierarchy;
    // Depth-first: each HL is followed by its own segments, then its children.
    const walk = (
      depth: number,
      parent: number | null,
      lines: Record<string, FieldValue>[],
      first: Record<string, FieldValue> | null,
    ): void => {
      const lvl = levels[depth]!;
      let records: {
        record: Record<string, FieldValue> | null;
        lines: Record<string, FieldValue>[];
        lineNumber: number | null;
      }[];
      if (lvl.from === 'header') records = [{ record: first, lines, lineNumber: null }];
      else if (lvl.from === 'line')
        records = lines.map((l) => ({ record: l, lines: [l], lineNumber: doc.lines.indexOf(l) + 1 }));
      else {
        const groups = new Map<string, Record<string, FieldValue>[]>();
        for (const l of lines) {
          const key = String(lookup({ ...base, record: l }, lvl.group_by!) ?? '');
          const list = groups.get(key) ?? [];
          list.push(l);
          groups.set(key, list);
        }
        records = [...groups.values()].map((ls) => ({ record: ls[0]!, lines: ls, lineNumber: null }));
      }
      for (const r of records) {
        const id = ++hlCount;
        const hasChildren = depth + 1 < levels.length && r.lines.length > 0;
        out.push([
          'HL',
          String(id),
          parent === null ? '' : String(parent),
          lvl.level,
          hasChildren ? '1' : '0',
        ]);
        const ctx: Ctx = {
          ...base,
          label:
            r.lineNumber !== null ? `${label}, line ${r.lineNumber}` : `${label}, HL ${id} (${lvl.level})`,
          record: r.record,
          lineNumber: r.lineNumber,
          hlId: id,
          hlParent: parent,
        };
        segmentsFor(lvl.segments, ctx, out);
        if (depth + 1 < levels.length) walk(depth + 1, id, r.lines, r.record);
      }
    };
    walk(0, null, doc.lines, null);
  }
  segmentsFor(mapping.summary, { ...base, hlCount }, out);
  return out;
}

/** Control numbers for one outbound interchange with one group: ST02 per document. */
export interface OutboundControlNumbers {
  isa13: number | bigint | string;
  gs06: number | bigint | string;
  st02: readonly (number | bigint | string)[];
}

/** Input of {@link buildOutbound} / {@link writeOutbound}. */
export interface OutboundInput {
  profile: X12Profile;
  mapping: OutboundMapping;
  control: OutboundControlNumbers;
  /** ISA09/10 and GS04/05. @defaultValue now */
  now?: Date;
  /** Names a document in errors; @defaultValue `document <n>` */
  label?: (doc: OutboundDocument, index: number) => string;
}

/** What was written: control numbers per document, for edi.interchanges. */
export interface OutboundResult {
  isa13: string;
  gs06: string;
  sets: { st02: string; segments: number }[];
}

/**
 * One outbound interchange with one functional group, a document at a time. Each method returns
 * the text to write; {@link writeOutbound} and {@link buildOutbound} drive it.
 */
export class OutboundBuilder {
  private readonly w: InterchangeWriter;
  private readonly input: OutboundInput;
  private readonly sets: OutboundResult['sets'] = [];

  constructor(input: OutboundInput) {
    const p = input.profile;
    this.input = input;
    this.w = new InterchangeWriter(outputFormat(p), {
      senderQualifier: p.ours.isa_qualifier,
      senderId: p.ours.isa_id,
      receiverQualifier: p.theirs.isa_qualifier,
      receiverId: p.theirs.isa_id,
      date: input.now ?? new Date(),
      controlNumber: input.control.isa13,
      version: isaVersion(p),
      ackRequested: p.ack_requested,
      usage: usageIndicator(p),
    });
  }

  /** ISA and GS. */
  begin(): string {
    const { profile, mapping, control } = this.input;
    return (
      this.w.begin() +
      this.w.beginGroup({
        functionalId: mapping.functional_id,
        senderId: profile.ours.gs_id,
        receiverId: profile.theirs.gs_id,
        date: this.input.now ?? new Date(),
        controlNumber: control.gs06,
        version: profile.version,
      })
    );
  }

  /** ST … SE for the next document, with the next allocated ST02. */
  document(doc: OutboundDocument): string {
    const i = this.sets.length;
    const st02 = this.input.control.st02[i];
    if (st02 === undefined) {
      throw new Error(
        `outbound: only ${this.input.control.st02.length} ST02 control numbers were allocated for more documents`,
      );
    }
    const label = this.input.label ? this.input.label(doc, i) : `document ${i + 1}`;
    const text = this.w.transaction(
      this.input.mapping.transaction_set,
      st02,
      buildTransactionBody(this.input.mapping, doc, label),
    );
    this.sets.push({ st02: String(st02).padStart(4, '0'), segments: this.w.setSegmentCounts[i]! });
    return text;
  }

  /** GE and IEA. */
  end(): string {
    return this.w.endGroup() + this.w.end();
  }

  /** Control numbers written so far. */
  result(): OutboundResult {
    return {
      isa13: String(this.input.control.isa13).padStart(9, '0'),
      gs06: String(this.input.control.gs06),
      sets: [...this.sets],
    };
  }
}

/**
 * Writes one interchange (one group) of documents to `out`, one transaction set per document,
 * waiting for `drain` when `out` is full. Does not end `out`.
 */
export async function writeOutbound(
  input: OutboundInput,
  documents: Iterable<OutboundDocument> | AsyncIterable<OutboundDocument>,
  out: Writable,
): Promise<OutboundResult> {
  const b = new OutboundBuilder(input);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write(b.begin());
  for await (const doc of documents) await write(b.document(doc));
  await write(b.end());
  return b.result();
}

/** Like {@link writeOutbound}, returning the interchange as a string. */
export function buildOutbound(
  input: OutboundInput,
  documents: readonly OutboundDocument[],
): OutboundResult & { text: string } {
  const b = new OutboundBuilder(input);
  let text = b.begin();
  for (const doc of documents) text += b.document(doc);
  text += b.end();
  return { ...b.result(), text };
}
