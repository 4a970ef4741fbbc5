/**
 * Functional acknowledgments (997 for 004010, 999 for 005010) for inbound functional groups.
 *
 *   inbound ISA/GS (theirs → ours)          ack ISA/GS (ours → theirs, GS01 = FA)
 *   ge event: sets + problems  ──judge──►   AK1  group id, GS06 [, GS08]
 *                                           AK2  per set: ST01, ST02 [, ST03]
 *                                             AK3/IK3  segment in error  ─ AK4/IK4 element in error
 *                                             AK5/IK5  A | R + codes
 *                                           AK9  A | P | R, included, received, accepted [+ codes]
 *
 * {@link judgeGroup} is the single rule for what is accepted: a loader should load exactly the
 * sets it marks accepted, so the acknowledgment and the database always agree.
 */
import type { X12Problem } from './errors.js';
import { isaVersion, outputFormat, usageIndicator, type X12Profile } from './partner.js';
import type { GeEvent, InterchangeHeader, SetSummary } from './types.js';
import { InterchangeWriter, serializeSegment, type OutputFormat, type SegmentValues } from './writer.js';

/** What the ack says about one transaction set. */
export interface SetVerdict {
  set: SetSummary;
  accepted: boolean;
  /** AK502–AK506 / IK502–IK506 codes (at most 5). */
  codes: string[];
}

/** What the ack says about one functional group. */
export interface GroupVerdict {
  ge: GeEvent;
  /** AK901: A accepted, P partially accepted, R rejected. */
  code: 'A' | 'P' | 'R';
  /** AK902: transaction sets the sender says it included (GE01), or the count read if GE01 is unusable. */
  included: number;
  /** AK903: transaction sets read. */
  received: number;
  /** AK904: transaction sets accepted. */
  accepted: number;
  /** AK905–AK909 (at most 5). */
  codes: string[];
  sets: SetVerdict[];
}

const uniq = (codes: (string | undefined)[]): string[] =>
  [...new Set(codes.filter((c): c is string => c !== undefined && c !== ''))].slice(0, 5);

/**
 * Decides the acknowledgment of a group. A set is accepted when it has no problem. A group with a
 * problem of its own (GE01/GE02, missing GE…) — or any interchange problem — rejects all its sets.
 */
export function judgeGroup(ge: GeEvent, interchangeProblems: readonly X12Problem[] = []): GroupVerdict {
  const groupRejected = ge.problems.length > 0 || interchangeProblems.length > 0;
  const sets: SetVerdict[] = ge.sets.map((set) => {
    const accepted = !groupRejected && set.problems.length === 0;
    const codes = uniq(set.problems.map((p) => p.ack.ak5));
    if (set.problems.some((p) => p.ack.ak5 === undefined) && !codes.includes('5')) {
      // Segment or element errors (AK3/AK4) without a set-level code: "one or more segments in error".
      codes.push('5');
    }
    return { set, accepted, codes: codes.slice(0, 5) };
  });
  const received = sets.length;
  const accepted = sets.filter((s) => s.accepted).length;
  const ge01 = ge.trailer?.elements[1] ?? '';
  const included = /^\d+$/.test(ge01) ? Number(ge01) : received;
  const code: GroupVerdict['code'] = groupRejected
    ? 'R'
    : accepted === received
      ? 'A'
      : accepted === 0
        ? 'R'
        : 'P';
  return { ge, code, included, received, accepted, codes: uniq(ge.problems.map((p) => p.ack.ak9)), sets };
}

/** Which acknowledgment to build. */
export type AckType = '997' | '999';

/** Implementation convention of the 999 (ST03 and GS08). */
export const ACK_999_VERSION = '005010X231A1';

/**
 * The segments of one 997/999 between ST and SE, for one group verdict. `format` is the one the
 * ack is written with: a bad value is copied into AK404 only if it contains none of its delimiters.
 */
