import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptValue, parseKeyring } from '../src/compliance/keys.js';
import { loadPipeline } from '../src/pipeline/definition.js';
import { passThroughBatch, runPipeline } from '../src/pipeline/run.js';
import type { FileResult } from '../src/pipeline/result.js';
import { createCsvFormat, csvFormatSchema } from '../src/stages/format-csv.js';
import { csvRowEncoder } from '../src/stages/sink-postgres.js';
import type { Batch, Reject } from '../src/stages/types.js';
import { createValidate, validateSchema } from '../src/stages/validate.js';
import { Readable } from 'node:stream';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/**
 * Pass-through: a record that validates unchanged goes to `COPY … (FORMAT csv)` as the text it was
 * read. Property: on generated files (dialects, line endings, quoting, NULLs, empty strings, stray
 * quotes, `\.`, multi-line values, rejects, values validation normalises), the pass-through load
 * and the general load (every row encoded) give the same file result and the same table, row for
 * row in load order, in append and in upsert mode.
 */

const DIALECTS = [
  { delimiter: ',', quote: '"' },
  { delimiter: ';', quote: '"' },
  { delimiter: '\t', quote: '"' },
  { delimiter: '|', quote: "'" },
];
const COLUMNS = ['id', 'name', 'qty', 'price', 'day', 'flag', 'flag_text', 'note'];

/** A small deterministic generator (the seed is printed on failure). */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

const TEXT_PIECES = [
  'a',
  'b c',
  ',',
  ';',
  '\t',
  '|',
  '"',
  "'",
  '\\',
  '\\.',
  '\n',
  '\r\n',
  'é',
  '😀',
  ' ',
  'N',
  '\\N',
  'x"y',
];

interface Generated {
  text: string;
  dialect: (typeof DIALECTS)[number];
  dateFormat: string;
}

/** Dialects whose delimiter or quote an envelope (enc:v1:<key id>:<base64url>) may hold. */
const ENVELOPE_DIALECTS = [
  { delimiter: ':', quote: '"' },
  { delimiter: '-', quote: "'" },
  { delimiter: ';', quote: '_' },
];

function generate(seed: number, dialects = DIALECTS): Generated {
  const r = rng(seed);
  const dialect = dialects[r(dialects.length)]!;
  const { delimiter: d, quote: q } = dialect;
  const dateFormat = r(3) === 0 ? 'MM/DD/YYYY' : 'YYYY-MM-DD';
  const eols = [['\n'], ['\r\n'], ['\n', '\r\n', '\r']][r(3)]!;
  const eol = (): string => eols[r(eols.length)]!;
  const text = (): string => {
    let s = '';
    for (let k = r(4); k > 0; k--) s += TEXT_PIECES[r(TEXT_PIECES.length)];
    return s;
  };
  /** A field as written: NULL unquoted, a value quoted when it must be or at random. */
  const field = (v: string | null): string => {
    if (v === null) return '';
    const must = v === '' || v.includes(d) || v.includes(q) || /[\r\n]/.test(v);
    // A quote inside an unquoted field is literal to the reader (COPY would open a quoted part).
    if (!must && r(3) > 0) return v;
    if (!must || r(8) > 0) return q + v.split(q).join(q + q) + q;
    if (!v.startsWith(q) && !/[\r\n]/.test(v) && !v.includes(d)) return v; // stray quote, unquoted
    return q + v.split(q).join(q + q) + q;
  };
  const pick = <T>(xs: T[]): T => xs[r(xs.length)]!;
  const day = (): string => {
    const y = 2000 + r(30);
    const m = String(1 + r(12)).padStart(2, '0');
    const dd = String(1 + r(28)).padStart(2, '0');
    return dateFormat === 'YYYY-MM-DD' ? `${y}-${m}-${dd}` : `${m}/${dd}/${y}`;
  };
  const bools = ['t', 'f', 'true', 'false', 'yes', 'no', '1', '0', 'Y', 'N', 'True'];
  let out = r(4) === 0 ? '\uFEFF' : '';
  out += COLUMNS.map((c) => field(c)).join(d) + eol();
  const rows = 5 + r(40);
  for (let i = 0; i < rows; i++) {
    if (r(15) === 0) out += eol(); // a blank line
    const values: (string | null)[] = [
      r(25) === 0 ? pick([null, 'x1', '']) : String(1 + r(12)), // few keys: upsert meets duplicates
      r(6) === 0 ? null : text(),
      r(6) === 0 ? pick([null, '', '-3', '+7', '9'.repeat(20)]) : String(r(1000)),
      r(6) === 0 ? pick([null, '', '1.234', 'abc']) : `${r(100)}.${String(r(100)).padStart(2, '0')}`,
      r(8) === 0 ? pick([null, '', '2026-02-30', 'soon']) : day(),
      r(6) === 0 ? pick([null, '', 'maybe']) : pick(bools),
      r(6) === 0 ? null : pick(bools),
      r(3) === 0 ? null : text(),
    ];
    if (r(30) === 0) values.pop(); // a row with a field missing
    out += values.map(field).join(d);
    if (i < rows - 1 || r(2) === 0) out += eol();
  }
  return { text: out, dialect, dateFormat };
}

