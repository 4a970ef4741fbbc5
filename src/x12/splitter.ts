import { StringDecoder } from 'node:string_decoder';
import { escapeBytes, StrictDecoder } from '../csv/text-decode.js';
import { ISA_LENGTH, parseIsa, type Delimiters } from './delimiters.js';
import { EnvelopeReader } from './envelope.js';
import { problem, showChar, X12Error } from './errors.js';
import type { Segment, X12Event } from './types.js';

/**
 * The streaming X12 splitter.
 *
 *   bytes ──decode──► text ──tokenize (delimiters from each ISA)──► segments ──EnvelopeReader──► events
 *                      │                                                                         │
 *                      └─ only the unfinished segment is carried between chunks                   └─ isa, gs, transaction, ge, iea
 *
 * Memory is bounded by the caps below, never by the file: the tokenizer keeps the tail of the last
 * chunk (one partial segment), the envelope reader keeps the current transaction set.
 */

/** Caps and naming for {@link splitX12}. Every cap, when exceeded, throws an {@link X12Error}. */
export interface SplitOptions {
  /**
   * Name of the file in messages.
   * @defaultValue `'(input)'`
   */
  file?: string;
  /**
   * Most bytes the input may have.
   * @defaultValue 2 GiB
   */
  maxFileBytes?: number;
  /**
   * Most segments one transaction set may have (ST and SE included).
   * @defaultValue 250,000
   */
  maxSegmentsPerSet?: number;
  /**
   * Longest element, in characters.
   * @defaultValue 4,096
   */
  maxElementLength?: number;
  /**
   * Longest segment, in characters; bounds the text held while looking for a terminator.
   * @defaultValue 65,536
   */
  maxSegmentLength?: number;
  /**
   * How bytes are decoded.
   * @defaultValue `'utf8'`
   */
  encoding?: 'utf8' | 'latin1';
}

/** Defaults of {@link SplitOptions}. */
export const SPLIT_DEFAULTS = {
  file: '(input)',
  maxFileBytes: 2 * 1024 ** 3,
  maxSegmentsPerSet: 250_000,
  maxElementLength: 4096,
  maxSegmentLength: 65_536,
  encoding: 'utf8',
} satisfies Required<SplitOptions>;

const isAlnum = (code: number): boolean =>
  (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);

/** Turns decoded text into segments, carrying a partial segment across chunks. */
class Tokenizer {
  private buf = '';
  private pos = 0;
  private delimiters: Delimiters | null = null;
  private ordinal = 0;
  /** Bytes of the text before `buf` (for byte offsets in messages). */
  private consumed = 0;
  /** Segments read since the last ISA: none means its declared terminator was never found. */
  private sinceIsa = 0;
  /** Text after the last IEA that is not an ISA: where it starts and how it begins. */
  private trailing: { offset: number; segment: number; text: string; carried: number } | null = null;
  private readonly o: Required<SplitOptions>;
  private readonly reader: EnvelopeReader;

  constructor(options: Required<SplitOptions>, reader: EnvelopeReader) {
    this.o = options;
    this.reader = reader;
  }

  /** Byte length of `text` in the input's encoding. */
  private bytes(text: string): number {
    return this.o.encoding === 'latin1' ? text.length : Buffer.byteLength(text, 'utf8');
  }