export function ackBody(verdict: GroupVerdict, type: AckType, format: OutputFormat): SegmentValues[] {
  const g = verdict.ge.group;
  const v5010 = type === '999' || g.version.startsWith('005');
  const out: SegmentValues[] = [];
  out.push(
    v5010 ? ['AK1', g.functionalId, g.controlNumber, g.version] : ['AK1', g.functionalId, g.controlNumber],
  );
  const [seg3, seg4, seg5] = type === '999' ? ['IK3', 'IK4', 'IK5'] : ['AK3', 'AK4', 'AK5'];
  const d = format.delimiters;
  const safe = (v: string | undefined): string =>
    v !== undefined &&
    v.length <= 99 &&
    ![d.element, d.component, d.segment, d.repetition ?? '', '\r', '\n'].some(
      (c) => c !== '' && v.includes(c),
    )
      ? v
      : '';
  for (const sv of verdict.sets) {
    const s = sv.set;
    out.push(
      v5010 && s.implementationRef
        ? ['AK2', s.id, s.controlNumber, s.implementationRef]
        : ['AK2', s.id, s.controlNumber],
    );
    // AK3 per segment in error, in segment order, with its AK4s.
    const bySegment = new Map<string, X12Problem[]>();
    for (const p of s.problems) {
      if ((p.level !== 'segment' && p.level !== 'element') || p.positionInSet === undefined || !p.segmentId)
        continue;
      const key = `${String(p.positionInSet).padStart(9, '0')}:${p.segmentId}`;
      const list = bySegment.get(key) ?? [];
      list.push(p);
      bySegment.set(key, list);
    }
    for (const key of [...bySegment.keys()].sort()) {
      const problems = bySegment.get(key)!;
      const first = problems[0]!;
      const segCode = problems.find((p) => p.ack.ak3)?.ack.ak3 ?? '8';
      // AK301 must be a segment id; garbage in place of one is reported by AK5 code 5 alone.
      if (!/^[A-Z][A-Z0-9]{1,2}$/.test(first.segmentId!)) continue;
      const segmentId = first.segmentId!;
      out.push([seg3, segmentId, String(first.positionInSet), '', segCode]);
      for (const p of problems) {
        if (p.level !== 'element' || p.element === undefined) continue;
        const position =
          p.component !== undefined ? [String(p.element), String(p.component)] : String(p.element);
        out.push([seg4, position, '', p.ack.ak4 ?? '7', safe(p.value)]);
      }
    }
    out.push([seg5, sv.accepted ? 'A' : 'R', ...sv.codes]);
  }
  out.push([
    'AK9',
    verdict.code,
    String(verdict.included),
    String(verdict.received),
    String(verdict.accepted),
    ...verdict.codes,
  ]);
  return out;
}

/** Control numbers for an ack interchange: one ISA13, and one GS06 and ST02 per acknowledged group. */
export interface AckControlNumbers {
  isa13: number | bigint | string;
  gs06: readonly (number | bigint | string)[];
  st02: readonly (number | bigint | string)[];
}

/** Input of {@link buildAck}. */
export interface AckInput {
  /** The inbound interchange (its `isa` event). */
  interchange: InterchangeHeader;
  /** The inbound groups to acknowledge (their `ge` events); do not pass FA groups (acks are not acked). */
  groups: readonly GeEvent[];
  /** The inbound `iea` event's problems; when any, every group is rejected. */
  interchangeProblems?: readonly X12Problem[];
  /** The partner's profile: delimiters, version, 997 or 999. */
  profile: X12Profile;
  /** Allocated by the caller (see allocateControlNumbers). */
  control: AckControlNumbers;
  /** ISA09/ISA10, GS04/GS05. @defaultValue now */
  now?: Date;
  /** Overrides the profile's `ack`. */
  type?: AckType;
}

/** TA104 (A accepted, E accepted with errors, R rejected) and TA105 note code (I18) of a TA1. */
export interface Ta1Verdict {
  code: 'A' | 'E' | 'R';
  note: string;
}

/**
 * A TA1 interchange acknowledgment in an interchange of its own (ISA, TA1, IEA), sender and
 * receiver swapped. It travels apart from the 997/999 so those stay plain functional-group
 * interchanges (node-x12's strict parser refuses a TA1 anywhere).
 */
