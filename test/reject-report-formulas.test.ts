import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { PassThrough } from 'node:stream';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRejectsXlsx } from '../src/console/reject-report.js';
import { neutraliseFormula } from '../src/csv/writer.js';
import { RejectReport } from '../src/pipeline/reject-report.js';

/**
 * A reject report is opened in spreadsheets and its values come from partners: its text follows
 * the CSV writer's one formula policy (csv/writer.ts), read back here with csv-parse.
 */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'erp-rejects-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a reject report', () => {
  it('neutralises formulas as the CSV writer does, including a leading line feed and full-width forms', async () => {
    const values = ['=HYPERLINK("http://x","y")', '+1', '@SUM(A1)', '\n=1+1', '\uFF1D1+1', 'plain', '-12.50'];
    const report = new RejectReport(path.join(dir, 'rejects.csv'), 100);
    values.forEach((value, i) =>
      report.add({ file: '=evil.csv', line: i + 2, field: 'price', value, reason: 'expected a decimal' }),
    );
    const written = await report.close();
    const rows = parse(await readFile(written!, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r.value)).toEqual(values.map(neutraliseFormula));
    expect(rows.map((r) => r.value)).toEqual([
      `'=HYPERLINK("http://x","y")`,
      `'+1`,
      `'@SUM(A1)`,
      `'\n=1+1`,
      `'\uFF1D1+1`,
      'plain',
      `'-12.50`,
    ]);
    expect(rows[0]).toMatchObject({ file: `'=evil.csv`, line: '2', field: 'price' });
  });

  it('comes out of the console as XLSX with the same cells as its CSV, read by csv-parse and exceljs', async () => {
    const values = ['a "quoted", two-line\nvalue', '=1+1', '', 'naïve ünïcödé', 'x'.repeat(300)];
    const report = new RejectReport(path.join(dir, 'rejects-xlsx.csv'), 100);
    values.forEach((value, i) =>
      report.add({ file: 'in,coming.csv', line: i + 2, field: 'note', value, reason: `reason ${i}` }),
    );
    const written = (await report.close())!;
    const csvRows = parse(await readFile(written, 'utf8')) as string[][];
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const rows = await writeRejectsXlsx(written, out);
    expect(rows).toBe(values.length);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(Buffer.concat(chunks) as unknown as ArrayBuffer);
    const sheet = wb.getWorksheet('rejects')!;
    const sheetRows: string[][] = [];
    sheet.eachRow({ includeEmpty: true }, (row) => {
      sheetRows.push([1, 2, 3, 4, 5].map((c) => row.getCell(c).text));
    });
    expect(sheetRows).toEqual(csvRows);
  });
});
