import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { routingProblem } from '../src/nacha/records.js';
import { createNachaFormat, nachaFormatSchema, type NachaFormatConfig } from '../src/stages/format-nacha.js';
import type { Batch } from '../src/stages/types.js';
import { validateNacha } from './helpers/nacha-check.js';

const CONFIG: NachaFormatConfig = {
  kind: 'nacha',
  immediate_destination: '091000019',
  immediate_destination_name: 'Wells Fargo Bank',
  immediate_origin: '1234567890',
  immediate_origin_name: 'Acme Industrial Supply',
  company_name: 'Acme Industrial',
  entry_description: 'PAYROLL',
};
const COLUMNS = ['routing', 'account', 'account_type', 'amount', 'id', 'name', 'effective_date'];

async function write(rows: (string | null)[][], config: NachaFormatConfig = CONFIG): Promise<string> {
  const format = createNachaFormat(config, () => new Date('2026-12-01T09:30:00Z'));
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  async function* batches(): AsyncGenerator<Batch> {
    yield { columns: COLUMNS, rows, lines: rows.map((_, i) => i + 1) };
  }
  await format.write(COLUMNS, [], batches(), out);
  return Buffer.concat(chunks).toString('utf8');
}

describe('routing numbers', () => {
  it('need the ABA check digit and a Federal Reserve routing symbol', () => {
    expect(routingProblem('021000021')).toBeNull(); // 02: New York district
    expect(routingProblem('322271627')).toBeNull(); // 32: thrift
    expect(routingProblem('021000022')).toBe('fails the ABA check digit');
    // 3·(4+0+0) + 7·(5+0+0) + (0+0+3) = 50: a valid check digit, but 45 is no routing symbol.
    expect(routingProblem('450000003')).toMatch(/^starts with 45, not a Federal Reserve routing symbol/);
    expect(routingProblem('12345678')).toBe('is not nine digits');
  });

  it('the writer refuses a row whose routing number has no Federal Reserve prefix, naming the row', async () => {
    await expect(
      write([['450000003', '123456', 'checking', '100.00', 'E1', 'Ann Lee', '2026-12-01']]),
    ).rejects.toThrow(
      'bank file row 1 (E1), field routing: 450000003 starts with 45, not a Federal Reserve routing symbol (00–12, 21–32, 61–72, 80)',
    );
  });
});

describe('format nacha', () => {
  it('writes upper-case ASCII names, savings as 32, and fills the last block with 9s', async () => {
    const text = await write([
      ['021000021', '12345678', 'checking', '1500.25', 'E0001', 'Sánchez, Zoé', '2026-12-01'],
      ['322271627', '9876', 'savings', '99.10', 'E0002', "O'Brien, Liam", '2026-12-01'],
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines.map((l) => l.length)).toEqual(Array(10).fill(94));
    expect(lines[0]!.slice(23, 33)).toBe('2612010930'); // created 2026-12-01 09:30 UTC
    expect(lines[2]!.slice(0, 3)).toBe('622');
    expect(lines[2]!.slice(29, 39)).toBe('0000150025');
    expect(lines[2]!.slice(54, 76)).toBe('SANCHEZ, ZOE'.padEnd(22));
    expect(lines[3]!.slice(0, 3)).toBe('632');
    // Entry hash: 02100002 + 32227162 = 34327164.
    expect(lines[4]!.slice(10, 20)).toBe('0034327164');
    expect(lines.slice(6)).toEqual(Array(4).fill('9'.repeat(94)));
  });

  it('refuses an amount of zero, an unknown account type, and two pay dates in one file', async () => {
    await expect(write([['021000021', '1234', 'checking', '0.00', 'E1', 'A', '2026-12-01']])).rejects.toThrow(
      /bank file row 1 \(E1\), field amount: expected an amount above 0.00/,
    );
    await expect(write([['021000021', '1234', 'loan', '1.00', 'E1', 'A', '2026-12-01']])).rejects.toThrow(
      'bank file row 1 (E1), field account_type: expected checking or savings, not "loan"',
    );
    await expect(
      write([
        ['021000021', '1234', 'checking', '1.00', 'E1', 'A', '2026-12-01'],
        ['021000021', '1234', 'checking', '1.00', 'E2', 'B', '2026-12-02'],
      ]),
    ).rejects.toThrow(
      'bank file row 2 (E2): effective date 2026-12-02 differs from 2026-12-01; one file, one pay date',
    );
  });
});

describe('a balanced file (offset)', () => {
  const rows = [
    ['021000021', '12345678', 'checking', '1500.25', 'E0001', 'Ann Lee', '2026-12-01'],
    ['322271627', '9876', 'savings', '99.10', 'E0002', 'Bo Chan', '2026-12-01'],
    ['011000015', '555', 'checking', '0.65', 'E0003', 'Cy Dee', '2026-12-01'],
  ];
  const balanced = nachaFormatSchema.parse({
    ...CONFIG,
    offset: { routing: '091000019', account: '7700123', name: 'Acme payroll funding' },
  });

  it('ends the batch with one debit to the company account for the total credits; service class 200', async () => {
    const file = validateNacha(await write(rows, balanced));
    expect(file.serviceClass).toBe('200');
    // 1500.25 + 99.10 + 0.65 = 1600.00, debited once from the company's account.
    expect(file.credits).toBe(160000);
    expect(file.debits).toBe(160000);
    expect(file.entries.at(-1)).toEqual({
      code: '27',
      routing: '091000019',
      account: '7700123',
      cents: 160000,
      id: '1234567890',
    });
  });

  it('the entry hash counts the offset routing number too', async () => {
    const lines = (await write(rows, balanced)).split('\n');
    // 02100002 + 32227162 + 01100001 + 09100001 = 44527166.
    expect(lines[6]!.slice(0, 20)).toBe('8200000004' + '0044527166');
    expect(lines[7]!.slice(21, 31)).toBe('0044527166');
  });

  it('without offset the file stays credits only (220), with no debit', async () => {
    const file = validateNacha(await write(rows));
    expect(file.serviceClass).toBe('220');
    expect(file.debits).toBe(0);
    expect(file.entries.map((e) => e.code)).toEqual(['22', '32', '22']);
  });

  it('refuses an offset routing number a bank would refuse', async () => {
    const bad = nachaFormatSchema.parse({ ...CONFIG, offset: { routing: '450000003', account: '1' } });
    await expect(write(rows, bad)).rejects.toThrow(
      /^NACHA offset.routing 450000003 starts with 45, not a Federal Reserve routing symbol/,
    );
  });
});