const pipeline = (g: Generated, mode: string): string => `
source: { kind: file, path: 'in/*.csv' }
format: { kind: csv, delimiter: ${JSON.stringify(g.dialect.delimiter)}, quote: ${JSON.stringify(g.dialect.quote)} }
validate:
  fields:
    id: { type: int, required: true, min: 1 }
    name: { type: string, max_length: 12 }
    qty: { type: int, min: 0 }
    price: { type: decimal, precision: 10, scale: 2 }
    day: { type: date, format: ${g.dateFormat} }
    flag: { type: bool }
    flag_text: { type: bool }
sink: { kind: postgres, table: public.pt, mode: ${mode}${mode === 'upsert' ? ', key: [id]' : ''} }
rejects: { max_rejects: 1000 }
`;

let db: TestDatabase;
let home: TestHome;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await home.link(['sql']);
  await home.write({ 'in/.keep': '', 'pipelines/.keep': '' });
});

/** Loads `g` into a fresh table, one way or the other; returns the file result and the table in load order. */
async function load(
  g: Generated,
  mode: string,
  passThrough: boolean,
): Promise<{ file: Omit<FileResult, 'rejectReport' | 'sha256'>; rows: Record<string, string | null>[] }> {
  await db.pool.query(`DROP TABLE IF EXISTS pt;
    CREATE TABLE pt (id int ${mode === 'upsert' ? 'PRIMARY KEY' : ''}, name text, qty int, price numeric(10,2),
      day date, flag boolean, flag_text text, note text)`);
  await writeFile(path.join(home.dir, 'pipelines/pt.yaml'), pipeline(g, mode));
  const file = path.join(home.dir, 'in/pt.csv');
  await writeFile(file, g.text);
  const def = await loadPipeline(home.dir, 'pt');
  const r = await runPipeline(testApp(db, home.dir), def, { files: [file], force: true, passThrough });
  const { rejectReport: _report, sha256: _sha, ...f } = r.files[0]!;
  const { rows } = await db.pool.query<Record<string, string | null>>(
    'SELECT id, name, qty, price::text, day::text, flag, flag_text, note FROM pt ORDER BY ctid',
  );
  return { file: f, rows };
}

const ENCRYPTED = ['name', 'note'] as const;

describe('pass-through and the general path', () => {
  it('load identical tables from generated files, in append and upsert mode', async () => {
    let loadedSomething = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const g = generate(seed);
      const mode = seed % 3 === 0 ? 'upsert' : 'append';
      const general = await load(g, mode, false);
      const pass = await load(g, mode, true);
      expect(pass, `seed ${seed} (${mode}): ${JSON.stringify(g.text.slice(0, 300))}`).toEqual(general);
      if (general.file.status === 'loaded' && general.file.rowsLoaded > 0) loadedSomething++;
    }
    // The property says nothing if every file failed.
    expect(loadedSomething).toBeGreaterThan(40);
  }, 120_000);
});

