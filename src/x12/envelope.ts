import type { ParsedIsa } from './delimiters.js';
import { problem, X12Error, type AckCodes, type X12Problem } from './errors.js';
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

/** A segment id: 2 or 3 upper-case letters or digits, starting with a letter (no regex: every segment passes here). */
function isTag(t: string): boolean {
  if (t.length < 2 || t.length > 3) return false;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (!((c >= 65 && c <= 90) || (i > 0 && c >= 48 && c <= 57))) return false;
  }
  return true;
}
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

/** What a trailer (SE, GE, IEA) must say: how many things its structure holds, and its header's control number. */
interface TrailerSpec {
  tag: 'SE' | 'GE' | 'IEA';
  level: 'transaction' | 'group' | 'interchange';
  /** The structure the trailer closes, as messages name it. */
  name: string;
  count: number;
  /** What is counted, e.g. `functional groups`. */
  counted: string;
  controlNumber: string;
  /** The header element holding the control number (`ST02`) and the header's segment ordinal. */
  header: string;
  headerAt: number;
  sameControl: (a: string, b: string) => boolean;
  acks: { count: AckCodes; control: AckCodes; missing: AckCodes };
  /** Said after a missing trailer's message. */
  missingHint?: string;
  /** The trailer's position in its transaction set (SE). */
  positionInSet?: number;
}

/**
 * The problems of a structure's trailer: a wrong count (element 1), a control number unlike the
 * header's (element 2), or no trailer at all (`trailer` null: `by` started something else, or the
 * file ended).
 */
