import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { CsvTokenizer, type Field, type TokenizerOptions } from '../src/csv/tokenizer.js';

/**
 * The tokenizer against csv-parse as an oracle, on generated documents fed in random chunk sizes,
 * then the edge cases and structural errors with their expected values written out.
 *
 *   generator ──text──► chunker ──► CsvTokenizer ──► records, lines ─┐
 *       │    └──text──────────────► csv-parse ──► records ───────────┼─► equal
 *       └──── records and start lines it wrote ──────────────────────┘
 */

type Event =
  | { kind: 'record'; fields: Field[]; line: number }
  | { kind: 'error'; line: number; reason: string; text: string };

const BIG = 1 << 20;

function tokenize(chunks: Iterable<string>, opts: Partial<TokenizerOptions> = {}): Event[] {
  const t = new CsvTokenizer({ delimiter: ',', quote: '"', maxRecordChars: BIG, ...opts });
  const events: Event[] = [];
  const sink = {
    // The tokenizer hands over its own array; copy it so later pushes cannot change what was seen.
    record: (fields: Field[], line: number) => events.push({ kind: 'record', fields: [...fields], line }),
    error: (line: number, reason: string, text: string) => events.push({ kind: 'error', line, reason, text }),
  };
  for (const chunk of chunks) t.push(chunk, sink);
  t.end(sink);
  return events;
}

const records = (events: Event[]): Field[][] =>
  events.flatMap((e) => (e.kind === 'record' ? [e.fields] : []));
const lines = (events: Event[]): number[] => events.flatMap((e) => (e.kind === 'record' ? [e.line] : []));
const errors = (events: Event[]) => events.filter((e) => e.kind === 'error');

/** mulberry32: small, fast and deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** Splits `s` at random UTF-16 offsets (a surrogate pair may be cut: the tokenizer only concatenates). */
function chunked(s: string, rng: Rng, maxSize: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    const n = rng.int(1, maxSize);
    out.push(s.slice(i, i + n));
    i += n;
  }
  return out;
}

/** The chunkings every document is fed in: whole, one character at a time, and random sizes. */
function chunkings(s: string, rng: Rng): [string, string[]][] {
  return [
    ['whole', [s]],
    ['1-char', [...s.split('')]],
    ['1..4', chunked(s, rng, 4)],
    ['1..64', chunked(s, rng, 64)],
    // An empty chunk now and then is legal (a decoder may return '').
    ['with empties', chunked(s, rng, 16).flatMap((c) => (rng.chance(0.2) ? ['', c] : [c]))],
  ];
}

interface Dialect {
  delimiter: string;
  quote: string;
  eol: 'lf' | 'crlf' | 'mixed' | 'cr';
}

interface Doc {
  text: string;
  /** What the generator wrote: null for an unquoted empty field, '' for a quoted one. */
  records: Field[][];
  /** The physical line each record starts on, counted while writing. */
  lines: number[];
}

/** Text pieces: ASCII, multi-byte and emoji (surrogate pairs, a modifier, a flag), and the specials. */
const ASCII = ['a', 'b', 'Z', 'q', '0', '7', ' ', '  ', '.', '-', '+'];
const UNICODE = ['é', 'ß', 'Ω', '中文', 'Ж', '€', '😀', '👍🏽', '🇩🇪'];
const SPECIAL = [',', ';', '|', '\t', '"', "'", '~', '\n', '\r\n'];
const PIECES = [...ASCII, ...UNICODE, ...SPECIAL];

