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
  record(fields: Field[], line: number): void;
  error(line: number, reason: string, text: string): void;
}

const LF = 10;
const CR = 13;

export class CsvTokenizer {
  private carry = '';
  private line = 1;
  private readonly d: number;
  private readonly q: number;
  private readonly qs: string;
  private readonly max: number;

  constructor(opts: TokenizerOptions) {
    if (opts.delimiter.length !== 1 || opts.quote.length !== 1) {
      throw new Error('delimiter and quote must be one character each');
    }
    this.d = opts.delimiter.charCodeAt(0);
    this.q = opts.quote.charCodeAt(0);
    this.qs = opts.quote;
    this.max = opts.maxRecordChars;
  }

  /** Feeds a chunk; complete records go to `sink`, the unfinished tail is kept for the next call. */
  push(chunk: string, sink: TokenizerSink): void {
    const s = this.carry.length > 0 ? this.carry + chunk : chunk;
    const used = this.scan(s, false, sink);
    this.carry = used < s.length ? s.slice(used) : '';
    if (this.carry.length > this.max) {
      // A record this long is a runaway quote: report it and resynchronise after its first line.
      const nl = this.carry.indexOf('\n');
      const cut = nl < 0 ? this.carry.length : nl + 1;
      sink.error(this.line, `record longer than ${this.max} characters (unclosed quote?)`, this.carry.slice(0, 200));
      this.line += 1;
      const rest = this.carry.slice(cut);
      this.carry = '';
      if (rest.length > 0) this.push(rest, sink);
    }
  }

  /** Flushes the last record at end of input. */
  end(sink: TokenizerSink): void {
    if (this.carry.length > 0) {
      const s = this.carry;
      this.carry = '';
      this.scan(s, true, sink);
    }
  }

  /**
   * Scans complete records from `s`; returns the index where the first unfinished record starts
   * (s.length when everything was consumed).
   */
  private scan(s: string, final: boolean, sink: TokenizerSink): number {
    const len = s.length;
    const D = this.d;
    const Q = this.q;
    let pos = 0;
    while (pos < len) {
      const start = pos;
      const startLine = this.line;
      let extraLines = 0;
      const fields: Field[] = [];
      let bad: string | null = null;
      // One record.
      for (;;) {
        if (pos >= len) {
          if (!final) return start;
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
            if (j + 1 >= len && !final) return start; // cannot tell "" from " yet
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
            if (!final) return start;
            const shown = s.slice(start, Math.min(len, start + 200));
            sink.error(startLine, `unclosed quote: a field opened with ${this.qs} is never closed`, shown);
            this.line += countLines(s, start, len);
            return len;
          }
          extraLines += countLines(value, 0, value.length);
          fields.push(value);
          pos = closed + 1;
          if (pos >= len) {
            if (!final) return start;
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
        let p = pos;
        let ch = 0;
        while (p < len) {
          ch = s.charCodeAt(p);
          if (ch === D || ch === LF || ch === CR) break;
          p++;
        }
        if (p >= len) {
          if (!final) return start;
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
        // Skip the rest of the physical line and report the whole record.
        const nl = s.indexOf('\n', pos);
        if (nl < 0 && !final) return start;
        const endAt = nl < 0 ? len : nl + 1;
        sink.error(startLine, bad, s.slice(start, Math.min(endAt, start + 200)).replace(/\r?\n$/, ''));
        this.line += 1 + extraLines;
        pos = endAt;
        continue;
      }
      // Record terminator: LF, CR LF, or a lone CR.
      if (pos < len) {
        const t = s.charCodeAt(pos);
        if (t === CR) {
          if (pos + 1 >= len && !final) return start;
          pos += s.charCodeAt(pos + 1) === LF ? 2 : 1;
        } else if (t === LF) {
          pos += 1;
        }
      }
      this.line += 1 + extraLines;
      // A blank line is no record.
      if (fields.length === 1 && fields[0] === null) continue;
      sink.record(fields, startLine);
    }
    return len;
  }
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
