/**
 * Strict text decoding for the readers: bytes in a declared encoding → text, remembering where every
 * suspicious character of the text came from, so that a reader can reject the one row that holds it
 * (naming the byte offset and the raw bytes) instead of loading U+FFFD or failing the whole file.
 *
 *   chunk ──► [tail of the previous chunk + chunk] ──► fast path: valid, no NUL, no U+FFFD ──► text
 *                                                 └──► slow path: text + marks (char offset → bytes)
 *
 * A mark is kept for every U+FFFD and every NUL in the decoded text — invalid sequences (decoded as
 * U+FFFD, as the WHATWG decoder does: one per maximal invalid subpart), NUL bytes and genuine U+FFFD
 * characters alike — so the n-th such character of a record is the n-th mark at or after the
 * record's start. The common case (valid text) costs a validation and a byte search per chunk,
 * both native; nothing per row.
 */
import { isAscii, isUtf8 } from 'node:buffer';

/** Encodings the readers declare. `latin1` is windows-1252, as in every browser and in TextDecoder. */
export type TextEncoding = 'utf-8' | 'latin1' | 'windows-1252' | 'utf-16le';

/** What to do with a byte sequence that is not valid in the declared encoding. */
export type OnInvalidEncoding = 'reject' | 'replace';

/** Where one U+FFFD or NUL of the decoded text came from. */
export interface DecodeMark {
  /** Offset in the decoded text, in UTF-16 units from the start of the stream. */
  at: number;
  /** Offset of the bytes in the file. */
  byte: number;
  /** `invalid`: bytes not valid in the encoding; `nul`: a NUL; `fffd`: a genuine U+FFFD. */
  kind: 'invalid' | 'nul' | 'fffd';
  raw: Uint8Array;
}

/** A character of a field that must not be loaded. */
export interface DecodeProblem {
  /** Index of the field in the record. */
  field: number;
  /** The field's text with the offending bytes written as `\xHH` escapes. */
  shown: string;
  reason: string;
}

