import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

const PIPELINE = (mode: string, extra = ''): string => `
description: item master
source: { kind: file, path: 'in/*.csv' }
format: { kind: csv }
validate:
  fields:
    item_code: { type: string, required: true, max_length: 12 }
    description: { type: string, required: true }
    price: { type: decimal, precision: 10, scale: 2, min: 0 }
    category: { type: string, required: true }
    active: { type: bool }
    created: { type: date, format: MM/DD/YYYY }
transform: { mapping: items }
sink: { kind: postgres, table: public.items, mode: ${mode}${mode === 'upsert' ? ', key: [sku]' : ''} }
${extra}
`;

const MAPPING = `
columns:
  sku: { from: item_code, trim: true, case: upper }
  name: { from: description, trim: true }
  price: {}
  category_id: { from: category, case: upper, lookup: { table: public.categories, key: code, value: id } }
  active: { default: 'true' }
  created: {}
  origin: { const: csv }
`;

const GOOD = `item_code,description,price,category,active,created
a-1,Steel bolt,1.50,raw,true,11/02/2026
a-2,"Hex nut, zinc",0.25,RAW,false,11/03/2026
a-3,"Washer ""M8""",0.10,fin,,11/04/2026
`;

let db: TestDatabase;
let home: TestHome;

async function run(opts: Parameters<typeof runPipeline>[2] = {}) {
  const def = await loadPipeline(home.dir, 'items');
  return runPipeline(testApp(db, home.dir), def, opts);
}

async function setPipeline(mode: string, extra = ''): Promise<void> {
  await writeFile(path.join(home.dir, 'pipelines/items.yaml'), PIPELINE(mode, extra));
}

async function items(): Promise<Record<string, unknown>[]> {
  return (
    await db.pool.query(
      'SELECT sku, name, price::text, category_id, active, created::text, origin FROM items ORDER BY sku',
    )
  ).rows;
}

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query(`
    CREATE TABLE categories (id int PRIMARY KEY, code text UNIQUE NOT NULL);
    INSERT INTO categories VALUES (1, 'RAW'), (2, 'FIN');
    CREATE TABLE items (sku text PRIMARY KEY, name text NOT NULL, price numeric(8,2), category_id int REFERENCES categories,
      active boolean NOT NULL, created date, origin text NOT NULL);`);
  await home.link(['sql']);
  await home.write({
    'pipelines/items.yaml': PIPELINE('append'),
    'mappings/items.yaml': MAPPING,
    'in/.keep': '',
  });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE items; TRUNCATE runner.ingested_files, runner.runs CASCADE');
  await setPipeline('append');
});