function generate(rng: Rng, d: Dialect): Doc {
  const breaks = d.eol === 'cr' ? [] : ['\n', '\r\n'];
  // Unquoted text holds no delimiter, quote or line break; quoted text may hold anything.
  const plainPieces = PIECES.filter((p) => p !== d.delimiter && !p.includes(d.quote) && !p.includes('\n'));
  const quotedPieces = PIECES.filter((p) => !p.includes('\n') || breaks.includes(p));
  const eol = (): string =>
    d.eol === 'lf' ? '\n' : d.eol === 'crlf' ? '\r\n' : d.eol === 'cr' ? '\r' : rng.pick(['\n', '\r\n']);
  const text = (pieces: string[], max: number): string => {
    let s = '';
    for (let n = rng.int(1, max); n > 0; n--) s += rng.pick(pieces);
    return s;
  };
  let out = '';
  let line = 1;
  const records: Field[][] = [];
  const lineNumbers: number[] = [];
  const count = rng.int(0, 25);
  for (let r = 0; r < count; r++) {
    while (rng.chance(0.12)) {
      out += eol();
      line++;
    }
    const fields: Field[] = [];
    const raw: string[] = [];
    let extra = 0;
    for (let n = rng.int(1, 6); n > 0; n--) {
      const k = rng.next();
      if (k < 0.15) {
        fields.push(null);
        raw.push('');
      } else if (k < 0.25) {
        fields.push('');
        raw.push(d.quote + d.quote);
      } else if (k < 0.65) {
        // A quote inside an unquoted field is literal (never its first character).
        let v = text(plainPieces, 4);
        if (rng.chance(0.15)) v += d.quote + text(plainPieces, 2);
        fields.push(v);
        raw.push(v);
      } else {
        const v = text(quotedPieces, 6);
        fields.push(v);
        raw.push(d.quote + v.split(d.quote).join(d.quote + d.quote) + d.quote);
        extra += v.split('\n').length - 1;
      }
    }
    // A record of one unquoted empty field is a blank line, which is no record.
    if (fields.length === 1 && fields[0] === null) {
      fields[0] = 'x';
      raw[0] = 'x';
    }
    records.push(fields);
    lineNumbers.push(line);
    out += raw.join(d.delimiter);
    line += extra;
    if (r < count - 1 || rng.chance(0.5)) {
      out += eol();
      line++;
      if (r === count - 1) while (rng.chance(0.3)) out += eol();
    }
  }
  return { text: out, records, lines: lineNumbers };
}

/** csv-parse, told the same dialect; a field it did not see quoted and is empty is NULL. */
function oracle(text: string, d: Dialect): Field[][] {
  return parse(text, {
    delimiter: d.delimiter,
    quote: d.quote,
    escape: d.quote,
    record_delimiter: ['\r\n', '\n', '\r'],
    skip_empty_lines: true,
    relax_column_count: true,
    relax_quotes: true,
    cast: (value: string, context) => (context.quoting ? value : value === '' ? null : value),
  }) as Field[][];
}

const DIALECTS: Dialect[] = [
  { delimiter: ',', quote: '"', eol: 'lf' },
  { delimiter: ',', quote: '"', eol: 'crlf' },
  { delimiter: ',', quote: '"', eol: 'mixed' },
  { delimiter: ';', quote: '"', eol: 'crlf' },
  { delimiter: '|', quote: "'", eol: 'mixed' },
  { delimiter: '\t', quote: '"', eol: 'lf' },
  { delimiter: ';', quote: '~', eol: 'lf' },
  { delimiter: ',', quote: '"', eol: 'cr' },
];