export function buildTa1(input: {
  interchange: InterchangeHeader;
  ta1: Ta1Verdict;
  profile: X12Profile;
  isa13: number | bigint | string;
  now?: Date;
}): string {
  const x = input.interchange;
  const format = outputFormat(input.profile);
  const w = new InterchangeWriter(format, {
    senderQualifier: x.receiverQualifier,
    senderId: x.receiverId,
    receiverQualifier: x.senderQualifier,
    receiverId: x.senderId,
    date: input.now ?? new Date(),
    controlNumber: input.isa13,
    version: isaVersion(input.profile),
    ackRequested: false,
    usage: x.usage === 'P' || x.usage === 'T' ? x.usage : usageIndicator(input.profile),
  });
  return (
    w.begin() +
    serializeSegment(['TA1', x.controlNumber, x.date, x.time, input.ta1.code, input.ta1.note], format) +
    w.end()
  );
}

/** The TA1 an inbound interchange gets, or null: when the partner asks (ISA14 = 1) or the envelope is bad. */
export function ta1For(interchange: InterchangeHeader, problems: readonly X12Problem[]): Ta1Verdict | null {
  const coded = problems.find((p) => p.ack.ta1 !== undefined);
  if (problems.length > 0) return { code: 'R', note: coded?.ack.ta1 ?? '000' };
  return interchange.ackRequested ? { code: 'A', note: '000' } : null;
}

/** The ack interchange and what it said about each group. */
export interface AckOutput {
  text: string;
  type: AckType;
  groups: GroupVerdict[];
}

/**
 * Builds one interchange holding a 997 or 999 for each inbound group: sender and receiver swapped
 * from the inbound ISA and GS, GS01 FA, written with the partner's delimiters. The usage indicator
 * (ISA15) mirrors the inbound one, so a test interchange is never acknowledged as production.
 */
export function buildAck(input: AckInput): AckOutput {
  const { interchange: x, profile } = input;
  const type: AckType = input.type ?? profile.ack;
  if (input.control.gs06.length < input.groups.length || input.control.st02.length < input.groups.length) {
    throw new Error(`buildAck: ${input.groups.length} groups need as many GS06 and ST02 control numbers`);
  }
  const now = input.now ?? new Date();
  const format = outputFormat(profile);
  const version = type === '999' ? '00501' : isaVersion(profile);
  // A 999 needs ISA12 00501 and so a repetition separator; pick one the profile does not use.
  const d = format.delimiters;
  const repetition =
    d.repetition ?? ['^', '{', '}', '`', '|'].find((c) => ![d.element, d.component, d.segment].includes(c))!;
  const written: OutputFormat =
    version === '00501' ? { ...format, delimiters: { ...d, repetition } } : format;
  const w = new InterchangeWriter(written, {
    senderQualifier: x.receiverQualifier,
    senderId: x.receiverId,
    receiverQualifier: x.senderQualifier,
    receiverId: x.senderId,
    date: now,
    controlNumber: input.control.isa13,
    version,
    ackRequested: false,
    usage: x.usage === 'P' || x.usage === 'T' ? x.usage : usageIndicator(profile),
  });
  let text = w.begin();
  const verdicts: GroupVerdict[] = [];
  input.groups.forEach((ge, i) => {
    const verdict = judgeGroup(ge, input.interchangeProblems);
    verdicts.push(verdict);
    text += w.beginGroup({
      functionalId: 'FA',
      senderId: ge.group.receiverId,
      receiverId: ge.group.senderId,
      date: now,
      controlNumber: input.control.gs06[i]!,
      version: type === '999' ? ACK_999_VERSION : profile.version,
    });
    text += w.transaction(
      type,
      input.control.st02[i]!,
      ackBody(verdict, type, written),
      type === '999' ? ACK_999_VERSION : undefined,
    );
    text += w.endGroup();
  });
  text += w.end();
  return { text, type, groups: verdicts };
}