function trailerProblems(
  file: string,
  trailer: Segment | null,
  by: Segment | null,
  t: TrailerSpec,
): X12Problem[] {
  if (!trailer) {
    return [
      problem({
        code: `${t.tag}_MISSING`,
        level: t.level,
        file,
        segment: by?.ordinal ?? null,
        ...(by ? { segmentId: by.tag } : {}),
        text: `${t.name} has no ${t.tag} trailer; expected ${t.tag} before ${by ? by.tag : 'the end of the file'}${t.missingHint ?? ''}`,
        ack: t.acks.missing,
      }),
    ];
  }
  const at = {
    file,
    segment: trailer.ordinal,
    segmentId: t.tag,
    ...(t.positionInSet !== undefined ? { positionInSet: t.positionInSet } : {}),
  };
  const out: X12Problem[] = [];
  const count = el(trailer, 1);
  if (!/^\d+$/.test(count) || Number(count) !== t.count) {
    out.push(
      problem({
        ...at,
        code: `${t.tag}01_COUNT`,
        level: t.level,
        element: 1,
        value: count,
        text: `${t.tag}01 is ${JSON.stringify(count)} but ${t.name} has ${t.count} ${t.counted}; expected ${t.count}`,
        ack: t.acks.count,
      }),
    );
  }
  const control = el(trailer, 2);
  if (!t.sameControl(control, t.controlNumber)) {
    out.push(
      problem({
        ...at,
        code: `${t.tag}02_MISMATCH`,
        level: t.level,
        element: 2,
        value: control,
        text: `${t.tag}02 is ${JSON.stringify(control)}; expected ${JSON.stringify(t.controlNumber)} as in ${t.header} at segment ${t.headerAt}`,
        ack: t.acks.control,
      }),
    );
  }
  return out;
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
      case 'TA1':
        if (this.state === 'interchange') return this.ta1(seg, out);
        return this.stray(seg, 'TA1 inside a functional group');
      default:
        if (this.state === 'set') return this.addToSet(seg);
        return this.stray(seg);
    }
  }

  /** The file ended inside a segment (no terminator): the fragment is dropped and reported. */
  truncated(fragment: string, ordinal: number): void {
    const truncated = problem({
      code: 'TRUNCATED',
      level: 'interchange',
      file: this.file,
      segment: ordinal,
      text: `the file ends inside this segment (${JSON.stringify(fragment.slice(0, 40))}), before its terminator; the file is truncated`,
      ack: { ta1: '023' },
    });
    // Outside an interchange there is nothing to attach it to: it stops the file.
    if (this.state === 'outside') throw new X12Error(truncated);
    this.interchangeProblems.push(truncated);
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
    if (!isTag(seg.tag)) {
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
    if (se) set.segments.push(se);
    set.problems.push(
      ...trailerProblems(this.file, se, by, {
        tag: 'SE',
        level: 'transaction',
        name: `transaction set ${set.id} ${set.controlNumber} (ST at segment ${st.ordinal})`,
        count: set.segments.length,
        counted: 'segments ST..SE',
        controlNumber: set.controlNumber,
        header: 'ST02',
        headerAt: st.ordinal,
        sameControl: (a, b) => a === b,
        acks: { count: { ak5: '4' }, control: { ak5: '3' }, missing: { ak5: '2' } },
        ...(se ? { positionInSet: set.segments.length } : {}),
      }),
    );
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
    this.groupProblems.push(
      ...trailerProblems(this.file, ge, by, {
        tag: 'GE',
        level: 'group',
        name: `group ${g.functionalId} ${g.controlNumber} (GS at segment ${g.segment.ordinal})`,
        count: this.groupSets.length,
        counted: 'transaction sets',
        controlNumber: g.controlNumber,
        header: 'GS06',
        headerAt: g.segment.ordinal,
        sameControl: sameNumber,
        acks: { count: { ak9: '5' }, control: { ak9: '4' }, missing: { ak9: '3' } },
      }),
    );
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
    this.interchangeProblems.push(
      ...trailerProblems(this.file, iea, by, {
        tag: 'IEA',
        level: 'interchange',
        name: `interchange ${x.controlNumber} (ISA at segment ${x.segment.ordinal})`,
        count: this.groupCount,
        counted: 'functional groups',
        controlNumber: x.controlNumber,
        header: 'ISA13',
        headerAt: x.segment.ordinal,
        sameControl: sameNumber,
        acks: { count: { ta1: '021' }, control: { ta1: '001' }, missing: { ta1: '023' } },
        missingHint: ' (truncated file?)',
      }),
    );
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

  /**
   * A TA1 between ISA and IEA, outside any group: the partner's interchange acknowledgment of one
   * of ours. X12 allows it there; its five elements are checked like an ISA's.
   */
  private ta1(seg: Segment, out: X12Event[]): void {
    const e = seg.elements;
    const checks: [number, RegExp, string][] = [
      [1, /^\d{9}$/, 'the 9-digit ISA13 of the interchange it acknowledges'],
      [2, /^\d{6}$/, "that interchange's date YYMMDD (ISA09)"],
      [3, /^\d{4}$/, "that interchange's time HHMM (ISA10)"],
      [4, /^[AER]$/, 'A (accepted), E (accepted with errors) or R (rejected)'],
      [5, /^\d{3}$/, 'a 3-digit interchange note code such as 000'],
    ];
    const bad = checks.find(([n, re]) => !re.test(e[n] ?? ''));
    if (bad || e.length > 6) {
      const [n, , what] = bad ?? [6, null, 'five elements'];
      this.interchangeProblems.push(
        problem({
          code: 'TA1_INVALID',
          level: 'interchange',
          file: this.file,
          segment: seg.ordinal,
          segmentId: 'TA1',
          element: n,
          value: e[n] ?? '',
          text: `TA1${String(n).padStart(2, '0')} is ${JSON.stringify(e[n] ?? '')}; expected ${what}`,
          ack: { ta1: '024' },
        }),
      );
      return;
    }
    out.push({
      kind: 'ta1',
      interchange: this.interchange!,
      segment: seg,
      controlNumber: e[1]!,
      date: e[2]!,
      time: e[3]!,
      code: e[4] as 'A' | 'E' | 'R',
      note: e[5]!,
    });
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