describe('CsvTokenizer against csv-parse', () => {
  const DOCS_PER_DIALECT = 150;

  it.each(DIALECTS.map((d) => [JSON.stringify(d), d] as const))(
    'agrees on generated documents in every chunking: %s',
    (_name, d) => {
      const rng = new Rng(0x5eed + d.delimiter.charCodeAt(0) * 31 + d.quote.charCodeAt(0) + d.eol.length);
      let fieldsSeen = 0;
      let nulls = 0;
      let empties = 0;
      for (let i = 0; i < DOCS_PER_DIALECT; i++) {
        const doc = generate(rng, d);
        const where = `doc ${i}: ${JSON.stringify(doc.text)}`;
        const expected = oracle(doc.text, d);
        // The oracle reads what the generator meant to write, so both are right or the generator is wrong.
        expect(expected, where).toEqual(doc.records);
        for (const [how, chunks] of chunkings(doc.text, rng)) {
          const events = tokenize(chunks, { delimiter: d.delimiter, quote: d.quote });
          expect(errors(events), `${where} (${how})`).toEqual([]);
          expect(records(events), `${where} (${how})`).toEqual(expected);
          expect(lines(events), `${where} (${how})`).toEqual(doc.lines);
        }
        for (const r of doc.records) {
          fieldsSeen += r.length;
          nulls += r.filter((f) => f === null).length;
          empties += r.filter((f) => f === '').length;
        }
      }
      // The generator really exercised both kinds of empty field.
      expect(fieldsSeen).toBeGreaterThan(1000);
      expect(nulls).toBeGreaterThan(100);
      expect(empties).toBeGreaterThan(50);
    },
  );

  it('agrees when the text comes through a streaming UTF-8 decoder in random byte chunks', () => {
    const rng = new Rng(77);
    const d: Dialect = { delimiter: ',', quote: '"', eol: 'mixed' };
    for (let i = 0; i < 200; i++) {
      const doc = generate(rng, d);
      const bytes = Buffer.from(doc.text, 'utf8');
      const decoder = new TextDecoder('utf-8', { fatal: true });
      const texts: string[] = [];
      for (let at = 0; at < bytes.length;) {
        const n = rng.int(1, 9);
        texts.push(decoder.decode(bytes.subarray(at, at + n), { stream: true }));
        at += n;
      }
      texts.push(decoder.decode());
      const events = tokenize(texts);
      expect(errors(events)).toEqual([]);
      expect(records(events), doc.text).toEqual(oracle(doc.text, d));
      expect(lines(events), doc.text).toEqual(doc.lines);
    }
  });
});