  push(text: string, out: X12Event[], final: boolean): void {
    if (this.pos > 0) this.consumed += this.bytes(this.buf.slice(0, this.pos));
    this.buf = this.pos < this.buf.length ? this.buf.slice(this.pos) + text : text;
    this.pos = 0;
    const buf = this.buf;
    const len = buf.length;
    let pos = 0;
    for (;;) {
      if (this.trailing) {
        pos = this.afterLastIea(buf, pos, final, out);
        break;
      }
      const between = this.delimiters === null || this.reader.outside;
      // White space and line breaks after a terminator are not part of the next segment (senders
      // indent segments, or write "~ " and a newline); between interchanges a byte order mark, NUL
      // padding and a DOS end-of-file (^Z) are tolerated too.
      while (pos < len) {
        const c = buf.charCodeAt(pos);
        if (c === 10 || c === 13 || c === 32 || c === 9 || (between && (c === 0xfeff || c === 0 || c === 26)))
          pos++;
        else break;
      }
      if (pos >= len) break;
      if (between && this.delimiters !== null && !buf.startsWith('ISA', pos)) {
        if (len - pos < 3 && !final) break;
        // Text after an IEA that is not another ISA: a footer some translators write. Read on
        // (an ISA further on makes it garbage between interchanges); at the end it is a warning.
        this.trailing = {
          offset: this.consumed + this.bytes(buf.slice(0, pos)),
          segment: this.ordinal + 1,
          text: '',
          carried: 0,
        };
        continue;
      }
      if (between || buf.charCodeAt(pos) === 73 /* I */) {
        if (len - pos < 4 && !final) break;
        // Between interchanges anything starting with ISA is read as one, so a bad separator gets
        // its precise message; inside one, ISA followed by a letter would be some other segment.
        if (buf.startsWith('ISA', pos) && len - pos >= 4 && (between || !isAlnum(buf.charCodeAt(pos + 3)))) {
          if (len - pos < ISA_LENGTH && !final) break;
          this.ordinal++;
          const parsed = parseIsa(buf.slice(pos, pos + ISA_LENGTH), this.o.file, this.ordinal);
          pos += ISA_LENGTH;
          this.delimiters = parsed.delimiters;
          this.sinceIsa = 0;
          this.reader.isa(parsed, { tag: 'ISA', elements: parsed.elements, ordinal: this.ordinal }, out);
          continue;
        }
        if (this.delimiters === null) {
          // Wait for a little context so the message is the same however the input is chunked.
          if (len - pos < 30 && !final) break;
          throw new X12Error(
            problem({
              code: 'ISA_MISSING',
              level: 'interchange',
              file: this.o.file,
              segment: 1,
              text: `expected the file to start with an ISA segment, found ${JSON.stringify(buf.slice(pos, pos + 30))}; this is not an X12 interchange`,
              ack: { ta1: '024' },
            }),
          );
        }
      }
      const d = this.delimiters!;
      const end = buf.indexOf(d.segment, pos);
      if (end < 0 || end - pos > this.o.maxSegmentLength) {
        if (len - pos > this.o.maxSegmentLength) {
          if (this.sinceIsa === 0) this.terminatorNotFound(buf.slice(pos, pos + this.o.maxSegmentLength));
          this.tooLong(buf, pos, d);
        }
        if (final) {
          if (this.sinceIsa === 0 && buf.slice(pos).trim() !== '') this.terminatorNotFound(buf.slice(pos));
          const fragment = buf.slice(pos).replace(/\s+$/, '');
          pos = len;
          if (fragment !== '') this.finalFragment(fragment, out);
        }
        break;
      }
      this.emit(buf.slice(pos, end), out);
      pos = end + 1;
    }
    this.pos = pos;
  }

  /**
   * After the last IEA: looks for another ISA (then the text was garbage between interchanges, as
   * fatal as before); at the end of the input the text is a warning naming its byte offset. Keeps
   * the last two characters, so an ISA split between chunks is still found. Returns the new position.
   */
  private afterLastIea(buf: string, pos: number, final: boolean, events: X12Event[]): number {
    const t = this.trailing!;
    if (t.text.length < 40) t.text += buf.slice(pos + t.carried, pos + t.carried + 40 - t.text.length);
    const element = this.delimiters!.element;
    for (let at = buf.indexOf('ISA', pos); at >= 0; at = buf.indexOf('ISA', at + 1)) {
      if (at + 3 >= buf.length) break;
      if (buf[at + 3] !== element) continue;
      throw new X12Error(
        problem({
          code: 'OUTSIDE_INTERCHANGE',
          level: 'interchange',
          file: this.o.file,
          segment: t.segment,
          text: `expected an ISA segment or the end of the file after the IEA, found ${JSON.stringify(t.text)} at byte offset ${t.offset}, and then another ISA`,
          ack: { ta1: '024' },
        }),
      );
    }
    if (!final) {
      const keep = Math.max(pos, buf.length - 3);
      t.carried = buf.length - keep;
      return keep;
    }
    const out = problem({
      code: 'TEXT_AFTER_LAST_IEA',
      level: 'interchange',
      file: this.o.file,
      segment: null,
      text: `text after the last IEA, from byte offset ${t.offset}: ${JSON.stringify(t.text)}; ignored (the interchanges before it are read)`,
      ack: {},
    });
    events.push({ kind: 'warning', problem: out });
    return buf.length;
  }

  /** The ISA's segment terminator never appears after it: say so, and what the segments seem to end with. */
  private terminatorNotFound(after: string): never {
    const d = this.delimiters!;
    const seems = after.includes('\r\n')
      ? '; the segments seem to end with CR LF line breaks instead'
      : after.includes('\n')
        ? '; the segments seem to end with line breaks (LF) instead'
        : '';
    throw new X12Error(
      problem({
        code: 'TERMINATOR_NOT_FOUND',
        level: 'interchange',
        file: this.o.file,
        segment: this.ordinal,
        segmentId: 'ISA',
        text: `the ISA declares the segment terminator ${showChar(d.segment)} (its character 106), but ${showChar(d.segment)} never appears after the ISA${seems}; expected every segment to end with ${showChar(d.segment)}`,
        ack: { ta1: '004' },
      }),
    );
  }

  /** A last segment without terminator: an IEA missing only its terminator is accepted. */
  private finalFragment(fragment: string, out: X12Event[]): void {
    const d = this.delimiters!;
    if (fragment.startsWith(`IEA${d.element}`)) {
      this.emit(fragment, out);
      return;
    }
    this.ordinal++;
    this.reader.truncated(fragment, this.ordinal);
  }

