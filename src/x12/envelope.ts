import type { ParsedIsa } from './delimiters.js';
import { problem, X12Error, type X12Problem } from './errors.js';
import {
  el,
  type GroupHeader,
  type InterchangeHeader,
  type Segment,
  type SetSummary,
  type TransactionSet,
  type X12Event,
} from './types.js';

/**
 * Envelope validation: turns a flat stream of segments into envelope events and checks, as it
 * goes, that
 *
 *   ISA13 = IEA02      IEA01 = number of GS            (TA1 001 / 021; missing IEA 023)
 *   GS06  = GE02       GE01  = number of ST            (AK9 4 / 5;   missing GE 3)
 *   ST02  = SE02       SE01  = segments ST..SE         (AK5 3 / 4;   missing SE 2)
 *
 * plus control number syntax and uniqueness (AK9 6 / 19, AK5 7 / 23), transaction set ids (AK5 6)
 * and segment ids (AK3 1). Each problem names the file, the segment number and what was expected.
 * Only the current transaction set's segments are held; a group keeps one small summary per set.
 *
 *   state:  outside ──ISA──► interchange ──GS──► group ──ST──► set ──SE──► group ──GE──► interchange ──IEA──► outside
 */

/** Options of {@link EnvelopeReader}. */
export interface EnvelopeOptions {
  /** File name used in messages. */
  file: string;
  /** Most segments a transaction set may have; more throws an {@link X12Error}. */
  maxSegmentsPerSet: number;
}

type State = 'outside' | 'interchange' | 'group' | 'set';

const TAG = /^[A-Z][A-Z0-9]{1,2}$/;
const ST01 = /^\d{3}$/;
const ST02 = /^[A-Za-z0-9]{4,9}$/;
const GS06 = /^\d{1,9}$/;

/** Functional identifier code (GS01) of the transaction sets we know, for the ST01/GS01 check. */
export const FUNCTIONAL_IDS: Readonly<Record<string, string>> = {
  '810': 'IN',
  '850': 'PO',
  '855': 'PR',
  '856': 'SH',
  '860': 'PC',
  '997': 'FA',
  '999': 'FA',
};

/** Numeric equality for control numbers that may differ only in leading zeros. */
function sameNumber(a: string, b: string): boolean {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) === BigInt(b);
  return a === b;
}

/**
 * The envelope state machine behind {@link splitX12}. Feed it ISA segments with {@link isa}, every
 * other segment with {@link segment}, then call {@link end}; each call appends events to `out`.
 */
export class EnvelopeReader {
  private state: State = 'outside';
  private readonly file: string;
  private readonly maxSegmentsPerSet: number;
  private interchange: InterchangeHeader | null = null;
  private interchangeProblems: X12Problem[] = [];
  private groupCount = 0;
  private groupNumbers = new Set<string>();
  private group: GroupHeader | null = null;
  private groupSets: SetSummary[] = [];
  private groupProblems: X12Problem[] = [];
  private setNumbers = new Set<string>();
  private set: TransactionSet | null = null;
  /** Interchanges read so far. */
  interchanges = 0;

  constructor(options: EnvelopeOptions) {
    this.file = options.file;
    this.maxSegmentsPerSet = options.maxSegmentsPerSet;
  }

  /** True between interchanges: the next segment must be an ISA. */
  get outside(): boolean {
    return this.state === 'outside';
  }

  /** An ISA (already validated by {@link parseIsa}). Closes an interchange left open. */
  isa(parsed: ParsedIsa, segment: Segment, out: X12Event[]): void {
    if (this.state !== 'outside') this.closeInterchange(null, segment, out);
    const e = parsed.elements;
    this.interchange = {
      file: this.file,
      segment,
      delimiters: parsed.delimiters,
      senderQualifier: e[5]!,
      senderId: e[6]!.trim(),
      receiverQualifier: e[7]!,
      receiverId: e[8]!.trim(),
      date: e[9]!,
      time: e[10]!,
      version: e[12]!,
      controlNumber: e[13]!,
      ackRequested: e[14] === '1',
      usage: e[15]!,
    };
    this.interchangeProblems = [];
    this.groupCount = 0;
    this.groupNumbers = new Set();
    this.state = 'interchange';
    this.interchanges++;
    out.push({ kind: 'isa', interchange: this.interchange });
  }

