import { z } from 'zod';
import { delimiterProblems, type Delimiters } from './delimiters.js';
import { problem, X12Error } from './errors.js';
import type { InterchangeHeader } from './types.js';
import type { OutputFormat } from './writer.js';

/**
 * A trading partner's X12 profile: the `x12:` section of a partner definition (YAML, snake_case).
 *
 * ```yaml
 * ours:   { isa_qualifier: ZZ, isa_id: ERPCO, gs_id: ERPCO }
 * theirs: { isa_qualifier: '01', isa_id: '123456789', gs_id: ACMEPO }
 * version: '004010'
 * usage: production
 * delimiters: { element: '*', component: '>', segment: '~', line_break: lf }
 * inbound: ['850']
 * outbound: ['810', '856']
 * ack: '997'
 * mappings: { '850': x12/850-in, '810': x12/810-out, '856': x12/856-out }
 * ack_overdue_hours: 24
 * ```
 */

const SET_ID = z.string().regex(/^\d{3}$/, 'a 3-digit transaction set id such as 850');

const delimiter = z.string().length(1, 'exactly one character');

/** One side of the exchange: who we are, or who they are, in ISA05/06 (ISA07/08) and GS02 (GS03). */
export const x12PartyIdSchema = z
  .object({
    /** ISA05/ISA07 interchange id qualifier: 01 (DUNS), 12 (phone), 14, ZZ (mutually defined)… */
    isa_qualifier: z.string().regex(/^[A-Z0-9]{2}$/, 'a 2-character qualifier such as ZZ, 01 or 12'),
    /** ISA06/ISA08 interchange id (up to 15 characters; padded when written). */
    isa_id: z.string().min(1).max(15),
    /** GS02/GS03 application code (2–15 characters). */
    gs_id: z.string().min(2).max(15),
  })
  .strict();

/** Delimiters we write to this partner. */
export const x12DelimitersSchema = z
  .object({
    /** Element separator. @defaultValue `*` */
    element: delimiter.default('*'),
    /** Component separator (ISA16). @defaultValue `>` */
    component: delimiter.default('>'),
    /** Segment terminator. @defaultValue `~` */
    segment: delimiter.default('~'),
    /** Repetition separator (ISA11, 005010 only). @defaultValue `^` */
    repetition: delimiter.default('^'),
    /** Line break written after each segment terminator. @defaultValue none */
    line_break: z.enum(['none', 'lf', 'crlf']).default('none'),
  })
  .strict();

/** What an 856 may have to carry; each names the shipment field that supplies it. */
export const SHIP_NOTICE_REQUIREMENTS = [
  'bill_of_lading',
  'carrier',
  'tracking_number',
  'weight',
  'packages',
  'sscc',
] as const;
export type ShipNoticeRequirement = (typeof SHIP_NOTICE_REQUIREMENTS)[number];

/** How the partner wants its 856 ship notices: the HL hierarchy and what must be in it. */
export const shipNoticeSchema = z
  .object({
    /**
     * HL levels: S-O-I (shipment, order, item) or S-O-P-I (…, pack: one HL per carton with its
     * SSCC-18, every line packed). @defaultValue S-O-I
     */
    hierarchy: z.enum(['S-O-I', 'S-O-P-I']).default('S-O-I'),
    /** What an 856 must carry; a shipment lacking one is not sent. @defaultValue [] */
    require: z.array(z.enum(SHIP_NOTICE_REQUIREMENTS)).default([]),
  })
  .strict()
  .refine((n) => n.hierarchy === 'S-O-P-I' || !n.require.includes('sscc'), {
    message: 'sscc is sent on the pack level (MAN*GM): require it with hierarchy S-O-P-I',
    path: ['require'],
  });