  private emit(text: string, out: X12Event[]): void {
    const elements = text.split(this.delimiters!.element);
    this.ordinal++;
    const max = this.o.maxElementLength;
    // No element can be longer than the whole segment: skip the scan for the common case.
    for (let i = 1; text.length > max && i < elements.length; i++) {
      if (elements[i]!.length > max) {
        throw new X12Error(
          problem({
            code: 'ELEMENT_TOO_LONG',
            level: 'element',
            file: this.o.file,
            segment: this.ordinal,
            segmentId: elements[0]!.slice(0, 3),
            element: i,
            text: `element ${i} is ${elements[i]!.length} characters; at most ${max} are accepted (maxElementLength)`,
            ack: { ak4: '5' },
          }),
        );
      }
    }
    const segment: Segment = { tag: elements[0]!, elements, ordinal: this.ordinal };
    this.sinceIsa++;
    this.reader.segment(segment, out);
  }

  private tooLong(buf: string, pos: number, d: Delimiters): never {
    throw new X12Error(
      problem({
        code: 'SEGMENT_TOO_LONG',
        level: 'segment',
        file: this.o.file,
        segment: this.ordinal + 1,
        text:
          `no segment terminator ${showChar(d.segment)} within ${this.o.maxSegmentLength} characters of ` +
          `${JSON.stringify(buf.slice(pos, pos + 20))}; expected segments of at most ${this.o.maxSegmentLength} characters (maxSegmentLength)`,
        ack: { ta1: '024' },
      }),
    );
  }
}

/**
 * A UTF-8 decoder that refuses bytes which are not UTF-8 rather than turning them into U+FFFD: an
 * element's value would otherwise change silently. (NUL padding stays the tokenizer's business.)
 */
function strictUtf8(file: string): { write(b: Buffer): string; end(): string } {
  const d = new StrictDecoder('utf-8');
  const check = (text: string): string => {
    const bad = d.takeInvalid();
    if (bad === null) return text;
    // The segment is not known at the decoding point; the byte offset is exact.
    throw new X12Error({
      code: 'INVALID_ENCODING',
      level: 'interchange',
      file,
      segment: null,
      message: `${file}, byte offset ${bad.byte}: invalid utf8 byte sequence ${escapeBytes(bad.raw)}; expected UTF-8 text (declare encoding latin1 for 8-bit files)`,
      ack: { ta1: '024' },
    });
  };
  return { write: (b) => check(d.decode(b)), end: () => check(d.end()) };
}

/**
 * Runs one tokenizer step and yields its events. When the step throws, the events it produced
 * before (whole interchanges read in the same chunk) are yielded first: what a caller sees before
 * the error does not depend on where the chunks happen to break.
 */
function* pushed(step: () => void, out: X12Event[]): Generator<X12Event, void, undefined> {
  try {
    step();
  } catch (err) {
    yield* out;
    out.length = 0;
    throw err;
  }
  yield* out;
  out.length = 0;
}

/**
 * Reads X12 from `input` (a Readable of bytes, or any iterable of Buffers or strings) and
 * yields one envelope event at a time: `isa`, `gs`, one `transaction` per ST..SE, `ge`, `iea`.
 * Structural problems are attached to the events (see {@link EnvelopeReader}); a bad ISA, text
 * outside any interchange, or an exceeded cap throws an {@link X12Error}.
 *
 * @example
 * for await (const ev of splitX12(createReadStream(path), { file: 'po.edi' })) {
 *   if (ev.kind === 'transaction') handle(ev.set);
 * }
 */
export async function* splitX12(
  input: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>,
  options: SplitOptions = {},
): AsyncGenerator<X12Event, void, undefined> {
  const o: Required<SplitOptions> = { ...SPLIT_DEFAULTS, ...options };
  const reader = new EnvelopeReader({ file: o.file, maxSegmentsPerSet: o.maxSegmentsPerSet });
  const tokenizer = new Tokenizer(o, reader);
  const decoder = o.encoding === 'utf8' ? strictUtf8(o.file) : new StringDecoder(o.encoding);
  let bytes = 0;
  const out: X12Event[] = [];
  for await (const chunk of input) {
    let text: string;
    if (typeof chunk === 'string') {
      bytes += Buffer.byteLength(chunk, o.encoding);
      text = chunk;
    } else {
      bytes += chunk.length;
      text = decoder.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    }
    if (bytes > o.maxFileBytes) {
      throw new X12Error(
        problem({
          code: 'FILE_TOO_LARGE',
          level: 'interchange',
          file: o.file,
          segment: null,
          text: `the file is larger than ${o.maxFileBytes} bytes (maxFileBytes); split it or raise the cap`,
          ack: {},
        }),
      );
    }
    if (text === '') continue;
    yield* pushed(() => tokenizer.push(text, out, false), out);
  }
  yield* pushed(() => tokenizer.push(decoder.end(), out, true), out);
  if (reader.interchanges === 0) {
    throw new X12Error(
      problem({
        code: 'EMPTY',
        level: 'interchange',
        file: o.file,
        segment: null,
        text: 'the file has no ISA segment (it is empty or white space only)',
        ack: { ta1: '023' },
      }),
    );
  }
  reader.end(out);
  yield* out;
}
