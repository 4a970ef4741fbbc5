import path from 'node:path';
import ExcelJS from 'exceljs';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/** `trim` and `null_if` on a CSV or XLSX format clean values before validation sees them. */

const pipeline = (format: string, file: string): string => `
source: { kind: file, path: in/${file} }
format: ${format}
validate:
  fields:
    sku: { type: string, required: true, pattern: '[A-Z]{3}-[0-9]+' }
    price: { type: decimal, precision: 8, scale: 2 }
    qty: { type: int }
sink: { kind: postgres, table: public.stock }
`;

// Padded values a pattern and the types refuse as read, and placeholders that mean "no value".
const CSV = 'sku,price,qty\n  ABC-1 , 12.50 ,  3\nABC-2,N/A,-\nABC-3,"  ",4\n';

let db: TestDatabase;
let home: TestHome;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE stock (sku text PRIMARY KEY, price numeric(8,2), qty int)');
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet('Stock');
  ws.addRow(['sku', 'price', 'qty']);
  ws.addRow(['  ABC-1 ', ' 12.50 ', '  3']);
  ws.addRow(['ABC-2', 'N/A', '-']);
  ws.addRow(['ABC-3', '  ', 4]);
  await home.link(['sql']);
  await home.write({
    'pipelines/raw.yaml': pipeline('{ kind: csv }', 'stock.csv'),
    'pipelines/clean.yaml': pipeline(`{ kind: csv, trim: true, null_if: ['N/A', '-', ''] }`, 'stock.csv'),
    'pipelines/clean-xlsx.yaml': pipeline(
      `{ kind: xlsx, trim: true, null_if: ['N/A', '-', ''] }`,
      'stock.xlsx',
    ),
    'in/stock.csv': CSV,
  });
  await wb.xlsx.writeFile(path.join(home.dir, 'in/stock.xlsx'));
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE stock; TRUNCATE runner.ingested_files CASCADE');
});

async function run(name: string) {
  return runPipeline(testApp(db, home.dir), await loadPipeline(home.dir, name), {});
}

const stock = async (): Promise<unknown[]> =>
  (await db.pool.query('SELECT sku, price::text, qty FROM stock ORDER BY sku')).rows;

describe('format trim and null_if', () => {
  it('without them, validation refuses the padded values and the placeholders as read', async () => {
    const r = await run('raw');
    expect(r.rowsLoaded).toBe(0);
    expect(r.files[0]!.rejects.map((j) => [j.line, j.field, j.value])).toEqual([
      [2, 'sku', '  ABC-1 '],
      [2, 'price', ' 12.50 '],
      [2, 'qty', '  3'],
      [3, 'price', 'N/A'],
      [3, 'qty', '-'],
      [4, 'price', '  '],
    ]);
    expect(await stock()).toEqual([]);
  });

  it('a CSV format with trim and null_if loads every row, cleaned before validation', async () => {
    const r = await run('clean');
    expect(r.files[0]!.rejects).toEqual([]);
    expect(await stock()).toEqual([
      { sku: 'ABC-1', price: '12.50', qty: 3 },
      { sku: 'ABC-2', price: null, qty: null },
      { sku: 'ABC-3', price: null, qty: 4 },
    ]);
  });

  it('an XLSX format cleans the same way', async () => {
    const r = await run('clean-xlsx');
    expect(r.files[0]!.rejects).toEqual([]);
    expect(await stock()).toEqual([
      { sku: 'ABC-1', price: '12.50', qty: 3 },
      { sku: 'ABC-2', price: null, qty: null },
      { sku: 'ABC-3', price: null, qty: 4 },
    ]);
  });
});
