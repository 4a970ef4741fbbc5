import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/**
 * erp's exports survive erp's imports: random tables of every validate type, exported by an export
 * pipeline (postgres → csv/xlsx → file) and loaded back by an import pipeline (file → csv/xlsx →
 * validate → postgres) of the same columns, come back equal on real PostgreSQL — except where a
 * documented rule says otherwise, and those exceptions are asserted, not skipped:
 *
 * - CSV with `escape_formulas` (the default): text a spreadsheet would run as a formula comes back
 *   with the leading `'` the writer added (docs/excel-and-exports.md, "Formula neutralisation").
 * - XLSX: an empty string comes back as NULL (an empty cell; XLSX cannot tell them apart).
 * - XLSX: a timestamp keeps milliseconds, not microseconds (a date serial is a double).
 *
 * The generator is fast-check with a fixed seed, so `npm test` is deterministic; on a failure
 * fast-check prints the seed, the path and the shrunk table. `ROUNDTRIP_SEED=<n>` replays or explores
 * another seed, `ROUNDTRIP_RUNS=<n>` runs more tables.
 */

const SEED = Number(process.env.ROUNDTRIP_SEED ?? 20261130);
const RUNS = Number(process.env.ROUNDTRIP_RUNS ?? 50);

const ENUM = ['open', 'closed', 'on hold'];
const COLUMNS = ['id', 't', 'note', 'qty', 'amount', 'flag', 'day', 'at', 'state'] as const;
type Row = (string | null)[];

/** The documented formula rule, stated here independently of the writer's own pattern. */
const FORMULA_LIKE = /^[=+\-@\t\r\n\uFF1D\uFF0B\uFF0D\uFF20]/u;

const IMPORT = (format: string): string => `
description: round trip, import
source: { kind: file, path: 'out/*' }
format: ${format}
validate:
  fields:
    id: { type: int, required: true }
    t: { type: string }
    note: { type: string }
    qty: { type: int }
    amount: { type: decimal, precision: 40, scale: 10 }
    flag: { type: bool }
    day: { type: date }
    at: { type: timestamp }
    state: { type: enum, values: [${ENUM.map((v) => `'${v}'`).join(', ')}] }
sink: { kind: postgres, table: rt.dst, mode: append }
rejects: { max_rejects: 0 }
`;
const EXPORT = (format: string): string => `
description: round trip, export
source: { kind: postgres, sql: 'SELECT ${COLUMNS.join(', ')} FROM rt.src ORDER BY id' }
format: ${format}
sink: { kind: file, dir: out, name: 'rt-{run_id}.{ext}' }
`;

// Pieces text is made of: every character class a CSV or XML writer must take care of.
const PIECES = [
  ',',
  ';',
  '|',
  '\t',
  '"',
  "'",
  '""',
  '\r',
  '\n',
  '\r\n',
  '\n\r',
  '\\',
  '\\N',
  '\\.',
  ' ',
  '  ',
  '=',
  '+',
  '-',
  '@',
  '=SUM(A1)',
  '＝',
  '_x000D_',
  '_x005F_',
  '_x',
  '\u0001',
  '\u001f',
  '\u000b',
  '\u00a0',
  '\u2028',
  '\ufeff',
  '\uffff',
  'é',
  'ß',
  '€',
  '日本',
  '😀',
  '𝄞',
  'a',
  'Zz',
  '0',
  '12.50',
  '-7',
  'NULL',
  'null',
  'true',
  '2026-11-30',
];
const text = fc.oneof(
  { weight: 8, arbitrary: fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }).map((p) => p.join('')) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\\N', '=1+1', '-', '\r', '\n', '\r\n') },
  // Long values: a few thousand characters with specials inside.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1000, max: 8000 }), fc.constantFrom(...PIECES))
      .map(([n, p]) => `${'x'.repeat(n)}${p}${'é'.repeat(n % 97)}`),
  },
);
/** PostgreSQL text cannot hold NUL, nor a lone surrogate (it is UTF-8). */
const pgText = text
  .map((s) =>
    s.replace(/\0/g, '').replace(/[\uD800-\uDFFF]/g, (c, i: number, all: string) => {
      const code = c.charCodeAt(0);
      const pairOk =
        code < 0xdc00
          ? (all.charCodeAt(i + 1) & 0xfc00) === 0xdc00
          : (all.charCodeAt(i - 1) & 0xfc00) === 0xd800;
      return pairOk ? c : '?';
    }),
  )
  .filter((s) => s.length <= 32767);

const nullable = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 5, arbitrary: a });

