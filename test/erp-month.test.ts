import { mkdir, readFile, symlink } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.js';
import { decryptValue, loadKeyring } from '../src/compliance/keys.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { executeRun } from '../src/jobs/execute.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { validateNacha } from './helpers/nacha-check.js';

/*
 * A month of the demo company's activity through the shipped jobs and pipelines, on the fixtures:
 * master data, opening year-to-date wages and opening stock at cost, sales orders (one in EUR)
 * shipped and invoiced by the ship-and-invoice job, customer payments, the payroll close (NACHA bank
 * file, disbursement) and the month-end close. Then the books must tie: the trial balance, AR and
 * inventory against their control accounts, net pay payable cleared. The bank file is checked by a
 * NACHA validator written here.
 */
let db: TestDatabase;
let home: TestHome;
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

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await home.link(['sql']);
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
    expect(file.serviceClass).toBe('220');
    expect(file.originator).toEqual({ destination: '091000019', companyId: '1234567890', odfi: '09100001' });
  });

  it('keeps the CSV bank file as an option: the same payments as the NACHA entries', async () => {
    await run('bank-payments-csv-export', { period: '2026-11' });
    const rows = parse(await readFile(path.join(home.dir, 'var/exports/bank-payments-2026-11.csv'), 'utf8'), {
      columns: true,
    }) as Record<string, string>[];
    const nacha = validateNacha(
      await readFile(path.join(home.dir, 'var/exports/bank-payments-2026-11.ach'), 'utf8'),
    );
    expect(Object.keys(rows[0]!)).toEqual(['employee_no', 'name', 'routing', 'account', 'amount']);
    expect(
      rows.map((r) => [r.employee_no, r.routing, r.account, Math.round(Number(r.amount) * 100)]),
    ).toEqual(nacha.entries.map((e) => [e.id, e.routing, e.account, e.cents]));
  });
});
