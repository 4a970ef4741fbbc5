/**
 * 855 purchase order acknowledgments, for partners whose profile says `business_errors:
 * acknowledge`: one interchange, one PR group, one 855 per acknowledged 850.
 *
 *   BAK  00, AD (accepted as sent) | AC (accepted with changes or rejected lines) | RJ (rejected), PO number, PO date
 *   PO1  per line of the 850, as it was sent (line number, quantity, unit, price, product id pairs)
 *   ACK  IA accepted | IP accepted, price changed (from our list price) | IR rejected, quantity, unit
 *   CTT  number of PO1 lines
 */
import type { AckControlNumbers } from './ack.js';
import type { MappedTransaction } from './mapping.js';
import { isaVersion, outputFormat, usageIndicator, type X12Profile } from './partner.js';
import type { InterchangeHeader } from './types.js';
import { InterchangeWriter, type SegmentValues } from './writer.js';

/** Status of one line in the 855. */
export type LineStatus = 'accepted' | 'changed' | 'rejected';

/** One 850 to acknowledge. */
export interface PoAckInput {
  mapped: MappedTransaction;
  /** Per mapped line. */
  lines: { status: LineStatus; unitPrice: string | null }[];
  /** A problem about the whole order: BAK02 RJ. */
  rejected: boolean;
}

const ACK01: Record<LineStatus, string> = { accepted: 'IA', changed: 'IP', rejected: 'IR' };

/** The body (BAK … CTT) of one 855. */
export function poAckBody(input: PoAckInput): SegmentValues[] {
  const { mapped } = input;
  const h = mapped.header;
  const anyChange = input.lines.some((l) => l.status !== 'accepted');
  const allRejected = input.lines.every((l) => l.status === 'rejected');
  const bak02 = input.rejected || allRejected ? 'RJ' : anyChange ? 'AC' : 'AD';
  const out: SegmentValues[] = [
    ['BAK', '00', bak02, h.po_number ?? '', (h.po_date ?? '').replaceAll('-', '')],
  ];
  mapped.lineAnchors.forEach((anchor, i) => {
    const e = anchor.seg.elements;
    const line = input.lines[i]!;
    const price = line.status === 'changed' && line.unitPrice !== null ? line.unitPrice : (e[4] ?? '');
    const po1: string[] = ['PO1', e[1] ?? '', e[2] ?? '', e[3] ?? '', price, e[5] ?? ''];
    for (let k = 6; k + 1 < e.length; k += 2) if (e[k] && e[k + 1]) po1.push(e[k]!, e[k + 1]!);
    // Trailing empty elements are not written (PO105 when no pairs follow).
    while (po1.length > 2 && po1[po1.length - 1] === '') po1.pop();
    out.push(po1 as unknown as SegmentValues);
    out.push([
      'ACK',
      input.rejected ? 'IR' : ACK01[line.status],
      line.status === 'rejected' || input.rejected ? '0' : (e[2] ?? ''),
      e[3] ?? '',
    ]);
  });
  out.push(['CTT', String(mapped.lineAnchors.length)]);
  return out;
}

/** Builds one interchange of 855s to the partner the 850s came from. */
export function buildPoAcks(input: {
  interchange: InterchangeHeader;
  groupSenderId: string;
  groupReceiverId: string;
  orders: readonly PoAckInput[];
  profile: X12Profile;
  control: AckControlNumbers;
  now?: Date;
}): string {
  const { interchange: x, profile } = input;
  const now = input.now ?? new Date();
  const w = new InterchangeWriter(outputFormat(profile), {
    senderQualifier: x.receiverQualifier,
    senderId: x.receiverId,
    receiverQualifier: x.senderQualifier,
    receiverId: x.senderId,
    date: now,
    controlNumber: input.control.isa13,
    version: isaVersion(profile),
    ackRequested: false,
    usage: x.usage === 'P' || x.usage === 'T' ? x.usage : usageIndicator(profile),
  });
  let text = w.begin();
  text += w.beginGroup({
    functionalId: 'PR',
    senderId: input.groupReceiverId,
    receiverId: input.groupSenderId,
    date: now,
    controlNumber: input.control.gs06[0]!,
    version: profile.version,
  });
  input.orders.forEach((o, i) => {
    text += w.transaction('855', input.control.st02[i]!, poAckBody(o));
  });
  text += w.endGroup();
  text += w.end();
  return text;
}