describe('passThroughBatch', () => {
  const dialect = { delimiter: ',', quote: '"' };
  async function batchesOf(text: string): Promise<Batch[]> {
    const format = createCsvFormat(csvFormatSchema.parse({ kind: 'csv' }));
    const out: Batch[] = [];
    for await (const b of format.read(Readable.from([Buffer.from(text)]), 'x.csv', () => undefined))
      out.push(b);
    return out;
  }
  const step = createValidate(
    validateSchema.parse({ fields: { n: { type: 'int' }, d: { type: 'date', format: 'MM/DD/YYYY' } } }),
  );

  it('hands records left as is over as their own text, and encodes the ones validation changed', async () => {
    const [batch] = await batchesOf('n,s,d\n1,"abc",\n2,"x ""y""",12/31/2026\n3,plain,\n');
    const check = step.compileCheck!(batch!.columns, 'x.csv', ['int4', 'text', 'date']);
    const rejects: Reject[] = [];
    const out = passThroughBatch(batch!, [check], (j) => rejects.push(j), csvRowEncoder(dialect));
    // Row 1 keeps its needless quotes (its own text); row 2's date was normalised, so it is
    // encoded (and its quotes are those the encoder needs); row 3 is its own text again.
    expect(out).toEqual({
      text: '1,"abc",\n2,"x ""y""",2026-12-31\n3,plain,\n',
      rows: 3,
      rejected: 0,
    });
    expect(rejects).toEqual([]);
  });

  it('encodes a record COPY would read differently: a stray quote, or a line that is `\\.`', async () => {
    const [batch] = await batchesOf('s\nab"c\n\\.\n"q"\n');
    const check = createValidate(validateSchema.parse({ fields: { s: { type: 'string' } } })).compileCheck!(
      batch!.columns,
      'x.csv',
      ['text'],
    );
    const out = passThroughBatch(batch!, [check], () => undefined, csvRowEncoder(dialect));
    expect(out.text).toBe('"ab""c"\n"\\."\n"q"\n');
  });

  it('counts rejects and leaves them out', async () => {
    const [batch] = await batchesOf('n,s,d\nx,a,\n2,b,13/01/2026\n3,c,\n');
    const check = step.compileCheck!(batch!.columns, 'x.csv', ['int4', 'text', 'date']);
    const rejects: Reject[] = [];
    const out = passThroughBatch(batch!, [check], (j) => rejects.push(j), csvRowEncoder(dialect));
    expect(out).toEqual({ text: '3,c,\n', rows: 1, rejected: 2 });
    expect(rejects.map((j) => `${j.line} ${j.field}`)).toEqual(['2 n', '3 d']);
  });
});

describe('pass-through into a table with encrypted columns', () => {
  const ring = parseKeyring(`pt:${Buffer.alloc(32, 7).toString('base64')}`, 'test keys');
  let saved: string | undefined;
  beforeAll(async () => {
    saved = process.env.ERP_KEYS;
    process.env.ERP_KEYS = `pt:${Buffer.alloc(32, 7).toString('base64')}`;
    await db.pool.query(
      `INSERT INTO compliance.encrypted_columns VALUES ('public.pt', 'name'), ('public.pt', 'note')`,
    );
  });
  afterAll(async () => {
    if (saved === undefined) delete process.env.ERP_KEYS;
    else process.env.ERP_KEYS = saved;
    await db.pool.query(`DELETE FROM compliance.encrypted_columns WHERE table_name = 'public.pt'`);
  });

  it('splices envelopes into the records: the same clear table as the general path', async () => {
    let sealed = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const g = generate(seed, seed % 2 === 0 ? DIALECTS : ENVELOPE_DIALECTS);
      const mode = seed % 3 === 0 ? 'upsert' : 'append';
      const general = await load(g, mode, false);
      const pass = await load(g, mode, true);
      for (const t of [general, pass])
        for (const row of t.rows)
          for (const c of ENCRYPTED) {
            const v = row[c];
            if (v === null || v === undefined || v === '') continue;
            // Stored only as an envelope; node:crypto's own aes-256-gcm opens it (decryptValue).
            expect(v.startsWith('enc:v1:pt:'), `seed ${seed}: ${c} stored clear`).toBe(true);
            row[c] = decryptValue(ring, v, c);
            sealed++;
          }
      expect(pass, `seed ${seed} (${mode}): ${JSON.stringify(g.text.slice(0, 300))}`).toEqual(general);
    }
    expect(sealed).toBeGreaterThan(500);
  }, 120_000);
});
