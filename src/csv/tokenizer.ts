/**
 * A streaming RFC 4180 tokenizer tuned for loading: it turns decoded text chunks into records of
 * fields, counting physical lines so that every record and every structural error carries the
 * line it started on.
 *
 *   text chunk ──► [carry-over + chunk] ──► records (fields[], line) ──► caller's batch
 *                        ▲                          │
 *                        └── unfinished record ◄────┘
 *
 * Why not csv-parse: it costs 5.6–8.3 µs a row here, the largest share of a load; this scanner
 * keeps to indexOf and charCodeAt over one string and is tested against csv-parse as an oracle
 * (test/csv-tokenizer.test.ts). Semantics follow PostgreSQL's CSV COPY: an unquoted empty field is
 * NULL, a quoted empty field ("") is the empty string, a quote inside an unquoted field is literal.
 */

/** A field: text, or null for an unquoted empty field. */
export type Field = string | null;

export interface TokenizerOptions {
  /** One character. */
  delimiter: string;
  /** One character; a quote inside a quoted field is written twice. */
  quote: string;
  /** Longest record accepted, in characters; a longer one (a runaway quote) is a structural error. */
  maxRecordChars: number;
}

/** Receives what the tokenizer finds, in input order. */
export interface TokenizerSink {
  /**
   * `start`, `end`: offsets of the record's first character and of its end (its line break
   * excluded) in the whole text fed so far; {@link CsvTokenizer.text} holds them during the call.
   * `plain`: PostgreSQL's CSV COPY reads the record's text as the same fields (no quote character
   * stands inside an unquoted field, where COPY would open a quoted part).
   */
  record(fields: Field[], line: number, start: number, end: number, plain: boolean): void;
  error(line: number, reason: string, text: string): void;
}

const LF = 10;
const CR = 13;

export class CsvTokenizer {
  private carry = '';
  private line = 1;
  /** Characters of the unfinished record seen so far, set when `scan` stops before its end. */
  private pending = 0;
  /** After a record longer than the limit: input is dropped through the end of its first line. */
  private skipping = false;
  /** Characters fed so far, and the offset in the whole text of the string being scanned. */
  private fed = 0;
  private base = 0;
  /** The string being scanned, and the offset of its first character in the whole text. */
  private scanned = '';
  private readonly d: number;
  private readonly q: number;
  private readonly qs: string;
  private readonly ds: string;
  private readonly max: number;

  constructor(opts: TokenizerOptions) {
    if (opts.delimiter.length !== 1 || opts.quote.length !== 1) {
      throw new Error('delimiter and quote must be one character each');
    }
    this.d = opts.delimiter.charCodeAt(0);
    this.q = opts.quote.charCodeAt(0);
    this.qs = opts.quote;
    this.ds = opts.delimiter;
    this.max = opts.maxRecordChars;
  }

  /** Feeds a chunk; complete records go to `sink`, the unfinished tail is kept for the next call. */
  push(chunk: string, sink: TokenizerSink): void {
    // join, not +: it makes one flat string, which charCodeAt reads faster than a concatenation.
    const s = this.carry.length > 0 ? [this.carry, chunk].join('') : chunk;
    this.scanned = s;
    this.base = this.fed - this.carry.length;
    this.fed += chunk.length;
    this.carry = '';
    let pos = 0;
    for (;;) {
      pos = this.scan(s, pos, false, sink);
      if (pos >= s.length) return;
      if (this.skipping || this.pending <= this.max) {
        this.carry = s.slice(pos);
        return;
      }
      // The unfinished record is already too long (a runaway quote): report it now rather than
      // buffer without bound, whatever the chunk sizes; `scan` then skips its first line.
      this.tooLong(s, pos, sink);
    }
  }

  /**
   * The text records reported since the last `push` or `end` came from, and the offset of its first
   * character in the whole text: a record is `text.slice(start - offset, end - offset)`.
   */
  get text(): { text: string; offset: number } {
    return { text: this.scanned, offset: this.base };
  }

  /** Flushes the last record at end of input. */
  end(sink: TokenizerSink): void {
    if (this.carry.length > 0) {
      const s = this.carry;
      this.scanned = s;
      this.base = this.fed - s.length;
      this.carry = '';
      this.scan(s, 0, true, sink);
    }
  }