  /** Any segment other than ISA. */
  segment(seg: Segment, out: X12Event[]): void {
    switch (seg.tag) {
      case 'GS':
        return this.openGroup(seg, out);
      case 'ST':
        return this.openSet(seg, out);
      case 'SE':
        if (this.state === 'set') return this.closeSet(seg, out);
        return this.stray(seg, 'SE without a matching ST');
      case 'GE':
        if (this.state === 'set') this.closeSet(null, out, seg);
        if (this.state === 'group') return this.closeGroup(seg, out);
        return this.stray(seg, 'GE without a matching GS');
      case 'IEA':
        return this.closeInterchange(seg, seg, out);
      default:
        if (this.state === 'set') return this.addToSet(seg);
        return this.stray(seg);
    }
  }

  /** The file ended inside a segment (no terminator): the fragment is dropped and reported. */
  truncated(fragment: string, ordinal: number): void {
    const text = `the file ends inside this segment (${JSON.stringify(fragment.slice(0, 40))}), before its terminator; the file is truncated`;
    if (this.state === 'outside') {
      throw new X12Error(
        problem({
          code: 'TRUNCATED',
          level: 'interchange',
          file: this.file,
          segment: ordinal,
          text,
          ack: { ta1: '023' },
        }),
      );
    }
    this.interchangeProblems.push(
      problem({
        code: 'TRUNCATED',
        level: 'interchange',
        file: this.file,
        segment: ordinal,
        text,
        ack: { ta1: '023' },
      }),
    );
  }

  /** End of input: closes whatever is open, each missing trailer reported. */
  end(out: X12Event[]): void {
    if (this.state !== 'outside') this.closeInterchange(null, null, out);
  }

  private openGroup(seg: Segment, out: X12Event[]): void {
    if (this.state === 'outside') this.fatalOutside(seg);
    if (this.state === 'set') this.closeSet(null, out, seg);
    if (this.state === 'group') this.closeGroup(null, out, seg);
    const g: GroupHeader = {
      segment: seg,
      interchange: this.interchange!,
      functionalId: el(seg, 1),
      senderId: el(seg, 2),
      receiverId: el(seg, 3),
      date: el(seg, 4),
      time: el(seg, 5),
      controlNumber: el(seg, 6),
      agency: el(seg, 7),
      version: el(seg, 8),
    };
    this.group = g;
    this.groupSets = [];
    this.groupProblems = [];
    this.setNumbers = new Set();
    this.groupCount++;
    const at = { file: this.file, segment: seg.ordinal, segmentId: 'GS' };
    if (!GS06.test(g.controlNumber)) {
      this.groupProblems.push(
        problem({
          ...at,
          code: 'GS06_INVALID',
          level: 'group',
          element: 6,
          value: g.controlNumber,
          text: `GS06 is ${JSON.stringify(g.controlNumber)}; expected a group control number of 1 to 9 digits`,
          ack: { ak9: '6' },
        }),
      );
    } else if (this.groupNumbers.has(String(BigInt(g.controlNumber)))) {
      this.groupProblems.push(
        problem({
          ...at,
          code: 'GS06_DUPLICATE',
          level: 'group',
          element: 6,
          value: g.controlNumber,
          text: `group control number ${g.controlNumber} is used twice in interchange ${this.interchange!.controlNumber}; expected it to be unique`,
          ack: { ak9: '19' },
        }),
      );
    }
    if (GS06.test(g.controlNumber)) this.groupNumbers.add(String(BigInt(g.controlNumber)));
    if (!/^[A-Z]{2}$/.test(g.functionalId)) {
      this.groupProblems.push(
        problem({
          ...at,
          code: 'GS01_INVALID',
          level: 'group',
          element: 1,
          value: g.functionalId,
          text: `GS01 is ${JSON.stringify(g.functionalId)}; expected a 2-letter functional identifier such as PO, IN, SH or FA`,
          ack: { ak9: '1' },
        }),
      );
    }
    if (g.version === '') {
      this.groupProblems.push(
        problem({
          ...at,
          code: 'GS08_MISSING',
          level: 'group',
          element: 8,
          text: 'GS08 (version) is empty; expected e.g. 004010 or 005010',
          ack: { ak9: '2' },
        }),
      );
    }
    this.state = 'group';
    out.push({ kind: 'gs', group: g });
  }