const int8 = fc.oneof(
  fc.constantFrom(
    '0',
    '-1',
    '9223372036854775807',
    '-9223372036854775808',
    '999999999999999',
    '1000000000000000',
  ),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  fc.integer({ min: -100000, max: 100000 }).map(String),
);
const numeric = fc
  .tuple(
    fc.boolean(),
    fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 30n - 1n }), fc.bigInt({ min: 0n, max: 99999n })),
    fc.integer({ min: 0, max: 10 }),
    fc.bigInt({ min: 0n, max: 10n ** 10n - 1n }),
  )
  .map(([neg, whole, scale, frac]) => {
    const f = scale === 0 ? '' : `.${(frac % 10n ** BigInt(scale)).toString().padStart(scale, '0')}`;
    return `${neg ? '-' : ''}${whole}${f}`;
  });
const DAY_MIN = new Date('0001-01-01T00:00:00.000Z');
const DAY_MAX = new Date('9999-12-31T23:59:59.999Z');
const day = fc.oneof(
  // Edges of Excel's date range (1900-03-01 … 9999-12-31) and of the two date systems.
  fc.constantFrom(
    '1899-12-31',
    '1900-01-01',
    '1900-02-28',
    '1900-03-01',
    '1904-01-01',
    '9999-12-31',
    '0001-01-01',
  ),
  fc.date({ min: DAY_MIN, max: DAY_MAX, noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
  fc
    .date({
      min: new Date('1990-01-01T00:00:00Z'),
      max: new Date('2040-01-01T00:00:00Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString().slice(0, 10)),
);
const at = fc.oneof(
  fc.constantFrom(
    '1900-03-01 00:00:00',
    '2026-11-30 23:59:59.999',
    '2026-11-30 00:00:00.001',
    '9999-12-31 23:59:59.999',
  ),
  fc
    .date({ min: DAY_MIN, max: DAY_MAX, noInvalidDate: true })
    .map((d) => d.toISOString().replace('T', ' ').slice(0, 23)),
  fc
    .date({
      min: new Date('1990-01-01T00:00:00Z'),
      max: new Date('2040-01-01T00:00:00Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString().replace('T', ' ').slice(0, 23)),
);

const table = fc.array(
  fc.tuple(
    nullable(pgText),
    nullable(pgText),
    nullable(int8),
    nullable(numeric),
    nullable(fc.constantFrom('true', 'false')),
    nullable(day),
    nullable(at),
    nullable(fc.constantFrom(...ENUM)),
  ),
  { minLength: 1, maxLength: 25 },
);

const csvOptions = fc.record({
  delimiter: fc.constantFrom(',', ';', '\t', '|'),
  quote: fc.constantFrom('"', "'"),
  record_delimiter: fc.constantFrom('lf', 'crlf'),
  bom: fc.boolean(),
  escape_formulas: fc.boolean(),
});

let db: TestDatabase;
let home: TestHome;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query(`
    CREATE SCHEMA rt;
    CREATE TABLE rt.src (id int PRIMARY KEY, t text, note text, qty bigint, amount numeric(40,10),
                         flag boolean, day date, at timestamp(3), state text);
    CREATE TABLE rt.dst (LIKE rt.src);`);
  await home.link(['sql']);
  await home.write({ 'out/.keep': '', 'pipelines/.keep': '' });
});

/** Every column as PostgreSQL prints it, so both tables compare as text. */
async function rows(tableName: 'rt.src' | 'rt.dst'): Promise<Row[]> {
  const r = await db.pool.query<{ r: Row }>(
    `SELECT ARRAY[${COLUMNS.map((c) => `${c}::text`).join(', ')}] AS r FROM ${tableName} ORDER BY id`,
  );
  return r.rows.map((x) => x.r);
}

async function loadSource(data: (string | null)[][]): Promise<void> {
  await db.pool.query('TRUNCATE rt.src, rt.dst');
  const params: (string | null)[] = [];
  const values = data.map((row, i) => {
    params.push(String(i + 1), ...row);
    const base = i * COLUMNS.length;
    return `(${COLUMNS.map((_, j) => `$${base + j + 1}`).join(', ')})`;
  });
  await db.pool.query(`INSERT INTO rt.src (${COLUMNS.join(', ')}) VALUES ${values.join(', ')}`, params);
}

/** Exports rt.src with `format`, imports the file into rt.dst, and returns rt.dst. */
async function roundTrip(format: string): Promise<Row[]> {
  await writeFile(path.join(home.dir, 'pipelines/rt-export.yaml'), EXPORT(format), { flag: 'w' });
  await writeFile(path.join(home.dir, 'pipelines/rt-import.yaml'), IMPORT(format), { flag: 'w' });
  await db.pool.query('TRUNCATE rt.dst');
  const app = testApp(db, home.dir);
  const out = await runPipeline(app, await loadPipeline(home.dir, 'rt-export'));
  expect(out.error).toBeNull();
  const file = out.files[0]!.file;
  const back = await runPipeline(app, await loadPipeline(home.dir, 'rt-import'), {
    files: [file],
    force: true,
  });
  const f = back.files[0]!;
  // The rejects first: a mismatch in the table is easier to read once we know no row was refused.
  expect({ error: back.error, rejects: f.rejects }).toEqual({ error: null, rejects: [] });
  expect(f.status).toBe('loaded');
  return rows('rt.dst');
}

const TEXT_COLUMNS = [1, 2, 8];
const AT = COLUMNS.indexOf('at');

describe('round trip: export pipeline → file → import pipeline', () => {
  it('CSV: every table comes back equal; with escape_formulas, formula-like text carries the leading quote', async () => {
    await fc.assert(
      fc.asyncProperty(table, csvOptions, async (data, o) => {
        await loadSource(data);
        const src = await rows('rt.src');
        const format =
          `{ kind: csv, delimiter: ${JSON.stringify(o.delimiter)}, quote: ${JSON.stringify(o.quote)}, ` +
          `record_delimiter: ${o.record_delimiter}, ` +
          `bom: ${o.bom}, escape_formulas: ${o.escape_formulas} }`;
        const dst = await roundTrip(format);
        const expected = src.map((row) =>
          row.map((v, i) =>
            o.escape_formulas && TEXT_COLUMNS.includes(i) && v !== null && FORMULA_LIKE.test(v) ? `'${v}` : v,
          ),
        );
        expect(dst).toEqual(expected);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('XLSX: every table comes back equal, except that an empty string comes back as NULL', async () => {
    await fc.assert(
      fc.asyncProperty(table, async (data) => {
        await loadSource(data);
        const src = await rows('rt.src');
        const dst = await roundTrip('{ kind: xlsx }');
        const expected = src.map((row) =>
          row.map((v, i) => (TEXT_COLUMNS.includes(i) && v === '' ? null : v)),
        );
        expect(dst).toEqual(expected);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('the exceptions hold on values made to hit them', async () => {
    const row = (t: string | null, at: string | null = null): (string | null)[] => [
      t,
      t,
      null,
      null,
      null,
      null,
      at,
      null,
    ];
    await db.pool.query('ALTER TABLE rt.src ALTER COLUMN at TYPE timestamp(6)');
    await db.pool.query('ALTER TABLE rt.dst ALTER COLUMN at TYPE timestamp(6)');
    try {
      await loadSource([
        row('=SUM(A1)'),
        row('-cmd'),
        row('+1'),
        row('@x'),
        row('\tx'),
        row('\rx'),
        row('\nx'),
        row('＝1'),
        row(''),
        row(null),
        row('x', '2026-11-30 10:15:00.123456'),
      ]);
      const src = await rows('rt.src');
      expect(src[10]![AT]).toBe('2026-11-30 10:15:00.123456');

      // CSV, default options: the formula rule applies to each of the eight formula-like texts, and
      // an empty string stays an empty string, microseconds stay.
      const csv = await roundTrip('{ kind: csv }');
      expect(csv.map((r) => r[1])).toEqual([
        "'=SUM(A1)",
        "'-cmd",
        "'+1",
        "'@x",
        "'\tx",
        "'\rx",
        "'\nx",
        "'＝1",
        '',
        null,
        'x',
      ]);
      expect(csv[10]![AT]).toBe('2026-11-30 10:15:00.123456');
      // Without escape_formulas the text is exact.
      const exact = await roundTrip('{ kind: csv, escape_formulas: false }');
      expect(exact).toEqual(src);

      // XLSX: text is exact (an inline string is never a formula); the empty string is NULL; the
      // timestamp keeps its milliseconds only.
      const xlsx = await roundTrip('{ kind: xlsx }');
      expect(xlsx.map((r) => r[1])).toEqual([
        '=SUM(A1)',
        '-cmd',
        '+1',
        '@x',
        '\tx',
        '\rx',
        '\nx',
        '＝1',
        null,
        null,
        'x',
      ]);
      expect(xlsx[10]![AT]).toBe('2026-11-30 10:15:00.123');
    } finally {
      await db.pool.query('ALTER TABLE rt.src ALTER COLUMN at TYPE timestamp(3)');
      await db.pool.query('ALTER TABLE rt.dst ALTER COLUMN at TYPE timestamp(3)');
    }
  });
});