  /**
   * Scans complete records from `s`, starting at `from`; returns the index where the unconsumed
   * input starts (s.length when everything was consumed).
   */
  private scan(s: string, from: number, final: boolean, sink: TokenizerSink): number {
    const len = s.length;
    const D = this.d;
    const Q = this.q;
    const max = this.max;
    let pos = from;
    // Where the next delimiter, LF, CR and quote stand at or after `pos` (len: none); -1: not searched.
    let nd = -1;
    let nl = -1;
    let ncr = -1;
    let nq = -1;
    while (pos < len) {
      if (this.skipping) {
        const brk = lineBreakAt(s, pos);
        if (brk < 0) return len;
        // Keep a CR that ends the input: an LF in the next chunk belongs to the same line end.
        if (brk + 1 >= len && !final && s.charCodeAt(brk) === CR) return brk;
        this.skipping = false;
        pos = pastBreak(s, brk);
        continue;
      }
      const start = pos;
      const startLine = this.line;
      let extraLines = 0;
      const fields: Field[] = [];
      let bad: string | null = null;
      let plain = true;
      // One record.
      for (;;) {
        if (pos >= len) {
          if (!final) return this.more(start, len);
          fields.push(null);
          break;
        }
        const c = s.charCodeAt(pos);
        if (c === Q) {
          let p = pos + 1;
          let value = '';
          let closed = -1;
          for (;;) {
            const j = s.indexOf(this.qs, p);
            if (j < 0) break;
            if (j + 1 >= len && !final) return this.more(start, len); // cannot tell "" from " yet
            if (s.charCodeAt(j + 1) === Q) {
              value += s.slice(p, j + 1);
              p = j + 2;
              continue;
            }
            value += s.slice(p, j);
            closed = j;
            break;
          }
          if (closed < 0) {
            if (!final) return this.more(start, len);
            const shown = s.slice(start, Math.min(len, start + 200));
            sink.error(startLine, `unclosed quote: a field opened with ${this.qs} is never closed`, shown);
            this.line += countLines(s, start, len);
            return len;
          }
          extraLines += countLines(value, 0, value.length);
          fields.push(value);
          pos = closed + 1;
          if (pos >= len) {
            if (!final) return this.more(start, len);
            break;
          }
          const n = s.charCodeAt(pos);
          if (n === D) {
            pos++;
            continue;
          }
          if (n === LF || n === CR) break;
          bad = `unexpected character '${s[pos]}' after a closing quote (a quote inside a quoted field must be doubled)`;
          break;
        }
        // An unquoted field ends at the next delimiter, LF or CR: native searches, each run again
        // only once the scan has passed what it found (about once per field, not per character).
        if (nd < pos) nd = nextIndex(s, this.ds, pos);
        if (nl < pos) nl = nextIndex(s, '\n', pos);
        if (ncr < pos) ncr = nextIndex(s, '\r', pos);
        if (nq < pos) nq = nextIndex(s, this.qs, pos);
        let p = nd < nl ? nd : nl;
        if (ncr < p) p = ncr;
        if (nq < p) plain = false;
        const ch = p < len ? s.charCodeAt(p) : 0;
        if (p >= len) {
          if (!final) return this.more(start, len);
          fields.push(p === pos ? null : s.slice(pos, p));
          pos = p;
          break;
        }
        fields.push(p === pos ? null : s.slice(pos, p));
        pos = p;
        if (ch === D) {
          pos++;
          continue;
        }
        break;
      }
      if (bad !== null) {
        // The record runs to the end of its physical line (LF, CR LF or a lone CR): report it whole.
        const brk = lineBreakAt(s, pos);
        const endAt = brk < 0 ? len : brk;
        if (endAt - start > max) {
          this.tooLong(s, start, sink);
          pos = start;
          nd = nl = ncr = nq = -1; // the scan goes back: what was found ahead may not be the next
          continue;
        }
        if (!final && (brk < 0 || (brk + 1 >= len && s.charCodeAt(brk) === CR)))
          return this.more(start, endAt);
        sink.error(startLine, bad, s.slice(start, Math.min(endAt, start + 200)));
        this.line += 1 + extraLines;
        pos = brk < 0 ? len : pastBreak(s, brk);
        continue;
      }
      if (pos - start > max) {
        this.tooLong(s, start, sink);
        pos = start;
        nd = nl = ncr = nq = -1;
        continue;
      }
      const end = pos;
      // Record terminator: LF, CR LF, or a lone CR.
      if (pos < len) {
        const t = s.charCodeAt(pos);
        if (t === CR) {
          if (pos + 1 >= len && !final) return this.more(start, pos);
          pos += s.charCodeAt(pos + 1) === LF ? 2 : 1;
        } else if (t === LF) {
          pos += 1;
        }
      }
      this.line += 1 + extraLines;
      // A blank line is no record.
      if (fields.length === 1 && fields[0] === null) continue;
      sink.record(fields, startLine, this.base + start, this.base + end, plain);
    }
    return len;
  }

  /** `scan` stops at an unfinished record starting at `start` whose text is known up to `known`. */
  private more(start: number, known: number): number {
    this.pending = known - start;
    return start;
  }

  /**
   * Reports a record longer than the limit, starting at `start` in `s`, and resynchronises: input
   * is dropped through the end of the record's first physical line, and scanning resumes there.
   */
  private tooLong(s: string, start: number, sink: TokenizerSink): void {
    // The text shown is the same whether the record arrived in one chunk or many.
    const shown = s.slice(start, start + Math.min(200, this.max));
    sink.error(this.line, `record longer than ${this.max} characters (unclosed quote?)`, shown);
    this.line += 1;
    this.skipping = true;
  }
}

/** Index of the first `c` at or after `from`, or the length of `s`. */
function nextIndex(s: string, c: string, from: number): number {
  const i = s.indexOf(c, from);
  return i < 0 ? s.length : i;
}

/** Index of the first CR or LF at or after `from`, or -1. */
function lineBreakAt(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === LF || c === CR) return i;
  }
  return -1;
}

/** Index just past the line break at `i` (CR LF counts as one). */
function pastBreak(s: string, i: number): number {
  return s.charCodeAt(i) === CR && s.charCodeAt(i + 1) === LF ? i + 2 : i + 1;
}

function countLines(s: string, from: number, to: number): number {
  let n = 0;
  let i = s.indexOf('\n', from);
  while (i >= 0 && i < to) {
    n++;
    i = s.indexOf('\n', i + 1);
  }
  return n;
}