  private openSet(seg: Segment, out: X12Event[]): void {
    if (this.state === 'outside') this.fatalOutside(seg);
    if (this.state === 'interchange') return this.stray(seg, 'ST outside a functional group');
    if (this.state === 'set') this.closeSet(null, out, seg);
    const id = el(seg, 1);
    const controlNumber = el(seg, 2);
    const st03 = el(seg, 3);
    const set: TransactionSet = {
      id,
      controlNumber,
      implementationRef: st03 === '' ? null : st03,
      problems: [],
      group: this.group!,
      segments: [seg],
    };
    const at = { file: this.file, segment: seg.ordinal, segmentId: 'ST', positionInSet: 1 };
    if (!ST01.test(id)) {
      set.problems.push(
        problem({
          ...at,
          code: 'ST01_INVALID',
          level: 'transaction',
          element: 1,
          value: id,
          text: `ST01 is ${JSON.stringify(id)}; expected a 3-digit transaction set id such as 850`,
          ack: { ak5: '6' },
        }),
      );
    } else {
      const expected = FUNCTIONAL_IDS[id];
      if (expected && this.group!.functionalId !== expected) {
        set.problems.push(
          problem({
            ...at,
            code: 'ST01_GROUP_MISMATCH',
            level: 'transaction',
            element: 1,
            value: id,
            text: `transaction set ${id} is in a group with GS01 ${JSON.stringify(this.group!.functionalId)}; expected GS01 ${expected}`,
            ack: { ak5: '6' },
          }),
        );
      }
    }
    if (!ST02.test(controlNumber)) {
      set.problems.push(
        problem({
          ...at,
          code: 'ST02_INVALID',
          level: 'transaction',
          element: 2,
          value: controlNumber,
          text: `ST02 is ${JSON.stringify(controlNumber)}; expected a control number of 4 to 9 letters or digits`,
          ack: { ak5: '7' },
        }),
      );
    } else if (this.setNumbers.has(controlNumber)) {
      set.problems.push(
        problem({
          ...at,
          code: 'ST02_DUPLICATE',
          level: 'transaction',
          element: 2,
          value: controlNumber,
          text: `transaction set control number ${controlNumber} is used twice in group ${this.group!.controlNumber}; expected it to be unique`,
          ack: { ak5: '23' },
        }),
      );
    }
    this.setNumbers.add(controlNumber);
    this.set = set;
    this.state = 'set';
  }

  private addToSet(seg: Segment): void {
    const set = this.set!;
    if (set.segments.length >= this.maxSegmentsPerSet) {
      throw new X12Error(
        problem({
          code: 'SET_TOO_LONG',
          level: 'transaction',
          file: this.file,
          segment: seg.ordinal,
          segmentId: seg.tag,
          text: `transaction set ${set.id} ${set.controlNumber} (ST at segment ${set.segments[0]!.ordinal}) has more than ${this.maxSegmentsPerSet} segments; raise maxSegmentsPerSet if this is expected`,
          ack: { ak5: '4' },
        }),
      );
    }
    set.segments.push(seg);
    if (!TAG.test(seg.tag)) {
      set.problems.push(
        problem({
          code: 'SEGMENT_ID_INVALID',
          level: 'segment',
          file: this.file,
          segment: seg.ordinal,
          segmentId: seg.tag,
          positionInSet: set.segments.length,
          text: `${JSON.stringify(seg.tag.slice(0, 20))} is not a segment id; expected 2 or 3 upper-case letters or digits starting with a letter`,
          ack: { ak3: '1' },
        }),
      );
    }
  }