/** A trading partner's X12 profile; see the module comment for an example. */
export const x12ProfileSchema = z
  .object({
    /** Our ids, as this partner knows us. */
    ours: x12PartyIdSchema,
    /** The partner's ids. */
    theirs: x12PartyIdSchema,
    /** X12 version/release: GS08 and, via 00401/00501, ISA12. */
    version: z.enum(['004010', '005010']),
    /** ISA15 of what we send: production (P) or test (T). @defaultValue production */
    usage: z.enum(['production', 'test']).default('production'),
    /** Delimiters we send (inbound delimiters are read from each ISA). */
    delimiters: x12DelimitersSchema.prefault({}),
    /** Transaction sets the partner sends us, e.g. ['850']. */
    inbound: z.array(SET_ID).default([]),
    /** Transaction sets we send the partner, e.g. ['810', '856']. */
    outbound: z.array(SET_ID).default([]),
    /** Acknowledgment the partner expects for each inbound group (999 needs version 005010). @defaultValue 997 */
    ack: z.enum(['997', '999']).default('997'),
    /** ISA14 on what we send: ask for a TA1. @defaultValue false */
    ack_requested: z.boolean().default(false),
    /** Mapping name per transaction set, relative to mappings/ without .yaml, e.g. x12/850-in. */
    mappings: z
      .record(
        SET_ID,
        z
          .string()
          .regex(
            /^[A-Za-z0-9_][A-Za-z0-9_-]*(\/[A-Za-z0-9_][A-Za-z0-9_-]*)*$/,
            'a mapping name like x12/850-in',
          ),
      )
      .default({}),
    /** Hours after which an outbound interchange without the partner's 997/999 is overdue. @defaultValue 24 */
    ack_overdue_hours: z.number().positive().default(24),
    /** The 856's hierarchy and required content. @defaultValue S-O-I, nothing required */
    ship_notice: shipNoticeSchema.prefault({}),
  })
  .strict()
  .superRefine((p, ctx) => {
    const d = p.delimiters;
    for (const message of delimiterProblems({
      element: d.element,
      component: d.component,
      segment: d.segment,
      repetition: p.version === '005010' ? d.repetition : null,
    })) {
      ctx.addIssue({ code: 'custom', message, path: ['delimiters'] });
    }
    if (p.ack === '999' && p.version !== '005010') {
      ctx.addIssue({ code: 'custom', message: '999 acknowledgments need version 005010', path: ['ack'] });
    }
    for (const id of Object.keys(p.mappings)) {
      if (!p.inbound.includes(id) && !p.outbound.includes(id)) {
        ctx.addIssue({
          code: 'custom',
          message: `a mapping for ${id}, which is in neither inbound nor outbound`,
          path: ['mappings', id],
        });
      }
    }
    for (const id of [...p.inbound, ...p.outbound]) {
      if (id !== '997' && id !== '999' && p.mappings[id] === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `transaction set ${id} needs a mapping`,
          path: ['mappings'],
        });
      }
    }
  });

/** A validated X12 profile. */
export type X12Profile = z.output<typeof x12ProfileSchema>;

/** The delimiters and line break we write to a partner. */
export function outputFormat(p: X12Profile): OutputFormat {
  const d = p.delimiters;
  const delimiters: Delimiters = {
    element: d.element,
    component: d.component,
    segment: d.segment,
    repetition: p.version === '005010' ? d.repetition : null,
  };
  return { delimiters, lineBreak: d.line_break === 'lf' ? '\n' : d.line_break === 'crlf' ? '\r\n' : '' };
}

/** ISA12 for a profile's version. */
export function isaVersion(p: X12Profile): '00401' | '00501' {
  return p.version === '005010' ? '00501' : '00401';
}

/** ISA15 for a profile. */
export function usageIndicator(p: X12Profile): 'P' | 'T' {
  return p.usage === 'test' ? 'T' : 'P';
}

/**
 * Finds the partner an inbound interchange comes from: their ISA05/ISA06 as sender and our
 * ISA07/ISA08 as receiver. Throws an {@link X12Error} (`UNKNOWN_PARTNER`, TA1 006/008) naming the
 * ids it looked for.
 */
export function findPartner(
  profiles: Readonly<Record<string, X12Profile>>,
  isa: InterchangeHeader,
): { name: string; profile: X12Profile } {
  for (const [name, profile] of Object.entries(profiles)) {
    if (
      profile.theirs.isa_qualifier === isa.senderQualifier &&
      profile.theirs.isa_id === isa.senderId &&
      profile.ours.isa_qualifier === isa.receiverQualifier &&
      profile.ours.isa_id === isa.receiverId
    ) {
      return { name, profile };
    }
  }
  const senderKnown = Object.values(profiles).some(
    (p) => p.theirs.isa_qualifier === isa.senderQualifier && p.theirs.isa_id === isa.senderId,
  );
  throw new X12Error(
    problem({
      code: 'UNKNOWN_PARTNER',
      level: 'interchange',
      file: isa.file,
      segment: isa.segment.ordinal,
      segmentId: 'ISA',
      element: senderKnown ? 8 : 6,
      text: senderKnown
        ? `interchange from ${isa.senderQualifier}:${isa.senderId} is addressed to ${isa.receiverQualifier}:${isa.receiverId}, which is not us for that partner`
        : `no trading partner has ISA05/ISA06 ${isa.senderQualifier}:${isa.senderId}; known senders: ${
            Object.entries(profiles)
              .map(([n, p]) => `${n} (${p.theirs.isa_qualifier}:${p.theirs.isa_id})`)
              .join(', ') || '(none)'
          }`,
      ack: { ta1: senderKnown ? '008' : '006' },
    }),
  );
}
