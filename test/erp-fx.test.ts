import { describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

/*
 * Realized exchange differences: a EUR invoice posted at one rate and paid at others. The expected
 * figures are computed here in integer cents from the declared rates, not read from the SQL.
 */
let db: TestDatabase;

const RATES = { invoice: '1.08350000', up: '1.09200000', down: '1.07000000' };

/** cents × rate, rounded half away from zero to the cent, in integer arithmetic. */
function atRate(cents: bigint, rate: string): bigint {
  const [whole, frac = ''] = rate.split('.');
  const scaled = BigInt(whole! + frac.padEnd(8, '0')); // rate × 10^8
  const product = cents * scaled; // cents × 10^8
  return (product + 50_000_000n) / 100_000_000n;
}
const money = (cents: bigint): string =>
  `${cents < 0n ? '-' : ''}${(cents < 0n ? -cents : cents) / 100n}.${String((cents < 0n ? -cents : cents) % 100n).padStart(2, '0')}`;

async function balance(account: string): Promise<string> {
  const { rows } = await db.pool.query<{ b: string }>(
    `SELECT coalesce(sum(debit - credit), 0)::numeric(14,2)::text AS b FROM gl.journal_lines WHERE account_code = $1`,
    [account],
  );
  return rows[0]!.b;
}

let invoiceId = '';

test.beforeAll(async ({ db: d }) => {
  db = d;
  await db.pool.query(`
    SELECT gl.open_period('2026-11'), gl.open_period('2026-12');
    INSERT INTO sales.customers (customer_no, name, payment_terms_days) VALUES ('EU100', 'Rhein Handel GmbH', 30);
    INSERT INTO sales.items (sku, description, uom, list_price, category) VALUES
      ('SKU-1003', 'Washer', 'EA', 15.00, 'FASTENERS');
    INSERT INTO inv.stock_movements (sku, moved_at, quantity, reason, unit_cost, source_ref) VALUES
      ('SKU-1003', '2026-11-01', 1000, 'opening', 9.00, 'count 2026-10-31');
    INSERT INTO gl.exchange_rates (currency, rate_date, rate) VALUES
      ('EUR', '2026-11-01', ${RATES.invoice}), ('EUR', '2026-11-20', ${RATES.up}), ('EUR', '2026-12-01', ${RATES.down});`);
  const { rows } = await db.pool.query<{ id: string }>(`
    WITH o AS (INSERT INTO sales.orders (customer_no, customer_po, currency) VALUES ('EU100', 'EU-1', 'EUR') RETURNING id),
         l AS (INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price)
               SELECT id, 1, 'SKU-1003', 300, 'EA', 15.00 FROM o)
    INSERT INTO sales.shipments (order_id, ship_date, carrier) SELECT id, '2026-11-10', 'UPSN' FROM o RETURNING id`);
  await db.pool.query(
    `INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity)
     SELECT s.id, 1, s.order_id, 1, 300 FROM sales.shipments s WHERE s.id = $1`,
    [rows[0]!.id],
  );
  const inv = await db.pool.query<{ id: string }>(
    `SELECT sales.invoice_shipment($1, '2026-11-10')::text AS id`,
    [rows[0]!.id],
  );
  invoiceId = inv.rows[0]!.id;
});

describe('realized exchange gain and loss', () => {
  // 300 × 15.00 = EUR 4,500.00, receivable at the invoice's rate.
  const invoiceEur = 450_000n;
  const receivable = atRate(invoiceEur, RATES.invoice);

  it('the invoice posts the receivable at its rate', async () => {
    const { rows } = await db.pool.query(
      `SELECT functional_amount::text AS usd, exchange_rate::text AS rate FROM sales.invoices WHERE id = $1`,
      [invoiceId],
    );
    expect(rows[0]).toEqual({ usd: money(receivable), rate: RATES.invoice });
    expect(await balance('1200')).toBe(money(receivable));
  });

  it('a part payment at a higher rate: cash at the day’s rate, receivable relieved at the invoice’s, the gain to 4910', async () => {
    const eur = 100_000n;
    const cash = atRate(eur, RATES.up);
    const relieved = atRate(eur, RATES.invoice);
    const { rows } = await db.pool.query<{ entry: string }>(
      `INSERT INTO sales.payments (invoice_id, received_on, amount, reference) VALUES ($1, '2026-11-21', 1000.00, 'SEPA-1')
       RETURNING journal_entry_id::text AS entry, exchange_rate::text AS rate, cash_amount::text AS cash,
                 functional_amount::text AS relieved, exchange_difference::text AS diff`,
      [invoiceId],
    );
    expect(rows[0]).toMatchObject({
      rate: RATES.up,
      cash: money(cash),
      relieved: money(relieved),
      diff: money(cash - relieved),
    });
    expect(cash - relieved).toBeGreaterThan(0n);
    const { rows: lines } = await db.pool.query(
      `SELECT account_code AS account, debit::text, credit::text, currency, fx_amount::text, fx_rate::text
         FROM gl.journal_lines WHERE entry_id = $1 ORDER BY line_no`,
      [rows[0]!.entry],
    );
    expect(lines).toEqual([
      {
        account: '1000',
        debit: money(cash),
        credit: '0.00',
        currency: 'EUR',
        fx_amount: '1000.00',
        fx_rate: RATES.up,
      },
      {
        account: '1200',
        debit: '0.00',
        credit: money(relieved),
        currency: 'EUR',
        fx_amount: '1000.00',
        fx_rate: RATES.invoice,
      },
      {
        account: '4910',
        debit: '0.00',
        credit: money(cash - relieved),
        currency: null,
        fx_amount: null,
        fx_rate: null,
      },
    ]);
    expect(await balance('4910')).toBe(money(-(cash - relieved)));
  });

  it('the rest at a lower rate: the loss to 6910; the invoice and the receivable are cleared to the cent', async () => {
    const eur = invoiceEur - 100_000n;
    const cash = atRate(eur, RATES.down);
    // The last payment relieves what is left of the receivable, not eur × the invoice rate.
    const relieved = receivable - atRate(100_000n, RATES.invoice);
    const { rows } = await db.pool.query(
      `INSERT INTO sales.payments (invoice_id, received_on, amount) VALUES ($1, '2026-12-03', $2)
       RETURNING cash_amount::text AS cash, functional_amount::text AS relieved, exchange_difference::text AS diff`,
      [invoiceId, money(eur)],
    );
    expect(rows[0]).toEqual({ cash: money(cash), relieved: money(relieved), diff: money(cash - relieved) });
    expect(cash - relieved).toBeLessThan(0n);
    expect(await balance('6910')).toBe(money(relieved - cash));
    expect(await balance('1200')).toBe('0.00');
    const { rows: ar } = await db.pool.query(
      `SELECT balance::text FROM sales.ar_subledger WHERE invoice_id = $1`,
      [invoiceId],
    );
    expect(ar).toEqual([{ balance: '0.00' }]);
  });

  it('the ledger ties: debits equal credits, cash is what came in, the net exchange result is cash less the receivable', async () => {
    const { rows } = await db.pool.query(
      `SELECT sum(debit)::text AS d, sum(credit)::text AS c FROM gl.journal_lines`,
    );
    expect(rows[0]!.d).toBe(rows[0]!.c);
    const cashIn = atRate(100_000n, RATES.up) + atRate(invoiceEur - 100_000n, RATES.down);
    expect(await balance('1000')).toBe(money(cashIn));
    const net =
      BigInt((await balance('4910')).replace('.', '')) + BigInt((await balance('6910')).replace('.', ''));
    // Gains are credits (negative balance), losses debits: together they are receivable − cash.
    expect(net).toBe(receivable - cashIn);
  });

  it('a payment in the functional currency posts no exchange difference', async () => {
    const { rows } = await db.pool.query<{ entry: string }>(`
      WITH o AS (INSERT INTO sales.orders (customer_no, customer_po) VALUES ('EU100', 'US-1') RETURNING id),
           l AS (INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price) SELECT id, 1, 'SKU-1003', 2, 'EA', 15.00 FROM o)
      INSERT INTO sales.shipments (order_id, ship_date, carrier) SELECT id, '2026-12-02', 'UPSN' FROM o RETURNING id::text AS entry`);
    await db.pool.query(
      `INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity)
       SELECT s.id, 1, s.order_id, 1, 2 FROM sales.shipments s WHERE s.id = $1`,
      [rows[0]!.entry],
    );
    const before = [await balance('4910'), await balance('6910')];
    const { rows: p } = await db.pool.query(
      `INSERT INTO sales.payments (invoice_id, received_on, amount)
       SELECT sales.invoice_shipment($1, '2026-12-02'), '2026-12-04', 30.00
       RETURNING exchange_rate::text AS rate, cash_amount::text AS cash, exchange_difference::text AS diff`,
      [rows[0]!.entry],
    );
    expect(p[0]).toEqual({ rate: '1.00000000', cash: '30.00', diff: '0.00' });
    expect([await balance('4910'), await balance('6910')]).toEqual(before);
  });
});