/** Decodes bytes already known to be valid UTF-8; a byte-order mark is dropped by `run`, not here. */
const UTF8 = new TextDecoder('utf-8', { ignoreBOM: true });
const FFFD_UTF8 = Buffer.from([0xef, 0xbf, 0xbd]);
const SUSPECT = /[\0\uFFFD]/g;
const SUSPECT_UTF16 = /[\0\uFFFD]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** `\xE9\x80` for the bytes E9 80. */
export function escapeBytes(raw: Uint8Array): string {
  let s = '';
  for (const b of raw) s += `\\x${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return s;
}

/** Decodes a byte stream strictly; see the module comment. */
export class StrictDecoder {
  private marks: DecodeMark[] = [];
  private head = 0;
  /** UTF-16 units of text returned so far. */
  private chars = 0;
  /** File offset of the first byte not yet decoded (the start of `tail`). */
  private bytes = 0;
  private tail: Buffer | null = null;
  private started = false;

  constructor(
    readonly encoding: TextEncoding,
    readonly onInvalid: OnInvalidEncoding = 'reject',
  ) {}

  /** True while marks wait to be matched to records: only then do records need a look. */
  get pending(): boolean {
    return this.head < this.marks.length;
  }

  /**
   * The first byte sequence not valid in the encoding decoded so far, for readers that fail the
   * whole input on one (rather than matching marks to records); the marks are then dropped.
   */
  takeInvalid(): DecodeMark | null {
    const bad = this.marks.find((m, i) => i >= this.head && m.kind === 'invalid') ?? null;
    this.marks = [];
    this.head = 0;
    return bad;
  }

  /** Decodes a chunk; an unfinished character at its end waits for the next chunk. */
  decode(chunk: Buffer): string {
    const tail = this.tail;
    if (tail === null) return this.run(chunk, false);
    if (this.started && this.encoding === 'utf-8') {
      // Finish the character the last chunk cut from the few bytes it needs, rather than copying
      // the whole chunk behind the tail (a copy of 256 KB for 1–3 bytes: 6 % of a multi-byte read).
      const lead = tail[0]!;
      const need = (lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2) - tail.length;
      if (need > 0 && chunk.length > need) {
        this.tail = null;
        const head = this.run(Buffer.concat([tail, chunk.subarray(0, need)]), false);
        return head + this.decode(chunk.subarray(need));
      }
    }
    return this.run(Buffer.concat([tail, chunk]), false);
  }

  /** Decodes what is left at the end of the input (an unfinished character is invalid). */
  end(): string {
    const rest = this.tail ?? Buffer.alloc(0);
    this.tail = null;
    return this.run(rest, true);
  }

  /**
   * Matches the marks of one record (starting at text offset `start`) to its fields; returns the
   * first field that must not be loaded, or null. Marks before `start` belonged to input that formed
   * no record (a structural error, skipped lines) and are dropped.
   */
  check(fields: readonly (string | null)[], start: number): DecodeProblem | null {
    while (this.head < this.marks.length && this.marks[this.head]!.at < start) this.head++;
    let problem: DecodeProblem | null = null;
    for (let f = 0; f < fields.length && this.pending; f++) {
      const text = fields[f];
      if (text === null || text === undefined) continue;
      SUSPECT.lastIndex = 0;
      let shown = '';
      let from = 0;
      let bad: DecodeMark | null = null;
      for (let m = SUSPECT.exec(text); m !== null && this.pending; m = SUSPECT.exec(text)) {
        const mark = this.marks[this.head++]!;
        if (mark.kind === 'fffd' || (mark.kind === 'invalid' && this.onInvalid === 'replace')) continue;
        bad ??= mark;
        shown += text.slice(from, m.index) + escapeBytes(mark.raw);
        from = m.index + 1;
      }
      if (bad !== null && problem === null) {
        const where = `at byte offset ${bad.byte}`;
        problem = {
          field: f,
          shown: (shown + text.slice(from)).slice(0, 200),
          reason:
            bad.kind === 'nul'
              ? `a NUL byte (\\x00) ${where}; text cannot hold NUL`
              : `invalid ${this.encoding} byte sequence ${escapeBytes(bad.raw)} ${where}`,
        };
      }
    }
    if (this.head > 4096 && this.head * 2 > this.marks.length) {
      this.marks = this.marks.slice(this.head);
      this.head = 0;
    }
    return problem;
  }

  private run(buf: Buffer, final: boolean): string {
    let start = 0;
    if (!this.started) {
      // Too short to tell whether it starts with a byte-order mark: wait for more.
      if (buf.length < 3 && !final) {
        this.tail = buf;
        return '';
      }
      this.started = true;
      start = bomLength(buf, this.encoding);
    }
    const cut = final ? buf.length : this.completeUpTo(buf);
    this.tail = cut < buf.length ? Buffer.from(buf.subarray(cut)) : null;
    const base = this.bytes;
    this.bytes += cut;
    let text: string;
    if (this.encoding === 'utf-8') text = this.utf8(buf, start, cut, base);
    else if (this.encoding === 'utf-16le') text = this.utf16(buf, start, cut, base);
    else text = this.singleByte(buf, start, cut, base);
    this.chars += text.length;
    return text;
  }

  /** End of the last complete character of `buf` (a chunk that is not the last). */
  private completeUpTo(buf: Buffer): number {
    const len = buf.length;
    if (this.encoding === 'utf-16le') {
      let cut = len & ~1;
      // A high surrogate at the end waits for its pair.
      if (cut >= 2 && (buf[cut - 1]! & 0xfc) === 0xd8) cut -= 2;
      return cut;
    }
    if (this.encoding !== 'utf-8') return len;
    for (let i = len - 1; i >= 0 && i >= len - 3; i--) {
      const b = buf[i]!;
      if (b < 0x80) return len;
      if (b >= 0xc0) return i + (b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2) > len ? i : len;
    }
    return len;
  }

  private mark(at: number, byte: number, kind: DecodeMark['kind'], raw: Uint8Array): void {
    this.marks.push({ at, byte, kind, raw: Uint8Array.from(raw) });
  }

  private utf8(buf: Buffer, start: number, cut: number, base: number): string {
    const body = buf.subarray(start, cut);
    if (body.indexOf(0) < 0) {
      // ASCII needs no decoding at all; other valid text goes to TextDecoder, which is faster than
      // Buffer#toString on multi-byte text. `body` ends on a whole character, so the shared decoder
      // keeps nothing between calls.
      if (isAscii(body)) return body.toString('latin1');
      if (isUtf8(body) && body.indexOf(FFFD_UTF8) < 0) return UTF8.decode(body, { stream: true });
    }
    let out = '';
    let run = start;
    let i = start;
    const flush = (to: number): void => {
      if (to > run) out += buf.toString('utf8', run, to);
    };
    while (i < cut) {
      const b = buf[i]!;
      if (b > 0 && b < 0x80) {
        i++;
        continue;
      }
      const n = b === 0 ? 1 : utf8Sequence(buf, i, cut);
      const genuine = n === 3 && b === 0xef && buf[i + 1] === 0xbf && buf[i + 2] === 0xbd;
      if (n > 0 && b !== 0 && !genuine) {
        i += n;
        continue;
      }
      flush(i);
      const len = Math.abs(n);
      this.mark(
        this.chars + out.length,
        base + i,
        b === 0 ? 'nul' : genuine ? 'fffd' : 'invalid',
        buf.subarray(i, i + len),
      );
      out += b === 0 ? '\0' : '\uFFFD';
      i += len;
      run = i;
    }
    flush(cut);
    return out;
  }

  private utf16(buf: Buffer, start: number, cut: number, base: number): string {
    const even = start + ((cut - start) & ~1);
    let text = buf.toString('utf16le', start, even);
    if (SUSPECT_UTF16.test(text) || even < cut) {
      // Lone surrogates become U+FFFD: one unit for one unit, so offsets stay put.
      const units = text.split('');
      for (let k = 0; k < units.length; k++) {
        const c = units[k]!.charCodeAt(0);
        const at = this.chars + k;
        const byte = base + start + 2 * k;
        const raw = buf.subarray(start + 2 * k, start + 2 * k + 2);
        if (c === 0) this.mark(at, byte, 'nul', raw);
        else if (c === 0xfffd) this.mark(at, byte, 'fffd', raw);
        else if (c >= 0xd800 && c <= 0xdbff) {
          const next = text.charCodeAt(k + 1);
          if (next >= 0xdc00 && next <= 0xdfff) k++;
          else {
            this.mark(at, byte, 'invalid', raw);
            units[k] = '\uFFFD';
          }
        } else if (c >= 0xdc00 && c <= 0xdfff) {
          this.mark(at, byte, 'invalid', raw);
          units[k] = '\uFFFD';
        }
      }
      text = units.join('');
      if (even < cut) {
        this.mark(this.chars + text.length, base + even, 'invalid', buf.subarray(even, cut));
        text += '\uFFFD';
      }
    }
    return text;
  }

  private singleByte(buf: Buffer, start: number, cut: number, base: number): string {
    const decoder = windows1252;
    let nul = buf.indexOf(0, start);
    if (nul < 0 || nul >= cut) return decoder.decode(buf.subarray(start, cut));
    let out = '';
    let run = start;
    while (nul >= 0 && nul < cut) {
      out += decoder.decode(buf.subarray(run, nul));
      this.mark(this.chars + out.length, base + nul, 'nul', buf.subarray(nul, nul + 1));
      out += '\0';
      run = nul + 1;
      nul = buf.indexOf(0, run);
    }
    return out + decoder.decode(buf.subarray(run, cut));
  }
}

/**
 * windows-1252 (which `latin1` means in the WHATWG encoding standard): Latin-1 except for 0x80–0x9F.
 * Node 20's TextDecoder decodes those bytes as C1 controls (its Latin-1 fast path), so € (0x80)
 * would load as U+0080; the table restores them.
 */
const CP1252_HIGH =
  '\u20AC\u0081\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\u008D\u017D\u008F' +
  '\u0090\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\u009D\u017E\u0178';
const C1 = /[\x80-\x9F]/g;
const HAS_C1 = /[\x80-\x9F]/;
const windows1252 = {
  decode(bytes: Buffer): string {
    const text = bytes.toString('latin1');
    return HAS_C1.test(text) ? text.replace(C1, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]!) : text;
  },
};

function bomLength(buf: Buffer, encoding: TextEncoding): number {
  if (encoding === 'utf-8' && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return 3;
  if (encoding === 'utf-16le' && buf[0] === 0xff && buf[1] === 0xfe) return 2;
  return 0;
}

/**
 * Length of the valid UTF-8 sequence at `i` (before `end`), or minus the length of its maximal
 * invalid subpart (the WHATWG decoder's unit for one U+FFFD).
 */
function utf8Sequence(buf: Buffer, i: number, end: number): number {
  const b = buf[i]!;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) need = 1;
  else if (b >= 0xe0 && b <= 0xef) {
    need = 2;
    if (b === 0xe0) lo = 0xa0;
    else if (b === 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 3;
    if (b === 0xf0) lo = 0x90;
    else if (b === 0xf4) hi = 0x8f;
  } else return -1;
  for (let k = 1; k <= need; k++) {
    const c = i + k < end ? buf[i + k]! : -1;
    if (c < lo || c > hi) return -k;
    lo = 0x80;
    hi = 0xbf;
  }
  return need + 1;
}
