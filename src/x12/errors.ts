import { UserError } from '../errors.js';

/**
 * Acknowledgment codes a problem maps to. A 997/999 builder picks the ones for its level:
 *
 * - `ta1`: TA105 interchange note code (I18), for interchange-level problems.
 * - `ak9`: AK905–AK909 functional group syntax error code (716).
 * - `ak5`: AK502–AK506 / IK502–IK506 transaction set syntax error code (718).
 * - `ak3`: AK304 / IK304 segment syntax error code (720).
 * - `ak4`: AK403 / IK403 data element syntax error code (723).
 */
export interface AckCodes {
  ta1?: string;
  ak9?: string;
  ak5?: string;
  ak3?: string;
  ak4?: string;
}

/** Where a problem sits in the envelope hierarchy; decides which ack segment reports it. */
export type ProblemLevel = 'interchange' | 'group' | 'transaction' | 'segment' | 'element';

/**
 * One structural or data problem found in an X12 file, precise enough for an operator message and
 * for a 997/999 (see {@link AckCodes}).
 */
export interface X12Problem {
  /** Stable machine-readable code, e.g. `SE01_COUNT`, `IEA02_MISMATCH`, `ELEMENT_MISSING`. */
  code: string;
  level: ProblemLevel;
  /** File name as given to the splitter. */
  file: string;
  /** 1-based ordinal of the segment in the file (the first ISA is 1); null when no segment applies (end of file). */
  segment: number | null;
  /** Segment id (tag) of that segment, e.g. `SE`. */
  segmentId?: string;
  /** Position of the segment in its transaction set, ST = 1 (AK302 / IK302). */
  positionInSet?: number;
  /** 1-based element position in the segment (AK401). */
  element?: number;
  /** 1-based component position in a composite element. */
  component?: number;
  /**
   * A business rule of ours (unknown item, a value the mapping requires), not an X12 syntax error:
   * the partner profile's `business_errors` decides whether it rejects the set.
   */
  business?: boolean;
  /** The offending value, when there is one. */
  value?: string;
  /** One sentence: file, segment number, what was found and what was expected. */
  message: string;
  ack: AckCodes;
}

/**
 * A problem that stops reading the file (bad ISA, garbage outside an interchange, a cap exceeded).
 * A {@link UserError}: shown as one line, never retried.
 */
export class X12Error extends UserError {
  override name = 'X12Error';
  readonly problem: X12Problem;
  constructor(problem: X12Problem) {
    super(problem.message);
    this.problem = problem;
  }
}

/** "file, segment 12 (SE)" — the location prefix every message starts with. */
export function where(file: string, segment: number | null, segmentId?: string, element?: number): string {
  if (segment === null) return `${file}, end of file`;
  const id = segmentId
    ? ` (${segmentId}${element !== undefined ? String(element).padStart(2, '0') : ''})`
    : '';
  return `${file}, segment ${segment}${id}`;
}

/** Builds a problem whose message is prefixed with its location. */
export function problem(fields: Omit<X12Problem, 'message'> & { text: string }): X12Problem {
  const { text, ...rest } = fields;
  return {
    ...rest,
    message: escapeControl(`${where(rest.file, rest.segment, rest.segmentId, rest.element)}: ${text}`),
  };
}

/**
 * Control characters written visibly (`\n`, `\r`, `\t`, `\x1d`), so a message stays one line
 * whatever bytes the file held.
 */
export function escapeControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]/g, (c) =>
    c === '\n'
      ? '\\n'
      : c === '\r'
        ? '\\r'
        : c === '\t'
          ? '\\t'
          : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

/** Shows a delimiter readably in messages: `'*'`, `LF`, `CR`, `TAB`, `0x1D`. */
export function showChar(c: string | undefined): string {
  if (c === undefined || c === '') return 'nothing';
  if (c === '\n') return 'LF';
  if (c === '\r') return 'CR';
  if (c === '\t') return 'TAB';
  if (c === ' ') return 'a space';
  const code = c.charCodeAt(0);
  if (code < 0x20 || code === 0x7f) return `0x${code.toString(16).toUpperCase().padStart(2, '0')}`;
  return `'${c}'`;
}