describe('CsvTokenizer edge cases', () => {
  /** Runs `text` whole and one character at a time; both must give the same events. */
  function run(text: string, opts: Partial<TokenizerOptions> = {}): Event[] {
    const whole = tokenize([text], opts);
    expect(tokenize(text.split(''), opts)).toEqual(whole);
    return whole;
  }

  it('empty input gives nothing', () => {
    expect(run('')).toEqual([]);
    expect(tokenize(['', '', ''])).toEqual([]);
  });

  it('header only, with and without a final newline', () => {
    expect(run('id,name,qty\n')).toEqual([{ kind: 'record', fields: ['id', 'name', 'qty'], line: 1 }]);
    expect(run('id,name,qty')).toEqual([{ kind: 'record', fields: ['id', 'name', 'qty'], line: 1 }]);
  });

  it('reads the last record without a trailing newline', () => {
    expect(run('a,b\r\n1,2\r\n3,"x"')).toEqual([
      { kind: 'record', fields: ['a', 'b'], line: 1 },
      { kind: 'record', fields: ['1', '2'], line: 2 },
      { kind: 'record', fields: ['3', 'x'], line: 3 },
    ]);
  });

  it('a trailing delimiter is one more empty (NULL) field', () => {
    expect(records(run('a,b,\n1,,\n'))).toEqual([
      ['a', 'b', null],
      ['1', null, null],
    ]);
    expect(records(run('a,b,'))).toEqual([['a', 'b', null]]);
  });

  it('tells an unquoted empty field (null) from a quoted one (empty string)', () => {
    const [r] = records(run(',"",x, "","",\n'));
    expect(r).toEqual([null, '', 'x', ' ""', '', null]);
    expect(r![0]).toBeNull();
    expect(r![1]).toBe('');
    // A line holding only "" is a record of one empty string, not a blank line.
    expect(run('""\n\n,\n')).toEqual([
      { kind: 'record', fields: [''], line: 1 },
      { kind: 'record', fields: [null, null], line: 3 },
    ]);
  });

  it('skips blank lines but still counts them', () => {
    expect(run('\n\na\n\r\n\nb\n\n')).toEqual([
      { kind: 'record', fields: ['a'], line: 3 },
      { kind: 'record', fields: ['b'], line: 6 },
    ]);
  });

  it('takes a lone CR as a line ending, and CR LF split across chunks as one', () => {
    expect(run('a,b\r1,2\r\r3,4')).toEqual([
      { kind: 'record', fields: ['a', 'b'], line: 1 },
      { kind: 'record', fields: ['1', '2'], line: 2 },
      { kind: 'record', fields: ['3', '4'], line: 4 },
    ]);
    expect(tokenize(['a\r', '\nb\r', '', '\n', 'c'])).toEqual([
      { kind: 'record', fields: ['a'], line: 1 },
      { kind: 'record', fields: ['b'], line: 2 },
      { kind: 'record', fields: ['c'], line: 3 },
    ]);
  });

  it('counts the lines inside quoted fields', () => {
    expect(run('"multi\nline\r\nnote",1\nnext,2\n')).toEqual([
      { kind: 'record', fields: ['multi\nline\r\nnote', '1'], line: 1 },
      { kind: 'record', fields: ['next', '2'], line: 4 },
    ]);
  });

  it('keeps doubled quotes, delimiters and multi-byte text inside quotes', () => {
    expect(records(run('"say ""hi"", 👋",né,"a|b"\n', {}))).toEqual([['say "hi", 👋', 'né', 'a|b']]);
    expect(records(run("'it''s';'x;y'\n", { delimiter: ';', quote: "'" }))).toEqual([["it's", 'x;y']]);
    expect(records(run('a\t"b\tc"\t\n', { delimiter: '\t' }))).toEqual([['a', 'b\tc', null]]);
  });

  it('an unclosed quote at end of input is one error on the line it opened, and the end', () => {
    const events = run('id,note\n1,ok\n2,"never closed\nmore text\n3,x\n');
    expect(events).toEqual([
      { kind: 'record', fields: ['id', 'note'], line: 1 },
      { kind: 'record', fields: ['1', 'ok'], line: 2 },
      {
        kind: 'error',
        line: 3,
        reason: 'unclosed quote: a field opened with " is never closed',
        text: '2,"never closed\nmore text\n3,x\n',
      },
    ]);
  });

  it('a character after a closing quote spoils that record only', () => {
    const reason = `unexpected character 'c' after a closing quote (a quote inside a quoted field must be doubled)`;
    expect(run('h1,h2\n"ab"c,d\nx,y\n')).toEqual([
      { kind: 'record', fields: ['h1', 'h2'], line: 1 },
      { kind: 'error', line: 2, reason, text: '"ab"c,d' },
      { kind: 'record', fields: ['x', 'y'], line: 3 },
    ]);
    // CR LF endings, and a multi-line field before the fault: the next record keeps its line.
    expect(run('"a\r\nb","ab"c,d\r\nx,y\r\n')).toEqual([
      { kind: 'error', line: 1, reason, text: '"a\r\nb","ab"c,d' },
      { kind: 'record', fields: ['x', 'y'], line: 3 },
    ]);
    // Lone CR endings: the spoilt record ends at its CR, not at the next LF in the file.
    expect(run('"ab"c,d\rx,y\rz\r')).toEqual([
      { kind: 'error', line: 1, reason, text: '"ab"c,d' },
      { kind: 'record', fields: ['x', 'y'], line: 2 },
      { kind: 'record', fields: ['z'], line: 3 },
    ]);
    // At end of input.
    expect(run('x\n"ab"c')).toEqual([
      { kind: 'record', fields: ['x'], line: 1 },
      { kind: 'error', line: 2, reason, text: '"ab"c' },
    ]);
  });

  it('a record longer than maxRecordChars is an error, and reading resumes on the next line', () => {
    const long = 'x'.repeat(15) + ',' + 'y'.repeat(15);
    const expected: Event[] = [
      { kind: 'record', fields: ['a', 'b'], line: 1 },
      {
        kind: 'error',
        line: 2,
        reason: 'record longer than 10 characters (unclosed quote?)',
        text: 'xxxxxxxxxx',
      },
      { kind: 'record', fields: ['c', 'd'], line: 3 },
    ];
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = ['a,b', long, 'c,d', ''].join(eol);
      expect(run(text, { maxRecordChars: 10 }), JSON.stringify(eol)).toEqual(expected);
      expect(tokenize(chunked(text, new Rng(3), 5), { maxRecordChars: 10 })).toEqual(expected);
    }
    // Exactly at the limit is fine, also when the CR of a CR LF waits for the next chunk.
    expect(tokenize(['0123456789\r', '\nabc'], { maxRecordChars: 10 })).toEqual([
      { kind: 'record', fields: ['0123456789'], line: 1 },
      { kind: 'record', fields: ['abc'], line: 2 },
    ]);
  });

  it('a runaway quote is cut at the limit and the lines after it are read again', () => {
    const text = 'id,note\n1,"runaway\n2,second\n3,third\n';
    const events = run(text, { maxRecordChars: 16 });
    expect(events).toEqual([
      { kind: 'record', fields: ['id', 'note'], line: 1 },
      {
        kind: 'error',
        line: 2,
        reason: 'record longer than 16 characters (unclosed quote?)',
        text: '1,"runaway\n2,sec',
      },
      { kind: 'record', fields: ['2', 'second'], line: 3 },
      { kind: 'record', fields: ['3', 'third'], line: 4 },
    ]);
    for (let size = 1; size <= text.length; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < text.length; i += size) chunks.push(text.slice(i, i + size));
      expect(tokenize(chunks, { maxRecordChars: 16 }), `chunks of ${size}`).toEqual(events);
    }
  });

  it('refuses a delimiter or quote that is not one character', () => {
    expect(() => new CsvTokenizer({ delimiter: ',,', quote: '"', maxRecordChars: 10 })).toThrow(
      /one character/,
    );
    expect(() => new CsvTokenizer({ delimiter: ',', quote: '', maxRecordChars: 10 })).toThrow(
      /one character/,
    );
  });
});