  /** Ends the current set at `se`, or without one (`se` null) because `by` started something else. */
  private closeSet(se: Segment | null, out: X12Event[], by: Segment | null = null): void {
    const set = this.set!;
    const st = set.segments[0]!;
    const name = `transaction set ${set.id} ${set.controlNumber} (ST at segment ${st.ordinal})`;
    if (se) {
      set.segments.push(se);
      const count = set.segments.length;
      const at = { file: this.file, segment: se.ordinal, segmentId: 'SE', positionInSet: count };
      const se01 = el(se, 1);
      if (!/^\d+$/.test(se01) || Number(se01) !== count) {
        set.problems.push(
          problem({
            ...at,
            code: 'SE01_COUNT',
            level: 'transaction',
            element: 1,
            value: se01,
            text: `SE01 is ${JSON.stringify(se01)} but ${name} has ${count} segments ST..SE; expected ${count}`,
            ack: { ak5: '4' },
          }),
        );
      }
      const se02 = el(se, 2);
      if (se02 !== set.controlNumber) {
        set.problems.push(
          problem({
            ...at,
            code: 'SE02_MISMATCH',
            level: 'transaction',
            element: 2,
            value: se02,
            text: `SE02 is ${JSON.stringify(se02)}; expected ${JSON.stringify(set.controlNumber)} as in ST02 at segment ${st.ordinal}`,
            ack: { ak5: '3' },
          }),
        );
      }
    } else {
      set.problems.push(
        problem({
          code: 'SE_MISSING',
          level: 'transaction',
          file: this.file,
          segment: by?.ordinal ?? null,
          ...(by ? { segmentId: by.tag } : {}),
          text: `${name} has no SE trailer; expected SE before ${by ? by.tag : 'the end of the file'}`,
          ack: { ak5: '2' },
        }),
      );
    }
    this.groupSets.push({
      id: set.id,
      controlNumber: set.controlNumber,
      implementationRef: set.implementationRef,
      problems: set.problems,
    });
    this.set = null;
    this.state = 'group';
    out.push({ kind: 'transaction', set });
  }

  private closeGroup(ge: Segment | null, out: X12Event[], by: Segment | null = null): void {
    const g = this.group!;
    const name = `group ${g.functionalId} ${g.controlNumber} (GS at segment ${g.segment.ordinal})`;
    if (ge) {
      const at = { file: this.file, segment: ge.ordinal, segmentId: 'GE' };
      const ge01 = el(ge, 1);
      const count = this.groupSets.length;
      if (!/^\d+$/.test(ge01) || Number(ge01) !== count) {
        this.groupProblems.push(
          problem({
            ...at,
            code: 'GE01_COUNT',
            level: 'group',
            element: 1,
            value: ge01,
            text: `GE01 is ${JSON.stringify(ge01)} but ${name} has ${count} transaction sets; expected ${count}`,
            ack: { ak9: '5' },
          }),
        );
      }
      const ge02 = el(ge, 2);
      if (!sameNumber(ge02, g.controlNumber)) {
        this.groupProblems.push(
          problem({
            ...at,
            code: 'GE02_MISMATCH',
            level: 'group',
            element: 2,
            value: ge02,
            text: `GE02 is ${JSON.stringify(ge02)}; expected ${JSON.stringify(g.controlNumber)} as in GS06 at segment ${g.segment.ordinal}`,
            ack: { ak9: '4' },
          }),
        );
      }
    } else {
      this.groupProblems.push(
        problem({
          code: 'GE_MISSING',
          level: 'group',
          file: this.file,
          segment: by?.ordinal ?? null,
          ...(by ? { segmentId: by.tag } : {}),
          text: `${name} has no GE trailer; expected GE before ${by ? by.tag : 'the end of the file'}`,
          ack: { ak9: '3' },
        }),
      );
    }
    out.push({ kind: 'ge', group: g, trailer: ge, sets: this.groupSets, problems: this.groupProblems });
    this.group = null;
    this.groupSets = [];
    this.groupProblems = [];
    this.state = 'interchange';
  }

