import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { FIXTURE_PERIOD, UNAPPROVED_ROW, makeFixtureFiles } from '../scripts/make-fixtures.js';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';
import { modelOfFixtures, registerAsModel } from './helpers/fixture-payroll.js';
import { money } from './helpers/payroll-model.js';

const DIR = path.join('fixtures', 'company');
type Row = (string | null)[];

let db: TestDatabase;
test.beforeAll(async ({ db: d }) => {
  db = d;
});

/** Header and rows of a fixture CSV; empty fields become NULL. */
async function readCsv(name: string): Promise<{ columns: string[]; rows: Row[] }> {
  const records = parse(await readFile(path.join(DIR, name)), { bom: true }) as string[][];
  const [columns, ...rows] = records;
  return { columns: columns!, rows: rows.map((r) => r.map((v) => (v === '' ? null : v))) };
}

/** Multi-row INSERTs with untyped parameters, so PostgreSQL casts each value to its column's type. */
async function insertRows(
  client: pg.ClientBase,
  table: string,
  columns: string[],
  rows: Row[],
  onConflict = '',
): Promise<void> {
  for (let start = 0; start < rows.length; start += 500) {
    const chunk = rows.slice(start, start + 500);
    const values = chunk.map(
      (_, r) => `(${columns.map((_c, c) => `$${r * columns.length + c + 1}`).join(', ')})`,
    );
    await client.query(
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values.join(', ')} ${onConflict}`,
      chunk.flat(),
    );
  }
}

/** Runs a job SQL file the way the job runner does: `:'name'` becomes the quoted parameter value. */
async function runJob(
  name: string,
  params: Record<string, string>,
  client: pg.ClientBase = db.pool as never,
) {
  const sql = await readFile(path.join('sql', 'jobs', `${name}.sql`), 'utf8');
  const bound = sql.replace(/:'([a-z_]+)'/g, (_m, key: string) => {
    const value = params[key];
    if (value === undefined) throw new Error(`job ${name} needs parameter ${key}`);
    return `'${value.replace(/'/g, "''")}'`;
  });
  return (await client.query(bound)).rows;
}

async function loadTimesheets(name: string): Promise<void> {
  const { columns, rows } = await readCsv(name);
  const updates = columns
    .filter((c) => c !== 'employee_no' && c !== 'work_date')
    .map((c) => `${c} = EXCLUDED.${c}`);
  await insertRows(
    db.pool as never,
    'payroll.timesheets',
    columns,
    rows,
    `ON CONFLICT (employee_no, work_date) DO UPDATE SET ${updates.join(', ')}`,
  );
}

