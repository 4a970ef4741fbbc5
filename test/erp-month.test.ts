import { mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.js';
import { decryptValue, loadKeyring } from '../src/compliance/keys.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { executeRun } from '../src/jobs/execute.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { makeHome } from './helpers/home.js';

/*
 * A month of the demo company's activity through the shipped jobs and pipelines, on the fixtures:
 * master data, opening year-to-date wages and opening stock at cost, sales orders (one in EUR)
 * shipped and invoiced by the ship-and-invoice job, customer payments, the payroll close (NACHA bank
 * file, disbursement) and the month-end close. Then the books must tie: the trial balance, AR and
 * inventory against their control accounts, net pay payable cleared. The bank file is checked by a
 * NACHA validator written here.
 */
let db: TestDatabase;
let home: { dir: string; remove(): Promise<void> };
let app: App;

const EUR_RATE = '1.08350000';

async function run(name: string, params: Record<string, string> = {}, files?: string[]) {
  const runnable = await resolveRunnable(app.home, name);
  const outcome = await executeRun(app, {
    runId: null,
    runnable,
    params: resolveParams(runnable.job, params),
    dryRun: false,
    files,
    signal: new AbortController().signal,
  });
  expect(outcome.error, `${name}: ${outcome.error}`).toBeNull();
  expect(outcome.status).toBe('succeeded');
  return outcome;
}

const one = async (sql: string, params: unknown[] = []) => (await db.pool.query(sql, params)).rows[0];

beforeAll(async () => {
  db = await createTestDatabase('erp_month');
  home = await makeHome({});
  for (const dir of ['pipelines', 'jobs', 'mappings', 'fixtures'])
    await symlink(path.resolve(dir), path.join(home.dir, dir));
  await mkdir(path.join(home.dir, 'var', 'exports'), { recursive: true });
  // The fixtures are a link out of the home: their real directory is declared as an input root.
  app = createApp(
    { ...process.env, DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_INPUT_DIRS: path.resolve('fixtures') },
    pino({ level: 'silent' }),
  );
}, 60_000);
afterAll(async () => {
  await app?.close();
  await db?.drop();
  await home?.remove();
});

describe('a month of activity', () => {
  it('runs: imports, opening balances, sales in USD and EUR, payments, payroll, month-end close', async () => {
    await run('open-period', { period: '2026-11' });
    for (const p of [
      'customers',
      'items',
      'employees',
      'employee-deductions',
      'opening-ytd',
      'inventory-opening',
    ])
      await run(p);
    await run('timesheets', {}, ['fixtures/company/timesheets-2026-11.csv']);
    // One employee banks on a savings account (NACHA transaction code 32).
    await db.pool.query(`UPDATE hr.employees SET bank_account_type = 'savings' WHERE employee_no = 'E0003'`);

    // Orders: two in USD, one in EUR at the rate declared for the invoice date.
    await db.pool.query(
      `INSERT INTO gl.exchange_rates (currency, rate_date, rate, declared_by) VALUES ('EUR', '2026-11-01', $1, 'treasury')`,
      [EUR_RATE],
    );
    const orders = [
      [
        'PARTNERA',
        'USD',
        'PO-M1',
        [
          ['SKU-1001', 10, 12.5],
          ['SKU-1002', 6, 3.2],
        ],
      ],
      [
        'PARTNERB',
        'USD',
        'PO-M2',
        [
          ['SKU-2001', 2, 450],
          ['SKU-2002', 24, 7.99],
        ],
      ],
      ['PARTNERA', 'EUR', 'PO-M3', [['SKU-1003', 300, 15]]],
    ] as const;
    for (const [customer, currency, po, lines] of orders) {
      const { id } = await one(
        `INSERT INTO sales.orders (customer_no, customer_po, order_date, currency) VALUES ($1, $2, '2026-11-10', $3) RETURNING id`,
        [customer, po, currency],
      );
      for (const [i, [sku, qty, price]] of lines.entries())
        await db.pool.query(
          `INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price)
           SELECT $1, $2, sku, $3, uom, $4 FROM sales.items WHERE sku = $5`,
          [id, i + 1, qty, price, sku],
        );
    }
    await run('ship-and-invoice', { ship_date: '2026-11-20' });
    // Payments: PO-M1 in full, PO-M3 (EUR) in part.
    await db.pool.query(`
      INSERT INTO sales.payments (invoice_id, received_on, amount, reference)
      SELECT i.id, DATE '2026-11-25', b.balance, 'lockbox 1' FROM sales.invoices i JOIN sales.orders o ON o.id = i.order_id
        JOIN sales.invoice_balances b ON b.invoice_id = i.id WHERE o.customer_po = 'PO-M1'
      UNION ALL
      SELECT i.id, DATE '2026-11-28', 1000.00, 'wire 77' FROM sales.invoices i JOIN sales.orders o ON o.id = i.order_id
       WHERE o.customer_po = 'PO-M3';`);

    await run('payroll-close', { period: '2026-11' });
    await run('month-end-close', { period: '2026-11' });
  }, 120_000);

  it('ties: trial balance zero, AR = 1200, inventory at cost = 1300, net pay payable cleared', async () => {
    const gl = async (account: string) =>
      (
        await one(
          `SELECT coalesce(sum(debit - credit), 0)::numeric(14,2)::text AS b FROM gl.journal_lines WHERE account_code = $1`,
          [account],
        )
      ).b as string;
    const tb = await one(
      `SELECT sum(debit)::text AS d, sum(credit)::text AS c, sum(balance)::text AS b FROM gl.trial_balance WHERE period = '2026-11'`,
    );
    expect(tb.d).toBe(tb.c);
    expect(tb.b).toBe('0.00');
    const ar = await one(
      `SELECT sum(balance)::numeric(14,2)::text AS v, count(*)::int AS n FROM sales.ar_subledger`,
    );
    expect(ar.n).toBe(3);
    expect(Number(ar.v)).toBeGreaterThan(0);
    expect(ar.v).toBe(await gl('1200'));
    const stock = await one(`SELECT sum(value)::numeric(14,2)::text AS v FROM inv.valuation`);
    expect(Number(stock.v)).toBeGreaterThan(0);
    expect(stock.v).toBe(await gl('1300'));
    // Shipments took their cost out of inventory into cost of goods sold.
    const cogs = await one(
      `SELECT (-sum(value))::numeric(14,2)::text AS v FROM inv.stock_movements WHERE reason = 'shipment'`,
    );
    expect(Number(cogs.v)).toBeGreaterThan(0);
    expect(cogs.v).toBe(await gl('5000'));
    expect(await gl('2100')).toBe('0.00');
    // Employer taxes were accrued.
    const employer = await one(
      `SELECT total_employer_taxes::text AS t FROM payroll.runs WHERE period = '2026-11'`,
    );
    expect(Number(employer.t)).toBeGreaterThan(0);
    expect(employer.t).toBe(await gl('6100'));
    expect(await one(`SELECT status FROM gl.fiscal_periods WHERE period = '2026-11'`)).toEqual({
      status: 'closed',
    });
  });

  it('invoices the EUR order in EUR and posts it in USD at the declared rate, the rate recorded', async () => {
    const inv = await one(`
      SELECT i.currency, i.exchange_rate::text AS rate, i.functional_amount::text AS usd, b.amount::text AS eur, i.journal_entry_id
        FROM sales.invoices i JOIN sales.orders o ON o.id = i.order_id JOIN sales.invoice_balances b ON b.invoice_id = i.id
       WHERE o.customer_po = 'PO-M3'`);
    // 300 × 15.00 = 4500.00 EUR; × 1.0835 = 4875.75 USD.
    expect(inv).toMatchObject({ currency: 'EUR', rate: EUR_RATE, eur: '4500.00', usd: '4875.75' });
    const lines = await db.pool.query(
      `SELECT account_code, debit::text, credit::text, currency, fx_amount::text, fx_rate::text
         FROM gl.journal_lines WHERE entry_id = $1 ORDER BY line_no`,
      [inv.journal_entry_id],
    );
    expect(lines.rows).toEqual([
      {
        account_code: '1200',
        debit: '4875.75',
        credit: '0.00',
        currency: 'EUR',
        fx_amount: '4500.00',
        fx_rate: EUR_RATE,
      },
      {
        account_code: '4000',
        debit: '0.00',
        credit: '4875.75',
        currency: 'EUR',
        fx_amount: '4500.00',
        fx_rate: EUR_RATE,
      },
    ]);
    // The part payment of 1000.00 EUR posts 1083.50 USD at the invoice's rate.
    const pay = await one(
      `SELECT p.functional_amount::text AS usd FROM sales.payments p JOIN sales.invoices i ON i.id = p.invoice_id
         JOIN sales.orders o ON o.id = i.order_id WHERE o.customer_po = 'PO-M3'`,
    );
    expect(pay.usd).toBe('1083.50');
  });

  it('writes a NACHA file a validator accepts, with the bank payments as its entries', async () => {
    const text = await readFile(path.join(home.dir, 'var/exports/bank-payments-2026-11.ach'), 'utf8');
    const file = validateNacha(text);
    const { rows: bank } = await db.pool.query(
      `SELECT employee_no, routing, account, account_type, amount FROM payroll.bank_payments WHERE period = '2026-11' ORDER BY employee_no`,
    );
    expect(bank).toHaveLength(57);
    expect(file.entries).toEqual(
      bank.map((b) => ({
        code: b.account_type === 'savings' ? '32' : '22',
        routing: b.routing,
        // Encrypted at rest; the bank file is written clear.
        account: decryptValue(loadKeyring()!, b.account, 'payroll.bank_payments.account'),
        cents: Math.round(Number(b.amount) * 100),
        id: b.employee_no,
      })),
    );
    expect(file.entries.filter((e) => e.code === '32').map((e) => e.id)).toEqual(['E0003']);
    // Paid on the first weekday after the period: Tuesday 1 December 2026.
    expect(file.effectiveDate).toBe('261201');
    expect(file.originator).toEqual({ destination: '091000019', companyId: '1234567890', odfi: '09100001' });
  });
});

interface NachaCheck {
  entries: { code: string; routing: string; account: string; cents: number; id: string }[];
  effectiveDate: string;
  originator: { destination: string; companyId: string; odfi: string };
}

/** A NACHA PPD validator: record lengths and order, blocking, counts, entry hash, totals, check digits. */
function validateNacha(text: string): NachaCheck {
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
  // Batch header: credits only (220), PPD, effective date, ODFI, batch 1.
  expect(bh!.slice(1, 4)).toBe('220');
  expect(bh!.slice(50, 53)).toBe('PPD');
  expect(bh!.slice(79, 87)).toBe(fh!.slice(4, 12));
  const entries = records.slice(2, -2).map((l, i) => {
    const routing = l.slice(3, 12);
    const d = [...routing].map(Number);
    const sum = 3 * (d[0]! + d[3]! + d[6]!) + 7 * (d[1]! + d[4]! + d[7]!) + (d[2]! + d[5]! + d[8]!);
    expect(sum % 10, `entry ${i + 1} check digit`).toBe(0);
    const prefix = Number(routing.slice(0, 2));
    expect(
      prefix <= 12 || (prefix >= 21 && prefix <= 32) || (prefix >= 61 && prefix <= 72) || prefix === 80,
    ).toBe(true);
    expect(['22', '32']).toContain(l.slice(1, 3));
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
  const credits = entries.reduce((s, e) => s + e.cents, 0);
  // Batch control: count, hash, debits 0, credits, company id and ODFI as in the header.
  expect(bc.slice(1, 4)).toBe('220');
  expect(Number(bc.slice(4, 10))).toBe(entries.length);
  expect(bc.slice(10, 20)).toBe(hash);
  expect(Number(bc.slice(20, 32))).toBe(0);
  expect(Number(bc.slice(32, 44))).toBe(credits);
  expect(bc.slice(44, 54)).toBe(bh!.slice(40, 50));
  expect(bc.slice(79, 94)).toBe(bh!.slice(79, 94));
  // File control: batches, blocks, entries, hash, totals.
  expect(Number(fc.slice(1, 7))).toBe(1);
  expect(Number(fc.slice(7, 13))).toBe(lines.length / 10);
  expect(Number(fc.slice(13, 21))).toBe(entries.length);
  expect(fc.slice(21, 31)).toBe(hash);
  expect(Number(fc.slice(31, 43))).toBe(0);
  expect(Number(fc.slice(43, 55))).toBe(credits);
  return {
    entries,
    effectiveDate: bh!.slice(69, 75),
    originator: { destination: fh!.slice(4, 13), companyId: bh!.slice(40, 50), odfi: bh!.slice(79, 87) },
  };
}