  private closeInterchange(iea: Segment | null, by: Segment | null, out: X12Event[]): void {
    if (this.state === 'outside') this.fatalOutside(by!);
    if (this.state === 'set') this.closeSet(null, out, by);
    if (this.state === 'group') this.closeGroup(null, out, by);
    const x = this.interchange!;
    const name = `interchange ${x.controlNumber} (ISA at segment ${x.segment.ordinal})`;
    if (iea) {
      const at = { file: this.file, segment: iea.ordinal, segmentId: 'IEA' };
      const iea01 = el(iea, 1);
      if (!/^\d+$/.test(iea01) || Number(iea01) !== this.groupCount) {
        this.interchangeProblems.push(
          problem({
            ...at,
            code: 'IEA01_COUNT',
            level: 'interchange',
            element: 1,
            value: iea01,
            text: `IEA01 is ${JSON.stringify(iea01)} but ${name} has ${this.groupCount} functional groups; expected ${this.groupCount}`,
            ack: { ta1: '021' },
          }),
        );
      }
      const iea02 = el(iea, 2);
      if (!sameNumber(iea02, x.controlNumber)) {
        this.interchangeProblems.push(
          problem({
            ...at,
            code: 'IEA02_MISMATCH',
            level: 'interchange',
            element: 2,
            value: iea02,
            text: `IEA02 is ${JSON.stringify(iea02)}; expected ${JSON.stringify(x.controlNumber)} as in ISA13 at segment ${x.segment.ordinal}`,
            ack: { ta1: '001' },
          }),
        );
      }
    } else {
      this.interchangeProblems.push(
        problem({
          code: 'IEA_MISSING',
          level: 'interchange',
          file: this.file,
          segment: by?.ordinal ?? null,
          ...(by ? { segmentId: by.tag } : {}),
          text: `${name} has no IEA trailer; expected IEA before ${by ? by.tag : 'the end of the file'} (truncated file?)`,
          ack: { ta1: '023' },
        }),
      );
    }
    out.push({
      kind: 'iea',
      interchange: x,
      trailer: iea,
      groupCount: this.groupCount,
      problems: this.interchangeProblems,
    });
    this.interchange = null;
    this.interchangeProblems = [];
    this.state = 'outside';
  }

  /** A segment where the envelope does not allow it. */
  private stray(seg: Segment, what?: string): void {
    if (this.state === 'outside') this.fatalOutside(seg);
    const id = JSON.stringify(seg.tag.slice(0, 20));
    if (this.state === 'group') {
      this.groupProblems.push(
        problem({
          code: 'SEGMENT_OUTSIDE_SET',
          level: 'group',
          file: this.file,
          segment: seg.ordinal,
          segmentId: seg.tag,
          text: `${what ?? `segment ${id} outside a transaction set`}; expected ST or GE`,
          ack: {},
        }),
      );
    } else {
      this.interchangeProblems.push(
        problem({
          code: 'SEGMENT_OUTSIDE_GROUP',
          level: 'interchange',
          file: this.file,
          segment: seg.ordinal,
          segmentId: seg.tag,
          text: `${what ?? `segment ${id} outside a functional group`}; expected GS or IEA`,
          ack: { ta1: '024' },
        }),
      );
    }
  }

  private fatalOutside(seg: Segment): never {
    const text =
      this.interchanges === 0
        ? `expected an ISA segment first, found ${JSON.stringify(seg.elements.join('*').slice(0, 40))}`
        : `expected an ISA segment or the end of the file after the IEA, found ${JSON.stringify(seg.elements.join('*').slice(0, 40))}`;
    throw new X12Error(
      problem({
        code: 'OUTSIDE_INTERCHANGE',
        level: 'interchange',
        file: this.file,
        segment: seg.ordinal,
        segmentId: seg.tag.slice(0, 3),
        text,
        ack: { ta1: '024' },
      }),
    );
  }
}
