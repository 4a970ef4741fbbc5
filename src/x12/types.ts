import type { Delimiters } from './delimiters.js';
import type { X12Problem } from './errors.js';

/**
 * The shapes the splitter yields. A file is read as a flat sequence of events, one envelope level
 * at a time, so a caller holds at most one transaction set in memory:
 *
 *   isa ─► gs ─► transaction ─► transaction … ─► ge ─► gs … ─► ge ─► iea ─► isa …
 */

/** One segment as read. */
export interface Segment {
  /** Segment id: `ISA`, `GS`, `ST`, `BEG`, … */
  tag: string;
  /**
   * The segment split on the element separator: `elements[0]` is the tag and `elements[n]` is
   * element n, so `elements[3]` of a BEG segment is BEG03. Components are not split (see {@link component}).
   */
  elements: string[];
  /** 1-based position of the segment in the file; the first ISA is 1. */
  ordinal: number;
}

/** Element `n` (1-based) of a segment, or '' when absent. */
export function el(segment: Segment, n: number): string {
  return segment.elements[n] ?? '';
}

/** Component `c` (1-based) of element `n`, split on the component separator; '' when absent. */
export function component(segment: Segment, n: number, c: number, delimiters: Delimiters): string {
  const value = segment.elements[n];
  if (value === undefined) return '';
  return value.split(delimiters.component)[c - 1] ?? '';
}

/** The inbound ISA header, decoded. Ids are trimmed of their fixed-width padding. */
export interface InterchangeHeader {
  file: string;
  segment: Segment;
  delimiters: Delimiters;
  /** ISA05 */
  senderQualifier: string;
  /** ISA06, trimmed */
  senderId: string;
  /** ISA07 */
  receiverQualifier: string;
  /** ISA08, trimmed */
  receiverId: string;
  /** ISA09, YYMMDD */
  date: string;
  /** ISA10, HHMM */
  time: string;
  /** ISA12, e.g. `00401` or `00501` */
  version: string;
  /** ISA13 exactly as sent (9 digits) */
  controlNumber: string;
  /** ISA14 = 1 */
  ackRequested: boolean;
  /** ISA15: P production, T test, I information */
  usage: string;
}

/** A GS header, decoded. */
export interface GroupHeader {
  segment: Segment;
  interchange: InterchangeHeader;
  /** GS01, e.g. PO, IN, SH, FA */
  functionalId: string;
  /** GS02 */
  senderId: string;
  /** GS03 */
  receiverId: string;
  /** GS04, CCYYMMDD */
  date: string;
  /** GS05 */
  time: string;
  /** GS06 */
  controlNumber: string;
  /** GS07, X for ASC X12 */
  agency: string;
  /** GS08, e.g. 004010 or 005010X231A1 */
  version: string;
}

/** What a group keeps of each of its transaction sets: enough for an AK2 loop. */
export interface SetSummary {
  /** ST01, e.g. 850 */
  id: string;
  /** ST02 */
  controlNumber: string;
  /** ST03 (005010 implementation convention reference), or null */
  implementationRef: string | null;
  /**
   * Problems found in the set. Shared with the `transaction` event: problems a caller adds while
   * handling that event (mapping, validation) are reported in the group's acknowledgment.
   */
  problems: X12Problem[];
}

/** One transaction set, ST through SE. */
export interface TransactionSet extends SetSummary {
  group: GroupHeader;
  /** ST … SE inclusive (SE missing when the set was cut short; see `problems`). */
  segments: Segment[];
}

/** Emitted when an ISA has been read. */
export interface IsaEvent {
  kind: 'isa';
  interchange: InterchangeHeader;
}

/** Emitted when a GS has been read. */
export interface GsEvent {
  kind: 'gs';
  group: GroupHeader;
}

/** Emitted at each SE (or where a set was cut short). */
export interface TransactionEvent {
  kind: 'transaction';
  set: TransactionSet;
}

/** Emitted at each GE, or where a group ended without one. */
export interface GeEvent {
  kind: 'ge';
  group: GroupHeader;
  /** The GE segment, or null when it is missing. */
  trailer: Segment | null;
  /** Every transaction set of the group, in order. */
  sets: SetSummary[];
  /** Group-level problems (GE01/GE02 mismatches, missing GE, stray segments). */
  problems: X12Problem[];
}

/** Emitted at each IEA, or where an interchange ended without one. */
export interface IeaEvent {
  kind: 'iea';
  interchange: InterchangeHeader;
  /** The IEA segment, or null when it is missing. */
  trailer: Segment | null;
  /** Number of functional groups read. */
  groupCount: number;
  /** Interchange-level problems (IEA01/IEA02 mismatches, missing IEA, stray segments). */
  problems: X12Problem[];
}

/**
 * Emitted for a TA1 inside an interchange (outside any group): the partner acknowledging one of
 * our interchanges. Its elements are checked; a bad one is an interchange problem instead.
 */
export interface Ta1Event {
  kind: 'ta1';
  interchange: InterchangeHeader;
  segment: Segment;
  /** TA101: the ISA13 of our interchange it acknowledges. */
  controlNumber: string;
  /** TA102 YYMMDD and TA103 HHMM: the ISA09/ISA10 of that interchange. */
  date: string;
  time: string;
  /** TA104: A accepted, E accepted with errors, R rejected. */
  code: 'A' | 'E' | 'R';
  /** TA105: interchange note code (I18). */
  note: string;
}

/** Emitted for something read past and not an error: text after the last IEA (a footer). */
export interface WarningEvent {
  kind: 'warning';
  problem: X12Problem;
}

/** What {@link splitX12} yields. */
export type X12Event = IsaEvent | GsEvent | TransactionEvent | GeEvent | IeaEvent | Ta1Event | WarningEvent;

/** X12 data types an element is read or written as: text, ids, decimals, implied decimals, dates, times. */
export const X12_TYPES = [
  'AN',
  'ID',
  'R',
  'N0',
  'N1',
  'N2',
  'N3',
  'N4',
  'N5',
  'N6',
  'N7',
  'N8',
  'N9',
  'DT',
  'TM',
] as const;
export type X12Type = (typeof X12_TYPES)[number];
