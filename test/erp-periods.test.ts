import { describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

/*
 * October 2026 gets one of everything (stock at cost, an order shipped and invoiced, a payment), then
 * closes. Every subledger then refuses rows dated in October; a plain UPDATE cannot reopen it;
 * gl.reopen_period can, and records who, when and why.
 */
let db: TestDatabase;
const ids: Record<string, string> = {};

test.beforeAll(async ({ db: d }) => {
  db = d;
  await db.pool.query(`
    SELECT gl.open_period('2026-10'), gl.open_period('2026-11');
    INSERT INTO sales.customers (customer_no, name, payment_terms_days) VALUES ('C1', 'Summit Facilities', 30);
    INSERT INTO sales.items (sku, description, uom, list_price, category) VALUES ('SKU-1', 'Bolt', 'EA', 2.00, 'FASTENERS');
    INSERT INTO inv.stock_movements (sku, moved_at, quantity, reason, unit_cost) VALUES ('SKU-1', '2026-10-01', 100, 'opening', 1.20);`);
  const order = await db.pool.query<{ id: string }>(
    `INSERT INTO sales.orders (customer_no, order_date) VALUES ('C1', '2026-10-05') RETURNING id`,
  );
  ids.order = order.rows[0]!.id;
  await db.pool.query(
    `INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price) VALUES ($1, 1, 'SKU-1', 50, 'EA', 2.00), ($1, 2, 'SKU-1', 10, 'EA', 2.00)`,
    [ids.order],
  );
  const ship = await db.pool.query<{ id: string }>(
    `INSERT INTO sales.shipments (order_id, ship_date) VALUES ($1, '2026-10-20') RETURNING id`,
    [ids.order],
  );
  ids.shipment = ship.rows[0]!.id;
  await db.pool.query(
    `INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity) VALUES ($1, 1, $2, 1, 50)`,
    [ids.shipment, ids.order],
  );
  const inv = await db.pool.query<{ id: string }>(`SELECT sales.invoice_shipment($1, '2026-10-20') AS id`, [
    ids.shipment,
  ]);
  ids.invoice = inv.rows[0]!.id;
  await db.pool.query(
    `INSERT INTO sales.payments (invoice_id, received_on, amount) VALUES ($1, '2026-10-30', 40.00)`,
    [ids.invoice],
  );
  await db.pool.query(`SELECT gl.close_period('2026-10', 'controller')`);
});

const CLOSED = /^fiscal period 2026-10 is closed: /;

describe('a closed fiscal period', () => {
  it('refuses a customer payment, a stock movement, a shipment, an invoice and their lines dated in it', async () => {
    const attempts: [string, string, unknown[]][] = [
      [
        'payment',
        `INSERT INTO sales.payments (invoice_id, received_on, amount) VALUES ($1, '2026-10-31', 10.00)`,
        [ids.invoice],
      ],
      [
        'stock movement',
        `INSERT INTO inv.stock_movements (sku, moved_at, quantity, reason, unit_cost) VALUES ('SKU-1', '2026-10-15', 5, 'receipt', 1.20)`,
        [],
      ],
      [
        'shipment',
        `INSERT INTO sales.shipments (order_id, ship_date) VALUES ($1, '2026-10-31')`,
        [ids.order],
      ],
      [
        'shipment line',
        `INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity) VALUES ($1, 2, $2, 2, 10)`,
        [ids.shipment, ids.order],
      ],
      [
        'invoice',
        `INSERT INTO sales.invoices (customer_no, invoice_date, due_date) VALUES ('C1', '2026-10-31', '2026-11-30')`,
        [],
      ],
      ['invoice change', `UPDATE sales.invoices SET due_date = '2026-12-31' WHERE id = $1`, [ids.invoice]],
      [
        'invoice line',
        `INSERT INTO sales.invoice_lines (invoice_id, line_no, description, quantity, uom, unit_price) VALUES ($1, 9, 'extra', 1, 'EA', 1)`,
        [ids.invoice],
      ],
      [
        'invoice line change',
        `UPDATE sales.invoice_lines SET unit_price = 0 WHERE invoice_id = $1`,
        [ids.invoice],
      ],
      [
        'moving an invoice out',
        `UPDATE sales.invoices SET invoice_date = '2026-11-02', due_date = '2026-12-02' WHERE id = $1`,
        [ids.invoice],
      ],
      [
        'journal entry',
        `SELECT gl.post_entry('2026-10-31', 'late accrual', '[{"account":"6900","debit":1},{"account":"2000","credit":1}]')`,
        [],
      ],
    ];
    for (const [what, sql, params] of attempts) {
      await expect(db.pool.query(sql, params), what).rejects.toMatchObject({
        code: 'ERP01',
        message: expect.stringMatching(CLOSED),
      });
    }
    // November, which is open, takes the same rows.
    await db.pool.query(
      `INSERT INTO sales.payments (invoice_id, received_on, amount) VALUES ($1, '2026-11-02', 10.00)`,
      [ids.invoice],
    );
    await db.pool.query(
      `INSERT INTO inv.stock_movements (sku, moved_at, quantity, reason, unit_cost) VALUES ('SKU-1', '2026-11-03', 5, 'receipt', 1.20)`,
    );
  });

  it("refuses changing a shipment's date or a line's quantity, but takes its paperwork (BOL, tracking, cartons)", async () => {
    for (const [what, sql] of [
      ['shipment date', `UPDATE sales.shipments SET ship_date = '2026-11-02' WHERE id = $1`],
      ['shipment line quantity', `UPDATE sales.shipment_lines SET quantity = 40 WHERE shipment_id = $1`],
      ['shipment deleted', `DELETE FROM sales.shipments WHERE id = $1`],
    ] as const) {
      await expect(db.pool.query(sql, [ids.shipment]), what).rejects.toMatchObject({
        code: 'ERP01',
        message: expect.stringMatching(CLOSED),
      });
    }
    // An 856 refused for its missing bill of lading can still be completed after the close.
    await db.pool.query(
      `UPDATE sales.shipments SET bill_of_lading = 'BOL-1', tracking_no = '1Z1', carrier = 'UPSN', gross_weight = 12.5 WHERE id = $1`,
      [ids.shipment],
    );
    await db.pool.query(`INSERT INTO sales.shipment_packages (shipment_id, package_no) VALUES ($1, 1)`, [
      ids.shipment,
    ]);
    await db.pool.query(`UPDATE sales.shipment_lines SET package_no = 1 WHERE shipment_id = $1`, [
      ids.shipment,
    ]);
    const { rows } = await db.pool.query(
      `SELECT s.bill_of_lading, s.ship_date::text, sl.quantity::text, sl.package_no
         FROM sales.shipments s JOIN sales.shipment_lines sl ON sl.shipment_id = s.id WHERE s.id = $1`,
      [ids.shipment],
    );
    expect(rows).toEqual([
      { bill_of_lading: 'BOL-1', ship_date: '2026-10-20', quantity: '50.000', package_no: 1 },
    ]);
  });

  it('names what was refused and when it was dated', async () => {
    await expect(
      db.pool.query(
        `INSERT INTO sales.payments (invoice_id, received_on, amount) VALUES ($1, '2026-10-31', 10.00)`,
        [ids.invoice],
      ),
    ).rejects.toThrow(
      'fiscal period 2026-10 is closed: recording a customer payment dated 2026-10-31 refused; date it in an open period instead',
    );
  });

  it('is not reopened by a plain UPDATE, nor deleted', async () => {
    await expect(
      db.pool.query(
        `UPDATE gl.fiscal_periods SET status = 'open', closed_at = NULL, closed_by = NULL WHERE period = '2026-10'`,
      ),
    ).rejects.toThrow(
      'fiscal period 2026-10 is closed: reopen it with gl.reopen_period(period, reopened_by, reason), which records who, when and why',
    );
    await expect(db.pool.query(`DELETE FROM gl.fiscal_periods WHERE period = '2026-10'`)).rejects.toThrow(
      'fiscal period 2026-10 is closed and cannot be deleted',
    );
    await expect(db.pool.query(`SELECT gl.reopen_period('2026-10', 'controller', 'oops')`)).rejects.toThrow(
      'reopening fiscal period 2026-10 needs a reason (at least 10 characters)',
    );
    await expect(
      db.pool.query(`SELECT gl.reopen_period('2026-11', 'controller', 'nothing to reopen here')`),
    ).rejects.toThrow('fiscal period 2026-11 is not closed: nothing to reopen');
  });

  it('reopens through gl.reopen_period, which records who, when and why; the record cannot be changed', async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT gl.reopen_period('2026-10', 'alice', 'customer payment of 31 Oct was missed') AS id`,
    );
    const record = await db.pool.query(
      `SELECT period, reopened_by, reason, was_closed_by, reopened_at > now() - interval '1 minute' AS recent,
              (SELECT status FROM gl.fiscal_periods WHERE period = '2026-10') AS status
         FROM gl.period_reopenings WHERE id = $1`,
      [rows[0]!.id],
    );
    expect(record.rows).toEqual([
      {
        period: '2026-10',
        reopened_by: 'alice',
        reason: 'customer payment of 31 Oct was missed',
        was_closed_by: 'controller',
        recent: true,
        status: 'open',
      },
    ]);
    await db.pool.query(
      `INSERT INTO sales.payments (invoice_id, received_on, amount) VALUES ($1, '2026-10-31', 10.00)`,
      [ids.invoice],
    );
    await expect(db.pool.query(`UPDATE gl.period_reopenings SET reason = 'x'`)).rejects.toThrow(
      'gl.period_reopenings is an audit record: rows are never changed or deleted',
    );
    await expect(db.pool.query(`DELETE FROM gl.period_reopenings`)).rejects.toThrow(/audit record/);
    expect((await db.pool.query(`SELECT gl.close_period('2026-10', 'alice') AS s`)).rows[0].s).toBe('closed');
  });

  it('month-end close waits for the payroll: refused while the payroll period is open or net pay undisbursed', async () => {
    await db.pool.query(`
      SELECT payroll.open_period('2026-11');
      INSERT INTO hr.employees (employee_no, first_name, last_name, hire_date, pay_type, annual_salary, department, bank_routing, bank_account)
      VALUES ('S1', 'Sam', 'Salaried', '2020-01-01', 'salaried', 60000, 'Finance', '021000021', '12345678');`);
    await expect(db.pool.query(`SELECT gl.month_end_close('2026-11')`)).rejects.toThrow(
      'fiscal period 2026-11 cannot close: its payroll period is still open; run payroll-close first',
    );
    await db.pool.query(`SELECT * FROM payroll.close_period('2026-11')`);
    await expect(db.pool.query(`SELECT gl.month_end_close('2026-11')`)).rejects.toThrow(
      /fiscal period 2026-11 cannot close: \d+\.\d\d of net pay of payroll run \d+ is not disbursed yet/,
    );
    await db.pool.query(
      `SELECT payroll.disburse_net_pay('2026-11', 'bank'), payroll.disburse_net_pay('2026-11', 'check')`,
    );
    expect((await db.pool.query(`SELECT gl.month_end_close('2026-11') AS s`)).rows[0].s).toBe('closed');
  });
});
