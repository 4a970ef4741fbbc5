import { problem, showChar, X12Error } from './errors.js';

/**
 * Delimiters of an interchange. Inbound they are read from the fixed-width ISA; outbound they
 * come from the partner profile.
 *
 *   ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*U*00401*000000001*0*P*>~
 *      ^ char 4: element separator                            ISA11 (char 83) ^                    char 105 ^^ char 106
 *                                                  repetition separator from 00402 on    component sep ┘└ segment terminator
 */
export interface Delimiters {
  /** Element separator (ISA char 4). */
  element: string;
  /** Component (sub-element) separator (ISA16, char 105). */
  component: string;
  /** Segment terminator (char 106). */
  segment: string;
  /** Repetition separator (ISA11) or null: in 00401 ISA11 is the standards id `U`. */
  repetition: string | null;
}

/** Length of an ISA segment including its terminator. */
export const ISA_LENGTH = 106;

/** 0-based offsets of the 16 element separators inside an ISA. */
export const ISA_SEPARATOR_OFFSETS = [
  3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103,
] as const;

/** Fixed widths of ISA01–ISA16. */
export const ISA_WIDTHS = [2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1] as const;

const ALNUM = /[A-Za-z0-9]/;

/** Why `c` cannot be a delimiter, or null when it can. */
function unusable(c: string): string | null {
  if (c.length !== 1) return 'must be exactly one character';
  if (ALNUM.test(c)) return 'must not be a letter or digit';
  if (c === ' ') return 'must not be a space (ISA fields are padded with spaces)';
  return null;
}

/**
 * Checks a delimiter set: single non-alphanumeric characters, pairwise distinct. Returns a message
 * per problem (empty when fine). The segment terminator may be CR or LF; the others may not.
 */
export function delimiterProblems(d: Delimiters): string[] {
  const out: string[] = [];
  const named: [string, string | null][] = [
    ['element separator', d.element],
    ['component separator', d.component],
    ['segment terminator', d.segment],
    ['repetition separator', d.repetition],
  ];
  for (const [name, c] of named) {
    if (c === null) continue;
    const why = unusable(c);
    if (why) out.push(`the ${name} ${showChar(c)} ${why}`);
    else if (name !== 'segment terminator' && (c === '\r' || c === '\n')) {
      out.push(`the ${name} must not be a line break`);
    }
  }
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      const [a, ca] = named[i]!;
      const [b, cb] = named[j]!;
      if (ca !== null && ca === cb)
        out.push(`the ${a} and the ${b} are both ${showChar(ca)}; they must differ`);
    }
  }
  return out;
}

/** ISA elements decoded, with the delimiters it declares. */
export interface ParsedIsa {
  delimiters: Delimiters;
  /** `elements[0]` is 'ISA', `elements[n]` is ISAnn, untrimmed. */
  elements: string[];
}

/**
 * Reads and validates a 106-character ISA. `text` must start with `ISA` and hold at least 106
 * characters (anything after the 106th is ignored). Throws an {@link X12Error} naming the file,
 * the segment ordinal, the character position and what was expected.
 */
export function parseIsa(text: string, file: string, ordinal: number): ParsedIsa {
  const fail = (text_: string, code: string, element?: number, ta1 = '024'): never => {
    throw new X12Error(
      problem({
        code,
        level: 'interchange',
        file,
        segment: ordinal,
        segmentId: 'ISA',
        ...(element !== undefined ? { element } : {}),
        text: text_,
        ack: { ta1 },
      }),
    );
  };
  if (!text.startsWith('ISA'))
    fail(`expected an ISA segment, found ${JSON.stringify(text.slice(0, 20))}`, 'ISA_MISSING');
  if (text.length < ISA_LENGTH) {
    fail(
      `the ISA segment must be ${ISA_LENGTH} characters, but the file ends after ${text.length}`,
      'ISA_TRUNCATED',
      undefined,
      '023',
    );
  }
  const element = text[3]!;
  const whyElement = unusable(element);
  if (whyElement) {
    fail(
      `the element separator (character 4) is ${showChar(element)}; it ${whyElement}`,
      'ISA_DELIMITER',
      undefined,
      '026',
    );
  }
  for (let i = 1; i < ISA_SEPARATOR_OFFSETS.length; i++) {
    const at = ISA_SEPARATOR_OFFSETS[i]!;
    if (text[at] !== element) {
      // Separator i follows field i; find where it really is, to say which field has the wrong width.
      const field = i;
      const start = ISA_SEPARATOR_OFFSETS[i - 1]! + 1;
      const actual = text.indexOf(element, start);
      const width =
        actual < 0 || actual > 105 ? 'not followed by a separator' : `${actual - start} characters`;
      const name = `ISA${String(field).padStart(2, '0')}`;
      fail(
        `the ISA segment must be exactly ${ISA_LENGTH} characters with fixed-width fields: ${name} must be ` +
          `${ISA_WIDTHS[field - 1]} characters, followed by the element separator ${showChar(element)} at character ${at + 1}; ` +
          `found ${showChar(text[at])} there (${name} is ${width})`,
        'ISA_LENGTH',
        field,
        '024',
      );
    }
  }
  const component = text[104]!;
  const segment = text[105]!;
  const isa11 = text[82]!;
  const repetition = !ALNUM.test(isa11) && isa11 !== ' ' ? isa11 : null;
  const delimiters: Delimiters = { element, component, segment, repetition };
  const problems = delimiterProblems(delimiters);
  if (problems.length > 0) {
    const ta1 = unusable(segment) ? '004' : unusable(component) ? '027' : '026';
    fail(`invalid delimiters in the ISA segment: ${problems.join('; ')}`, 'ISA_DELIMITER', undefined, ta1);
  }
  const body = text.slice(0, 105);
  const elements = body.split(element);
  if (elements.length !== 17) {
    fail(
      `the element separator ${showChar(element)} also appears inside an ISA field; expected 16 elements, found ${elements.length - 1}`,
      'ISA_LENGTH',
    );
  }
  if (body.includes(segment)) {
    fail(
      `the segment terminator ${showChar(segment)} (character 106) also appears inside the ISA segment`,
      'ISA_DELIMITER',
      undefined,
      '004',
    );
  }
  const checks: [number, RegExp, string, string][] = [
    [9, /^\d{6}$/, 'a date YYMMDD', '014'],
    [10, /^\d{4}$/, 'a time HHMM', '015'],
    [12, /^\d{5}$/, 'a 5-digit version such as 00401 or 00501', '017'],
    [13, /^\d{9}$/, 'a 9-digit interchange control number', '018'],
    [14, /^[01]$/, '0 or 1 (acknowledgment requested)', '019'],
    [15, /^[PTI]$/, 'P (production), T (test) or I (information)', '020'],
  ];
  for (const [n, re, what, ta1] of checks) {
    const v = elements[n]!;
    if (!re.test(v))
      fail(
        `ISA${String(n).padStart(2, '0')} is ${JSON.stringify(v)}; expected ${what}`,
        `ISA${n}_INVALID`,
        n,
        ta1,
      );
  }
  return { delimiters, elements };
}
