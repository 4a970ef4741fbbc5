import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

let db: TestDatabase;
test.beforeAll(async ({ db: d }) => {
  db = d;
  await db.pool.query(`
    SELECT gl.open_period('2026-11');
    INSERT INTO sales.customers (customer_no, name, x12_qualifier, x12_id, payment_terms_days) VALUES
      ('PARTNERA', 'Acme Corp', 'ZZ', 'ACMEBUY', 30),
      ('C1001', 'Summit Facilities LLC', NULL, NULL, 15);
    INSERT INTO sales.items (sku, description, uom, list_price, category) VALUES
      ('SKU-1001', 'Steel bolt M8', 'EA', 12.50, 'FASTENERS'),
      ('SKU-2002', 'Resin bin', 'EA', 7.99, 'STORAGE');
    INSERT INTO inv.stock_movements (sku, moved_at, quantity, reason, unit_cost, source_ref) VALUES
      ('SKU-1001', '2026-11-01', 500, 'opening', 7.25, 'count 2026-10-31'),
      ('SKU-2002', '2026-11-01', 40, 'opening', 4.10, 'count 2026-10-31');`);
});

describe('sales orders, shipments and invoices', () => {
  let orderId: string;

  it('takes one order per customer PO', async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      `INSERT INTO sales.orders (customer_no, customer_po, order_date, source) VALUES ('PARTNERA', 'PO-10001', '2026-11-02', 'edi') RETURNING id`,
    );
    orderId = rows[0]!.id;
    await db.pool.query(
      `INSERT INTO sales.order_lines (order_id, line_no, sku, customer_line_ref, quantity, uom, unit_price) VALUES
         ($1, 1, 'SKU-1001', '1', 10, 'EA', 12.50), ($1, 2, 'SKU-2002', '2', 24, 'EA', 7.99)`,
      [orderId],
    );
    await expect(
      db.pool.query(`INSERT INTO sales.orders (customer_no, customer_po) VALUES ('PARTNERA', 'PO-10001')`),
    ).rejects.toMatchObject({ code: '23505', constraint: 'orders_customer_po_once' });
    // The same PO number from another customer is another order.
    await db.pool.query(`INSERT INTO sales.orders (customer_no, customer_po) VALUES ('C1001', 'PO-10001')`);
    const amounts = await db.pool.query(
      `SELECT line_no, amount FROM sales.order_lines WHERE order_id = $1 ORDER BY line_no`,
      [orderId],
    );
    // 10 × 12.50 = 125.00; 24 × 7.99 = 191.76
    expect(amounts.rows).toEqual([
      { line_no: 1, amount: '125.00' },
      { line_no: 2, amount: '191.76' },
    ]);
  });

  it('ships no more than was ordered, takes the stock out and moves the order status', async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      `INSERT INTO sales.shipments (order_id, ship_date, carrier) VALUES ($1, '2026-11-05', 'UPSN') RETURNING id`,
      [orderId],
    );
    const shipmentId = rows[0]!.id;
    await expect(
      db.pool.query(
        `INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity) VALUES ($1, 1, $2, 1, 11)`,
        [shipmentId, orderId],
      ),
    ).rejects.toThrow(`order ${orderId} line 1 would ship 11.000 but only 10.000 were ordered`);
    await db.pool.query(
      `INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity) VALUES ($1, 1, $2, 1, 10), ($1, 2, $2, 2, 20)`,
      [shipmentId, orderId],
    );
    const status = await db.pool.query(`SELECT status FROM sales.orders WHERE id = $1`, [orderId]);
    expect(status.rows[0].status).toBe('partially_shipped');
    const onHand = await db.pool.query(`SELECT sku, location, quantity FROM inv.on_hand ORDER BY sku`);
    // 500 − 10 = 490; 40 − 20 = 20
    expect(onHand.rows).toEqual([
      { sku: 'SKU-1001', location: 'MAIN', quantity: '490.000' },
      { sku: 'SKU-2002', location: 'MAIN', quantity: '20.000' },
    ]);
  });

  it('refuses to ship more than is on hand; a shipment takes its cost at the moving average into COGS', async () => {
    const { rows } = await db.pool.query<{ order_id: string; shipment_id: string }>(`
      WITH o AS (INSERT INTO sales.orders (customer_no, customer_po) VALUES ('C1001', 'PO-STOCK') RETURNING id),
           l AS (INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price)
                 SELECT id, 1, 'SKU-2002', 25, 'EA', 7.99 FROM o)
      INSERT INTO sales.shipments (order_id, ship_date, carrier) SELECT id, '2026-11-05', 'UPSN' FROM o
      RETURNING order_id::text, id::text AS shipment_id`);
    const { order_id: order, shipment_id: shipment } = rows[0]!;
    const ship = (): Promise<unknown> =>
      db.pool.query(
        `INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity) VALUES ($1, 1, $2, 1, 25)`,
        [shipment, order],
      );
    // 40 opening − 20 shipped above = 20 on hand.
    await expect(ship()).rejects.toThrow('25.000 of SKU-2002 cannot leave MAIN: only 20.000 on hand');
    await db.pool.query(
      `INSERT INTO inv.stock_movements (sku, moved_at, quantity, reason, unit_cost, source_ref)
       VALUES ('SKU-2002', '2026-11-05', 10, 'receipt', 5.00, 'PO-V1')`,
    );
    await ship();
    // Moving average: (20 × 4.10 + 10 × 5.00) / 30 = 132.00 / 30 = 4.40; 25 out at 4.40 = 110.00.
    const cost = (20 * 410 + 10 * 500) / 30;
    const out = Math.round(25 * cost) / 100;
    const { rows: m } = await db.pool.query(
      `SELECT m.value::text, jl.account_code AS account, jl.debit::text
         FROM inv.stock_movements m JOIN gl.journal_lines jl ON jl.entry_id = m.journal_entry_id AND jl.debit > 0
        WHERE m.reason = 'shipment' AND m.sku = 'SKU-2002' AND m.quantity = -25`,
    );
    expect(m).toEqual([{ value: (-out).toFixed(2), account: '5000', debit: out.toFixed(2) }]);
    const { rows: tie } = await db.pool.query(
      `SELECT (SELECT sum(value) FROM inv.valuation)::numeric(14,2)::text AS stock,
              (SELECT sum(debit - credit) FROM gl.journal_lines WHERE account_code = '1300')::numeric(14,2)::text AS gl`,
    );
    expect(tie[0].stock).toBe(tie[0].gl);
  });

  it('invoices a shipment once, due after the terms, posted to receivables and revenue', async () => {
    const ship = await db.pool.query<{ id: string }>(`SELECT id FROM sales.shipments WHERE order_id = $1`, [
      orderId,
    ]);
    const shipmentId = ship.rows[0]!.id;
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT sales.invoice_shipment($1, '2026-11-06') AS id`,
      [shipmentId],
    );
    const invoice = await db.pool.query(
      `SELECT i.invoice_no, i.due_date::text AS due, b.amount, b.balance FROM sales.invoices i
         JOIN sales.invoice_balances b ON b.invoice_id = i.id WHERE i.id = $1`,
      [rows[0]!.id],
    );
    // 10 × 12.50 + 20 × 7.99 = 125.00 + 159.80 = 284.80, due 30 days after 2026-11-06.
    expect(invoice.rows[0]).toEqual({
      invoice_no: expect.stringMatching(/^INV\d{6}$/),
      due: '2026-12-06',
      amount: '284.80',
      balance: '284.80',
    });
    const je = await db.pool.query(
      `SELECT jl.account_code, jl.debit, jl.credit FROM sales.invoices i JOIN gl.journal_lines jl ON jl.entry_id = i.journal_entry_id
        WHERE i.id = $1 ORDER BY jl.line_no`,
      [rows[0]!.id],
    );
    expect(je.rows).toEqual([
      { account_code: '1200', debit: '284.80', credit: '0.00' },
      { account_code: '4000', debit: '0.00', credit: '284.80' },
    ]);
    await expect(
      db.pool.query(`SELECT sales.invoice_shipment($1, '2026-11-07')`, [shipmentId]),
    ).rejects.toThrow(/^shipment SH\d{6} is already invoiced \(INV\d{6}\)$/);
  });
});

describe('sales.ar_aging', () => {
  beforeAll(async () => {
    // One invoice of 100.00 per due date; as of 2026-11-30 they are 0, 30, 31, 60, 61, 90, 91 days past due
    // (and one not yet due).
    await db.pool.query(`
      INSERT INTO sales.customers (customer_no, name) VALUES ('C2000', 'Aging Test Inc.');
      INSERT INTO sales.invoices (invoice_no, customer_no, invoice_date, due_date) VALUES
        ('A-00', 'C2000', '2026-10-31', '2026-11-30'),
        ('A-30', 'C2000', '2026-10-01', '2026-10-31'),
        ('A-31', 'C2000', '2026-09-30', '2026-10-30'),
        ('A-60', 'C2000', '2026-09-01', '2026-10-01'),
        ('A-61', 'C2000', '2026-08-31', '2026-09-30'),
        ('A-90', 'C2000', '2026-08-02', '2026-09-01'),
        ('A-91', 'C2000', '2026-08-01', '2026-08-31'),
        ('A-NY', 'C2000', '2026-11-20', '2026-12-20'),
        ('A-FUT', 'C2000', '2026-12-01', '2026-12-31'),
        ('A-VOID', 'C2000', '2026-09-01', '2026-10-01');
      UPDATE sales.invoices SET status = 'void' WHERE invoice_no = 'A-VOID';
      INSERT INTO sales.invoice_lines (invoice_id, line_no, description, quantity, uom, unit_price)
        SELECT id, 1, 'services', 1, 'EA', 100.00 FROM sales.invoices WHERE customer_no = 'C2000';
      -- A-30 is part paid before the as-of date; A-60 paid in full, but only after it.
      INSERT INTO sales.payments (invoice_id, received_on, amount)
        SELECT id, DATE '2026-11-15', 40.00 FROM sales.invoices WHERE invoice_no = 'A-30'
        UNION ALL SELECT id, DATE '2026-12-02', 100.00 FROM sales.invoices WHERE invoice_no = 'A-60';`);
  });

  it('puts each open balance in its bucket by days past due as of the date', async () => {
    const { rows } = await db.pool.query(
      `SELECT invoice_no, days_past_due, balance, bucket_current AS cur, bucket_1_30 AS b30, bucket_31_60 AS b60,
              bucket_61_90 AS b90, bucket_over_90 AS over
         FROM sales.ar_aging('2026-11-30') WHERE customer_no = 'C2000' ORDER BY days_past_due DESC, invoice_no`,
    );
    const row = (
      invoice_no: string,
      days: number,
      balance: string,
      bucket: 'cur' | 'b30' | 'b60' | 'b90' | 'over',
    ) => ({
      invoice_no,
      days_past_due: days,
      balance,
      cur: '0.00',
      b30: '0.00',
      b60: '0.00',
      b90: '0.00',
      over: '0.00',
      [bucket]: balance,
    });
    expect(rows).toEqual([
      row('A-91', 91, '100.00', 'over'),
      row('A-90', 90, '100.00', 'b90'),
      row('A-61', 61, '100.00', 'b90'),
      row('A-60', 60, '100.00', 'b60'), // paid after the as-of date: still open then
      row('A-31', 31, '100.00', 'b60'),
      row('A-30', 30, '60.00', 'b30'), // 100.00 − 40.00
      row('A-00', 0, '100.00', 'cur'),
      row('A-NY', 0, '100.00', 'cur'), // not due until 2026-12-20
    ]);
    const later = await db.pool.query(
      `SELECT invoice_no FROM sales.ar_aging('2026-12-31') WHERE invoice_no LIKE 'A-%' ORDER BY invoice_no`,
    );
    // A-60 is paid by then; the December invoice is now included.
    expect(later.rows.map((r) => r.invoice_no)).toEqual([
      'A-00',
      'A-30',
      'A-31',
      'A-61',
      'A-90',
      'A-91',
      'A-FUT',
      'A-NY',
    ]);
  });
});

describe('master data checks', () => {
  it('refuses an unknown item category, an invalid routing number and a duplicate partner id', async () => {
    await expect(
      db.pool.query(
        `INSERT INTO sales.items (sku, description, uom, list_price, category) VALUES ('SKU-9903', 'Flux capacitor', 'EA', 1, 'WIDGETS')`,
      ),
    ).rejects.toMatchObject({ code: '23503', constraint: 'items_category_fkey' });
    await expect(
      db.pool
        .query(`INSERT INTO hr.employees (employee_no, first_name, last_name, hire_date, pay_type, hourly_rate, department, bank_routing, bank_account)
                     VALUES ('X1', 'A', 'B', '2026-01-01', 'hourly', 20, 'Warehouse', '021000022', '12345')`),
    ).rejects.toMatchObject({ code: '23514', constraint: 'employees_bank_routing_check' });
    // A valid check digit (3·4 + 7·5 + 3 = 50) but 45 is no Federal Reserve routing symbol.
    await expect(
      db.pool.query(
        `INSERT INTO hr.employees (employee_no, first_name, last_name, hire_date, pay_type, hourly_rate, department, bank_routing, bank_account)
         VALUES ('E9998', 'A', 'B', '2026-01-01', 'hourly', 20, 'X', '450000003', '12345678')`,
      ),
    ).rejects.toMatchObject({ code: '23514', constraint: 'employees_bank_routing_prefix' });
    await expect(
      db.pool.query(
        `INSERT INTO sales.customers (customer_no, name, x12_qualifier, x12_id) VALUES ('C3000', 'Copycat', 'ZZ', 'ACMEBUY')`,
      ),
    ).rejects.toMatchObject({ code: '23505' });
  });
});