describe('fixtures/company', () => {
  it('are exactly what scripts/make-fixtures.ts generates', async () => {
    const files = await makeFixtureFiles();
    expect([...files.keys()].sort()).toEqual([
      'customers.csv',
      'employee-deductions.csv',
      'employees.xlsx',
      'inventory-opening.csv',
      'items-bad.csv',
      'items.csv',
      'opening-ytd-2026.csv',
      `timesheets-${FIXTURE_PERIOD}-unapproved.csv`,
      `timesheets-${FIXTURE_PERIOD}.csv`,
    ]);
    for (const [name, content] of files) {
      const committed = await readFile(path.join(DIR, name));
      expect(
        committed.equals(Buffer.from(content)),
        `${name} differs: run npx tsx scripts/make-fixtures.ts`,
      ).toBe(true);
    }
  });

  it('load into the ERP tables: 60 employees from the XLSX, items, customers, deductions', async () => {
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(path.join(DIR, 'employees.xlsx'));
    const ws = wb.getWorksheet('Employees')!;
    const header = (ws.getRow(1).values as unknown[]).slice(1) as string[];
    expect(header).toEqual([
      'employee_no',
      'first_name',
      'last_name',
      'email',
      'hire_date',
      'pay_type',
      'hourly_rate',
      'annual_salary',
      'department',
      'bank_routing',
      'bank_account',
    ]);
    const rows: Row[] = [];
    ws.eachRow((row, n) => {
      if (n === 1) return;
      rows.push(
        header.map((col, i) => {
          const v = row.getCell(i + 1).value;
          if (col === 'hire_date') {
            expect(v).toBeInstanceOf(Date); // a real date cell, not text
            return (v as Date).toISOString().slice(0, 10);
          }
          return v === null || v === undefined ? null : String(v);
        }),
      );
    });
    await insertRows(db.pool as never, 'hr.employees', header, rows);

    for (const [name, table] of [
      ['employee-deductions.csv', 'payroll.employee_deductions'],
      ['items.csv', 'sales.items'],
      ['customers.csv', 'sales.customers'],
    ] as const) {
      const csv = await readCsv(name);
      await insertRows(db.pool as never, table, csv.columns, csv.rows);
    }
    const { rows: counts } = await db.pool.query(`
      SELECT (SELECT count(*) FROM hr.employees)::int AS employees,
             (SELECT count(*) FROM hr.employees WHERE pay_type = 'salaried')::int AS salaried,
             (SELECT count(*) FROM hr.pay_rates)::int AS pay_rates,
             (SELECT count(*) FROM sales.items)::int AS items,
             (SELECT count(DISTINCT category) FROM sales.items)::int AS categories,
             (SELECT string_agg(customer_no || '=' || x12_qualifier || '/' || x12_id, ' ' ORDER BY customer_no)
                FROM sales.customers WHERE x12_id IS NOT NULL) AS partners`);
    expect(counts[0]).toEqual({
      employees: 60,
      salaried: 6,
      pay_rates: 60,
      items: 243,
      categories: 9,
      partners: 'PARTNERA=ZZ/ACMEBUY PARTNERB=01/987654321',
    });
    // The items the EDI fixtures order exist, at the prices they quote.
    const edi = await db.pool.query(
      `SELECT sku, uom, list_price FROM sales.items WHERE sku IN ('SKU-1001', 'SKU-1002', 'SKU-1003', 'SKU-2001', 'SKU-2002') ORDER BY sku`,
    );
    expect(edi.rows.map((r) => `${r.sku} ${r.uom} ${r.list_price}`)).toEqual([
      'SKU-1001 EA 12.50',
      'SKU-1002 CA 3.20',
      'SKU-1003 EA 0.15',
      'SKU-2001 PL 450.00',
      'SKU-2002 EA 7.99',
    ]);
  });

  it('items-bad.csv has its bad rows on the documented lines', async () => {
    const lines = (await readFile(path.join(DIR, 'items-bad.csv'), 'utf8')).split('\n');
    expect(lines[2]).toContain('12.5O'); // line 3: bad decimal
    expect(lines[3]!.startsWith(',')).toBe(true); // line 4: missing sku
    expect(lines[4]).toContain(',WIDGETS'); // line 5: unknown category
    expect(lines[6]!.split(',')).toHaveLength(6); // line 7: six columns
    expect(lines[7]).toContain('"1,299.00"'); // line 8: thousands separator
    expect(lines[9]!.split('"')).toHaveLength(2); // line 10: a quote that never closes
    expect(() => parse(lines.join('\n'), { relax_column_count: true })).toThrow(/Quote Not Closed/i);
  });

  it('payroll close on the fixtures: refused with the unapproved row, then closes with the corrected file', async () => {
    expect(await runJob('open_period', { period: FIXTURE_PERIOD })).toEqual([
      { period: '2026-11', status: 'opened' },
    ]);
    await loadTimesheets(`timesheets-${FIXTURE_PERIOD}-unapproved.csv`);
    // Totals cross-checked against an independent re-implementation of docs/payroll.md's rules.
    // Only the one unapproved row: the mid-month hire has timesheets, the December hire is not "missing".
    await expect(runJob('payroll_close', { period: FIXTURE_PERIOD })).rejects.toMatchObject({
      code: 'ERP01',
      message: `payroll period 2026-11 cannot close: unapproved timesheets: ${UNAPPROVED_ROW.employee_no} ${UNAPPROVED_ROW.work_date}`,
    });
    await loadTimesheets(`timesheets-${FIXTURE_PERIOD}.csv`);

    // The company went live in November: January–October wages come from the previous system.
    const opening = await readCsv('opening-ytd-2026.csv');
    await insertRows(db.pool as never, 'payroll.opening_ytd', opening.columns, opening.rows);

    const summary = await runJob('payroll_close', { period: FIXTURE_PERIOD });
    // Every payslip recomputed by test/helpers/payroll-model.ts, from the fixture files.
    const expected = await modelOfFixtures(db.pool, opening.rows);
    const cents = (xs: string[]) => money(xs.reduce((s, x) => s + BigInt(x.replace('.', '')), 0n));
    expect(summary).toEqual([
      {
        run_id: expect.any(String),
        period: '2026-11',
        employee_count: 59,
        total_gross: cents(expected.map((e) => e.gross)),
        total_taxes: cents(expected.map((e) => e.totalTaxes)),
        total_deductions: cents(expected.flatMap((e) => Object.values(e.deductions))),
        total_net: cents(expected.map((e) => e.net)),
        journal_entry_id: expect.any(String),
      },
    ]);
    expect(await registerAsModel(db.pool, FIXTURE_PERIOD)).toEqual(expected);

    const register = await runJob('payroll_register', { period: FIXTURE_PERIOD });
    expect(register).toHaveLength(59);
    const byNo = new Map(register.map((r) => [r.employee_no as string, r]));
    expect(byNo.has('E0059')).toBe(false); // hired 2026-12-01
    expect(register.filter((r) => Number(r.overtime_hours) > 0).length).toBeGreaterThan(10);
    expect(register.filter((r) => r.pay_type === 'salaried')).toHaveLength(6);
    expect(register.filter((r) => r.payment_method === 'check').map((r) => r.employee_no)).toEqual([
      'E0017',
      'E0042',
    ]);

    const lines = await runJob('payroll_register_lines', { period: FIXTURE_PERIOD });
    const codes = (no: string) =>
      lines
        .filter((l) => l.employee_no === no && l.kind === 'deduction')
        .map((l) => `${l.code} ${l.rate ?? l.amount}`);
    expect(codes('E0010')).not.toContainEqual(expect.stringMatching(/^HEALTH/)); // the plan ended 2026-10-31
    expect(codes('E0012')).toContain('RET401K 6.00000'); // raised from 4 % on 2026-11-01

    const journal = await runJob('payroll_journal', { period: FIXTURE_PERIOD });
    const sum = (rows: Record<string, unknown>[], col: string) =>
      rows.reduce((s, r) => s + Math.round(Number(r[col]) * 100), 0) / 100;
    const grossAndEmployer =
      Number(summary[0].total_gross) + Number(cents(expected.map((e) => e.totalEmployer)));
    expect(sum(journal, 'debit')).toBeCloseTo(grossAndEmployer, 2);
    expect(sum(journal, 'credit')).toBeCloseTo(grossAndEmployer, 2);

    const bank = await runJob('bank_payments', { period: FIXTURE_PERIOD });
    expect(bank).toHaveLength(57);
    const checks = register.filter((r) => r.payment_method === 'check');
    expect(sum(bank, 'amount')).toBeCloseTo(Number(summary[0].total_net) - sum(checks, 'net'), 2);

    const tb = await runJob('trial_balance', { period: FIXTURE_PERIOD });
    expect(sum(tb, 'debit')).toBe(sum(tb, 'credit'));
    expect(sum(tb, 'balance')).toBe(0);
    expect(tb.find((r) => r.account_code === '6000')).toMatchObject({
      debit: summary[0].total_gross,
      balance: summary[0].total_gross,
    });

    expect(await runJob('ar_aging', { as_of: '2026-11-30' })).toEqual([]);
    expect(await runJob('close_fiscal_period', { period: FIXTURE_PERIOD })).toEqual([
      { period: '2026-11', status: 'closed' },
    ]);
    await expect(runJob('payroll_close', { period: FIXTURE_PERIOD })).rejects.toThrow(/is already closed/);
  });
});
