import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
