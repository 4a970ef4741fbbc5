import { expect } from 'vitest';

/** What {@link validateNacha} read from a file. */
export interface NachaCheck {
  entries: { code: string; routing: string; account: string; cents: number; id: string }[];
  effectiveDate: string;
  serviceClass: string;
  debits: number;
  credits: number;
  originator: { destination: string; companyId: string; odfi: string };
}

const CREDIT = ['22', '32'];
const DEBIT = ['27', '37'];

/**
 * A NACHA PPD validator written from the record layout, not from src/nacha/: record lengths and
 * order, blocking, counts, entry hash, debit and credit totals, service class against the entries,
 * routing check digits and Federal Reserve prefixes, trace numbers.
 */
export function validateNacha(text: string): NachaCheck {
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.slice(0, -1).split('\n');
  for (const [i, l] of lines.entries()) expect(l.length, `record ${i + 1}`).toBe(94);
  expect(lines.length % 10).toBe(0); // blocking factor 10
  const fill = lines.findIndex((l) => l === '9'.repeat(94));
  const records = fill === -1 ? lines : lines.slice(0, fill);
  expect(lines.slice(records.length).every((l) => l === '9'.repeat(94))).toBe(true);
  expect(lines.length - records.length).toBeLessThan(10);
  const types = records.map((l) => l[0]).join('');
  expect(types).toMatch(/^156+89$/);
  const [fh, bh] = records;
  const bc = records.at(-2)!;
  const fc = records.at(-1)!;
  // File header: priority 01, destination " " + routing, record size 094, blocking 10, format 1.
  expect(fh!.slice(1, 3)).toBe('01');
  expect(fh!.slice(3, 4)).toBe(' ');
  expect(fh!.slice(34, 37)).toBe('094');
  expect(fh!.slice(37, 39)).toBe('10');
  expect(fh!.slice(39, 40)).toBe('1');
  // Batch header: PPD, ODFI = the destination's first 8 digits, batch 1.
  expect(bh!.slice(50, 53)).toBe('PPD');
  expect(bh!.slice(79, 87)).toBe(fh!.slice(4, 12));
  expect(bh!.slice(87, 94)).toBe('0000001');
  const entries = records.slice(2, -2).map((l, i) => {
    const routing = l.slice(3, 12);
    const d = [...routing].map(Number);
    const sum = 3 * (d[0]! + d[3]! + d[6]!) + 7 * (d[1]! + d[4]! + d[7]!) + (d[2]! + d[5]! + d[8]!);
    expect(sum % 10, `entry ${i + 1} check digit`).toBe(0);
    const prefix = Number(routing.slice(0, 2));
    expect(
      prefix <= 12 || (prefix >= 21 && prefix <= 32) || (prefix >= 61 && prefix <= 72) || prefix === 80,
    ).toBe(true);
    expect([...CREDIT, ...DEBIT]).toContain(l.slice(1, 3));
    expect(l.slice(79, 94), 'trace number').toBe(bh!.slice(79, 87) + String(i + 1).padStart(7, '0'));
    return {
      code: l.slice(1, 3),
      routing,
      account: l.slice(12, 29).trimEnd(),
      cents: Number(l.slice(29, 39)),
      id: l.slice(39, 54).trimEnd(),
    };
  });
  const hash = String(
    entries.reduce((s, e) => s + Number(e.routing.slice(0, 8)), 0) % 10_000_000_000,
  ).padStart(10, '0');
  const total = (codes: string[]): number =>
    entries.filter((e) => codes.includes(e.code)).reduce((s, e) => s + e.cents, 0);
  const credits = total(CREDIT);
  const debits = total(DEBIT);
  // Service class: 220 credits only, 225 debits only, 200 both; the same in header and control.
  const serviceClass = debits === 0 ? '220' : credits === 0 ? '225' : '200';
  expect(bh!.slice(1, 4)).toBe(serviceClass);
  expect(bc.slice(1, 4)).toBe(serviceClass);
  // Batch control: count, hash, totals, company id and ODFI/batch as in the header.
  expect(Number(bc.slice(4, 10))).toBe(entries.length);
  expect(bc.slice(10, 20)).toBe(hash);
  expect(Number(bc.slice(20, 32))).toBe(debits);
  expect(Number(bc.slice(32, 44))).toBe(credits);
  expect(bc.slice(44, 54)).toBe(bh!.slice(40, 50));
  expect(bc.slice(79, 94)).toBe(bh!.slice(79, 94));
  // File control: batches, blocks, entries, hash, totals.
  expect(Number(fc.slice(1, 7))).toBe(1);
  expect(Number(fc.slice(7, 13))).toBe(lines.length / 10);
  expect(Number(fc.slice(13, 21))).toBe(entries.length);
  expect(fc.slice(21, 31)).toBe(hash);
  expect(Number(fc.slice(31, 43))).toBe(debits);
  expect(Number(fc.slice(43, 55))).toBe(credits);
  return {
    entries,
    effectiveDate: bh!.slice(69, 75),
    serviceClass,
    debits,
    credits,
    originator: { destination: fh!.slice(4, 13), companyId: bh!.slice(40, 50), odfi: bh!.slice(79, 87) },
  };
}
