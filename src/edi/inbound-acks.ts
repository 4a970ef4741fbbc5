import type pg from 'pg';
import { buildAck, buildTa1, ta1For } from '../x12/ack.js';
import type { X12Problem } from '../x12/errors.js';
import { recordOutbound } from './interchanges.js';
import { buildPoAcks, type LineStatus, type PoAckInput } from '../x12/po-ack.js';
import type { InboundContext, InboundFileResult, InboundOptions } from './inbound-file.js';
import type { InboundProcessor, PoAckRequest } from './inbound-processor.js';

/**
 * What goes back for one inbound file:
 *
 *   per inbound interchange with groups other than FA:  ISA ─ FA group per inbound group ─ IEA
 *   per inbound interchange with ISA14 = 1 or a bad envelope: ISA ─ TA1 (TA104 A | R, TA105 note code) ─ IEA
 *     (a TA1 R — IEA02 ≠ ISA13, a truncated file, a reused ISA13, a usage not accepted — is the only
 *     answer: the interchange's groups get no 997/999, whose AK9 has no code for an envelope fault)
 *   per file with acknowledged business errors (business_errors: acknowledge):
 *     ISA ─ GS PR ─ 855 per purchase order ─ GE ─ IEA, recorded as an outbound interchange
 *       (so the partner's 997 for it is reconciled like any other)
 */

/**
 * One 997/999 file for the whole inbound file, and the 855s. `forced` problems (a fatal error)
 * reject every group. With `client`, the ack's ISA13 is recorded on each inbound interchange.
 */
export async function buildFileAcks(
  ctx: InboundContext,
  p: InboundProcessor,
  opts: InboundOptions,
  forced: X12Problem[],
  client?: pg.ClientBase,
): Promise<Pick<InboundFileResult, 'ack' | 'poAck' | 'ta1'>> {
  const { partner } = ctx;
  let text = '';
  let first: number | null = null;
  let ta1Text = '';
  let ta1First: number | null = null;
  for (const x of p.interchanges) {
    const groups = x.groups.filter((g) => !g.fa && g.ge !== null).map((g) => g.ge!);
    const problems = [...x.problems, ...(x.closed ? [] : x.extra), ...forced];
    const ta1 = ta1For(x.header, problems);
    if (ta1) {
      const { isa13 } = await ctx.control.next({ groups: 0, sets: 0 });
      ta1First ??= isa13;
      ta1Text += buildTa1({
        interchange: x.header,
        ta1,
        profile: partner.x12,
        isa13,
        ...(opts.now ? { now: opts.now } : {}),
      });
    }
    // A TA1 that rejects the interchange is the whole answer: its groups were not accepted for
    // processing, and a 997/999 could only say AK9 R with no code (716 has none for an envelope fault).
    if (groups.length === 0 || ta1?.code === 'R') continue;
    const control = await ctx.control.next({ groups: groups.length, sets: groups.length });
    first ??= control.isa13;
    const ack = buildAck({
      interchange: x.header,
      groups,
      interchangeProblems: problems,
      profile: partner.x12,
      control,
      ...(opts.now ? { now: opts.now } : {}),
    });
    text += ack.text;
    if (client) {
      await client.query('UPDATE edi.interchanges SET ack_isa13 = $2 WHERE id = $1', [x.id, control.isa13]);
    }
  }
  const type = partner.x12.ack;
  const ack = first === null ? null : { type, name: `${type}-${String(first).padStart(9, '0')}.edi`, text };
  const poAck = client && p.poAcks.length > 0 ? await buildFilePoAcks(ctx, p.poAcks, opts, client) : null;
  const ta1 =
    ta1First === null ? null : { name: `TA1-${String(ta1First).padStart(9, '0')}.edi`, text: ta1Text };
  return { ack, poAck, ta1 };
}

/** The 855 status of each line of an acknowledged purchase order. */
function poAckInput(r: PoAckRequest): PoAckInput {
  return {
    mapped: r.mapped,
    rejected: r.checked.headerRejected,
    lines: r.checked.lines.map((l) => {
      const status: LineStatus = l === null ? 'rejected' : l.priceFromList ? 'changed' : 'accepted';
      return { status, unitPrice: l?.unitPrice ?? null };
    }),
  };
}

async function buildFilePoAcks(
  ctx: InboundContext,
  requests: readonly PoAckRequest[],
  opts: InboundOptions,
  client: pg.ClientBase,
): Promise<InboundFileResult['poAck']> {
  const { partner } = ctx;
  const firstSet = requests[0]!.set;
  const control = await ctx.control.next({ groups: 1, sets: requests.length });
  const text = buildPoAcks({
    interchange: firstSet.group.interchange,
    groupSenderId: firstSet.group.senderId,
    groupReceiverId: firstSet.group.receiverId,
    orders: requests.map(poAckInput),
    profile: partner.x12,
    control,
    ...(opts.now ? { now: opts.now } : {}),
  });
  const name = `855-${String(control.isa13).padStart(9, '0')}.edi`;
  await recordOutbound(client, {
    partner: partner.name,
    fileName: name,
    sha256: null,
    usage: firstSet.group.interchange.usage === 'T' ? 'T' : 'P',
    isa13: control.isa13,
    groups: [
      {
        functionalId: 'PR',
        gs06: control.gs06[0]!,
        version: partner.x12.version,
        sets: requests.map((r, i) => ({
          st01: '855',
          st02: String(control.st02[i]!).padStart(4, '0'),
          documentKey: r.mapped.header.po_number ?? null,
        })),
      },
    ],
  });
  return { name, text };
}

/**
 * Counts the segments the mapping did not read, per partner; returns them with whether this is
 * the first time the partner sent each.
 */
export async function recordUnused(
  client: pg.ClientBase,
  partner: string,
  file: string,
  unused: ReadonlyMap<string, number>,
): Promise<InboundFileResult['unusedSegments']> {
  if (unused.size === 0) return [];
  const { rows } = await client.query<{ segment: string; times_seen: string; first: boolean }>(
    `INSERT INTO edi.unused_segments AS u (partner, segment, first_file, times_seen)
     SELECT $1, s.segment, $2, s.n FROM unnest($3::text[], $4::bigint[]) AS s (segment, n)
     ON CONFLICT (partner, segment) DO UPDATE SET times_seen = u.times_seen + EXCLUDED.times_seen, last_seen_at = now()
     RETURNING u.segment, u.times_seen::text, (xmax = 0) AS first`,
    [partner, file, [...unused.keys()], [...unused.values()]],
  );
  return rows
    .map((r) => ({
      segment: r.segment,
      sets: unused.get(r.segment)!,
      first: r.first,
      timesSeen: Number(r.times_seen),
    }))
    .sort((a, b) => a.segment.localeCompare(b.segment));
}