describe('CsvTokenizer on damaged input', () => {
  /** Documents with stray quotes, runaway quotes, long lines and every line ending. */
  function damaged(rng: Rng): string {
    const parts = [
      'a',
      'bc',
      'déf',
      '😀',
      ',',
      ',',
      '"',
      '""',
      '"x"',
      '"x"y',
      '\n',
      '\r\n',
      '\r',
      '\n\n',
      'long',
    ];
    let s = '';
    for (let n = rng.int(0, 60); n > 0; n--) {
      const p = rng.pick(parts);
      s += p === 'long' ? 'L'.repeat(rng.int(5, 40)) : p;
    }
    return s;
  }

  it('gives the same records and errors in any chunking, with lines that only go forward', () => {
    const rng = new Rng(2024);
    let errorsSeen = 0;
    for (let i = 0; i < 1500; i++) {
      const text = damaged(rng);
      const maxRecordChars = rng.int(4, 40);
      const whole = tokenize([text], { maxRecordChars });
      for (const [how, chunks] of chunkings(text, rng)) {
        expect(
          tokenize(chunks, { maxRecordChars }),
          `${JSON.stringify(text)} max ${maxRecordChars} (${how})`,
        ).toEqual(whole);
      }
      let last = 0;
      for (const e of whole) {
        expect(e.line, JSON.stringify(text)).toBeGreaterThan(last);
        last = e.line;
        if (e.kind === 'record') {
          expect(e.fields.reduce((n, f) => n + (f?.length ?? 0), 0)).toBeLessThanOrEqual(maxRecordChars);
        } else errorsSeen++;
      }
      // Lines never run past the physical lines of the text.
      expect(last).toBeLessThanOrEqual(text.split(/\r\n|\r|\n/).length);
    }
    expect(errorsSeen).toBeGreaterThan(500);
  });
});