describe('runPipeline', () => {
  it('loads a file through validate and transform, recording the run and the ledger', async () => {
    const file = path.join(home.dir, 'in/items.csv');
    await writeFile(file, GOOD);
    const r = await run({ files: [file] });
    expect(r.status).toBe('succeeded');
    expect(r.files[0]).toMatchObject({
      status: 'loaded',
      rowsRead: 3,
      rowsLoaded: 3,
      rowsRejected: 0,
      rejectReport: null,
    });
    expect(await items()).toEqual([
      {
        sku: 'A-1',
        name: 'Steel bolt',
        price: '1.50',
        category_id: 1,
        active: true,
        created: '2026-11-02',
        origin: 'csv',
      },
      {
        sku: 'A-2',
        name: 'Hex nut, zinc',
        price: '0.25',
        category_id: 1,
        active: false,
        created: '2026-11-03',
        origin: 'csv',
      },
      {
        sku: 'A-3',
        name: 'Washer "M8"',
        price: '0.10',
        category_id: 2,
        active: true,
        created: '2026-11-04',
        origin: 'csv',
      },
    ]);
    const runRow = (
      await db.pool.query(
        'SELECT status, rows_read, rows_loaded, files_loaded FROM runner.runs WHERE id = $1',
        [r.runId],
      )
    ).rows[0];
    expect(runRow).toEqual({ status: 'succeeded', rows_read: '3', rows_loaded: '3', files_loaded: 1 });
    const ledger = (await db.pool.query('SELECT pipeline, sha256, rows_loaded FROM runner.ingested_files'))
      .rows;
    expect(ledger).toEqual([{ pipeline: 'items', sha256: r.files[0]!.sha256, rows_loaded: '3' }]);
  });

  it('reports every kind of reject with file, line, field, value and reason', async () => {
    const file = path.join(home.dir, 'in/bad.csv');
    await writeFile(
      file,
      [
        'item_code,description,price,category,active,created',
        'b-1,Good one,1.00,RAW,true,11/02/2026',
        'b-2,Bad price,12,50,RAW,true,11/02/2026', // line 3: 7 fields
        'b-3,Bad decimal,1.234,RAW,true,11/02/2026', // line 4
        ',Missing code,1.00,RAW,true,11/02/2026', // line 5
        'b-5,Unknown category,1.00,XYZ,true,11/02/2026', // line 6
        'b-6,Bad date,1.00,RAW,true,02/30/2026', // line 7
        'b-7,"Multi', // line 8, quoted newline
        'line",2.00,FIN,no,11/05/2026',
        'b-8,Bad bool,1.00,RAW,maybe,11/02/2026', // line 10
        'b-9,"never closed,1.00,RAW,true,11/02/2026', // line 11
        '',
      ].join('\n'),
    );
    const r = await run({ files: [file] });
    const f = r.files[0]!;
    expect(f.status).toBe('loaded');
    expect(f.rowsRead).toBe(9);
    expect(f.rowsLoaded).toBe(2);
    expect(f.rowsRejected).toBe(7);
    const byLine = Object.fromEntries(f.rejects.map((j) => [j.line, j]));
    expect(byLine[3]).toMatchObject({ file, field: null, reason: 'expected 6 fields, found 7' });
    expect(byLine[4]).toMatchObject({
      field: 'price',
      value: '1.234',
      reason: expect.stringMatching(/at most 2 digits after/),
    });
    expect(byLine[5]).toMatchObject({ field: 'item_code', reason: 'required value is missing' });
    expect(byLine[6]).toMatchObject({
      field: 'category_id',
      value: 'XYZ',
      reason: "no row in public.categories.code = 'XYZ'",
    });
    expect(byLine[7]).toMatchObject({
      field: 'created',
      value: '02/30/2026',
      reason: 'expected a date as MM/DD/YYYY',
    });
    expect(byLine[10]).toMatchObject({
      field: 'active',
      value: 'maybe',
      reason: expect.stringMatching(/expected a boolean/),
    });
    expect(byLine[11]).toMatchObject({ field: null, reason: expect.stringMatching(/unclosed quote/) });
    expect((await items()).map((i) => i.sku)).toEqual(['B-1', 'B-7']);
    expect((await items())[1]).toMatchObject({ name: 'Multi\nline', active: false });
    // The CSV report has them all; the table has them too.
    const report = await readFile(f.rejectReport!, 'utf8');
    expect(report.split('\n')[0]).toBe('file,line,field,value,reason');
    expect(report).toContain(`${file},4,price,1.234,`);
    const inTable = await db.pool.query(
      'SELECT line::int, field FROM runner.rejects WHERE run_id = $1 ORDER BY line',
      [r.runId],
    );
    expect(inTable.rows.map((x) => x.line)).toEqual([3, 4, 5, 6, 7, 10, 11]);
  });

  it('skips a file whose content was loaded before, and reloads it with force', async () => {
    const file = path.join(home.dir, 'in/items.csv');
    await writeFile(file, GOOD);
    expect((await run({ files: [file] })).files[0]!.status).toBe('loaded');
    // The same content under another name is the same file.
    const copy = path.join(home.dir, 'in/items-copy.csv');
    await writeFile(copy, GOOD);
    const again = await run({ files: [copy] });
    expect(again.files[0]!.status).toBe('skipped');
    expect(again.files[0]!.message).toMatch(/already loaded by run \d+ .*use --force/);
    expect((await items()).length).toBe(3);
    await setPipeline('upsert');
    const forced = await run({ files: [copy], force: true });
    expect(forced.files[0]).toMatchObject({ status: 'loaded', rowsLoaded: 3 });
    expect((await items()).length).toBe(3);
    const runs = (await db.pool.query('SELECT files_skipped, files_loaded FROM runner.runs ORDER BY id'))
      .rows;
    expect(runs).toEqual([
      { files_skipped: 0, files_loaded: 1 },
      { files_skipped: 1, files_loaded: 0 },
      { files_skipped: 0, files_loaded: 1 },
    ]);
  });

  it('rolls the whole file back when max_rejects is exceeded, and loads it once fixed', async () => {
    await setPipeline('append', 'rejects: { max_rejects: 1 }');
    const file = path.join(home.dir, 'in/items.csv');
    await writeFile(file, GOOD + 'x-1,,1.00,RAW,true,11/02/2026\nx-2,,1.00,RAW,true,11/02/2026\n');
    const r = await run({ files: [file] });
    expect(r.status).toBe('failed');
    expect(r.files[0]).toMatchObject({ status: 'failed', rowsLoaded: 0 });
    expect(r.files[0]!.message).toMatch(/more than 1 rejected rows \(max_rejects\); the file was not loaded/);
    expect(await items()).toEqual([]);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM runner.ingested_files')).rows[0].n).toBe(0);
    const rec = (await db.pool.query('SELECT status, rows_rejected::int FROM runner.run_files')).rows;
    expect(rec).toEqual([{ status: 'failed', rows_rejected: 2 }]);
    await writeFile(file, GOOD);
    expect((await run({ files: [file] })).files[0]!.status).toBe('loaded');
    expect((await items()).length).toBe(3);
  });

  it('rolls the file back when max_reject_rate is exceeded', async () => {
    await setPipeline('append', 'rejects: { max_reject_rate: 0.2 }');
    const file = path.join(home.dir, 'in/items.csv');
    await writeFile(file, GOOD + 'x-1,,1.00,RAW,true,11/02/2026\n');
    const r = await run({ files: [file] });
    expect(r.files[0]!.message).toMatch(/1 of 4 rows rejected \(25.0%\), above max_reject_rate 0.2/);
    expect(await items()).toEqual([]);
  });

  it('upserts on the key, the last row of a key in the file winning', async () => {
    await setPipeline('upsert');
    const file1 = path.join(home.dir, 'in/1.csv');
    await writeFile(file1, GOOD);
    await run({ files: [file1] });
    const file2 = path.join(home.dir, 'in/2.csv');
    await writeFile(
      file2,
      'item_code,description,price,category,active,created\na-1,Bolt v2,2.00,RAW,true,11/02/2026\na-1,Bolt v3,3.00,RAW,true,11/02/2026\na-9,New,9.00,FIN,true,11/09/2026\n',
    );
    const r = await run({ files: [file2] });
    expect(r.files[0]).toMatchObject({ status: 'loaded', rowsRead: 3, rowsLoaded: 2 });
    const rows = await items();
    expect(rows.map((i) => [i.sku, i.name, i.price])).toEqual([
      ['A-1', 'Bolt v3', '3.00'],
      ['A-2', 'Hex nut, zinc', '0.25'],
      ['A-3', 'Washer "M8"', '0.10'],
      ['A-9', 'New', '9.00'],
    ]);
  });

  it('replaces the table contents in replace mode', async () => {
    const file1 = path.join(home.dir, 'in/1.csv');
    await writeFile(file1, GOOD);
    await run({ files: [file1] });
    await setPipeline('replace');
    const file2 = path.join(home.dir, 'in/2.csv');
    await writeFile(
      file2,
      'item_code,description,price,category,active,created\nz-1,Only,1.00,RAW,true,11/02/2026\n',
    );
    await run({ files: [file2] });
    expect((await items()).map((i) => i.sku)).toEqual(['Z-1']);
  });

  it('leaves no row behind when COPY fails part-way through a file', async () => {
    const file = path.join(home.dir, 'in/items.csv');
    // The price passes validation (decimal(10,2)) but overflows the column, numeric(8,2), only in PostgreSQL.
    await writeFile(
      file,
      GOOD +
        'c-1,Too big,12345678.00,RAW,true,11/02/2026\n' +
        GOOD.split('\n').slice(1).join('\n').replace(/a-/g, 'd-'),
    );
    const r = await run({ files: [file] });
    expect(r.files[0]!.status).toBe('failed');
    expect(r.files[0]!.message).toMatch(/numeric field overflow/);
    expect(await items()).toEqual([]);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM runner.ingested_files')).rows[0].n).toBe(0);
  });

  it('refuses a sink table that lacks a mapped column, or does not exist, naming what it has', async () => {
    const file = path.join(home.dir, 'in/items.csv');
    await writeFile(file, GOOD);
    await db.pool.query('ALTER TABLE items RENAME COLUMN origin TO source');
    try {
      const r = await run({ files: [file] });
      expect(r.files[0]!.status).toBe('failed');
      expect(r.files[0]!.message).toBe(
        'table public.items has no column origin; its columns are: sku, name, price, category_id, active, created, source',
      );
    } finally {
      await db.pool.query('ALTER TABLE items RENAME COLUMN source TO origin');
    }
    await writeFile(
      path.join(home.dir, 'pipelines/items.yaml'),
      PIPELINE('append').replace('table: public.items', 'table: public.no_such_items'),
    );
    const missing = await run({ files: [file] });
    expect(missing.files[0]!.message).toBe('table public.no_such_items does not exist (run erp migrate?)');
    expect(await items()).toEqual([]);
  });

  it('writes nothing in a dry run', async () => {
    const file = path.join(home.dir, 'in/items.csv');
    await writeFile(file, GOOD + ',missing,1,RAW,true,11/02/2026\n');
    const r = await run({ files: [file], dryRun: true });
    expect(r.runId).toBeNull();
    expect(r.files[0]).toMatchObject({ status: 'validated', rowsRead: 4, rowsRejected: 1 });
    expect(await items()).toEqual([]);
    const counts = await db.pool.query(
      'SELECT (SELECT count(*) FROM runner.runs)::int AS runs, (SELECT count(*) FROM runner.ingested_files)::int AS ledger',
    );
    expect(counts.rows[0]).toEqual({ runs: 0, ledger: 0 });
  });
});

describe('encodings and line endings', () => {
  it('reads Latin-1, UTF-8 with BOM and CRLF files to the same rows', async () => {
    await writeFile(
      path.join(home.dir, 'pipelines/items.yaml'),
      PIPELINE('append').replace('format: { kind: csv }', 'format: { kind: csv, encoding: latin1 }'),
    );
    const text =
      'item_code,description,price,category,active,created\r\nl-1,Crème brûlée façon,1.00,RAW,true,11/02/2026\r\n';
    const latin1 = path.join(home.dir, 'in/latin1.csv');
    await writeFile(latin1, Buffer.from(text, 'latin1'));
    expect((await run({ files: [latin1] })).files[0]!.status).toBe('loaded');
    await setPipeline('append');
    const bom = path.join(home.dir, 'in/bom.csv');
    await writeFile(
      bom,
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text.replace('l-1', 'u-1'), 'utf8')]),
    );
    const r = await run({ files: [bom] });
    expect(r.files[0]!.status).toBe('loaded');
    expect((await items()).map((i) => [i.sku, i.name])).toEqual([
      ['L-1', 'Crème brûlée façon'],
      ['U-1', 'Crème brûlée façon'],
    ]);
  });
});
