import type pg from 'pg';
import type { MappedTransaction } from '../x12/mapping.js';
import type { TransactionSet } from '../x12/types.js';
import type { ResolvedLine } from './po-check.js';

export { checkPurchaseOrder, type CheckedOrder, type ResolvedLine } from './po-check.js';

/**
 * An inbound 850, mapped by mappings/x12/850-in.yaml, checked against the ERP and stored as a
 * sales order with its lines:
 *
 *   { header, lines } ──checkPurchaseOrder (po-check.ts)──► business problems (unknown item, PO already loaded…)
 *                    └──insertPurchaseOrder──► sales.orders + sales.order_lines + edi.inbound_orders
 */

/** Where an order came from, for sales.orders.source_ref and edi.inbound_orders. */
export interface OrderSource {
  partner: string;
  customerNo: string;
  interchangeId: number;
  fileName: string;
}

/**
 * Inserts the order, its lines and its edi.inbound_orders link; returns the order number. Call it
 * only for a set {@link checkPurchaseOrder} found no problem in, inside the file's transaction.
 */
export async function insertPurchaseOrder(
  db: pg.ClientBase,
  source: OrderSource,
  set: TransactionSet,
  mapped: MappedTransaction,
  lines: readonly ResolvedLine[],
): Promise<string> {
  const h = mapped.header;
  const x = set.group.interchange;
  const ref = `${source.fileName} ISA13 ${x.controlNumber} GS06 ${set.group.controlNumber} ST02 ${set.controlNumber}`;
  const { rows } = await db.query<{ id: string; order_no: string }>(
    `INSERT INTO sales.orders (customer_no, customer_po, order_date, requested_ship_date, currency, ship_to_name, source, source_ref)
     VALUES ($1, $2, $3::date, $4::date, coalesce($5, 'USD'), $6, 'edi', $7) RETURNING id, order_no`,
    [
      source.customerNo,
      h.po_number,
      h.po_date,
      h.requested_ship_date ?? null,
      h.currency ?? null,
      h.ship_to_name ?? null,
      ref,
    ],
  );
  const order = rows[0]!;
  await db.query(
    `INSERT INTO sales.order_lines (order_id, line_no, sku, customer_line_ref, quantity, uom, unit_price)
     SELECT $1, t.ord, t.sku, t.ref, t.quantity::numeric, t.uom, t.price::numeric
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
            AS t (sku, ref, quantity, uom, price, ord)`,
    [
      order.id,
      lines.map((l) => l.sku),
      lines.map((l) => l.customerLineRef),
      lines.map((l) => l.quantity),
      lines.map((l) => l.uom),
      lines.map((l) => l.unitPrice),
    ],
  );
  await db.query(
    `INSERT INTO edi.inbound_orders (order_id, partner, interchange_id, gs06, st02, header, lines)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      order.id,
      source.partner,
      source.interchangeId,
      set.group.controlNumber,
      set.controlNumber,
      JSON.stringify(h),
      JSON.stringify(mapped.lines),
    ],
  );
  return order.order_no;
}

/** One order for {@link insertPurchaseOrders}. */
export interface OrderToInsert {
  set: TransactionSet;
  mapped: MappedTransaction;
  lines: readonly ResolvedLine[];
}

/**
 * {@link insertPurchaseOrder} for many orders, set-wise: one statement stores the orders, their
 * lines and their edi.inbound_orders links (data-modifying CTEs) from one jsonb parameter, instead
 * of three statements an order. Returns the order numbers in the order of `orders`. A data error in
 * any order fails the whole statement: the caller undoes it to a savepoint and stores the orders
 * one by one.
 *
 * One jsonb document rather than an array parameter per column: pg's array serializer (an escape
 * and two regular expressions per element) cost the client three to five times what
 * `JSON.stringify` does, and the server reads the document as fast as the arrays (see
 * docs/performance.md, EDI inbound).
 */
export async function insertPurchaseOrders(
  db: pg.ClientBase,
  source: OrderSource,
  orders: readonly OrderToInsert[],
): Promise<string[]> {
  if (orders.length === 0) return [];
  const rows = orders.map((o, k) => {
    const h = o.mapped.header;
    return {
      ord: k + 1,
      po: h.po_number ?? null,
      po_date: h.po_date ?? null,
      ship_date: h.requested_ship_date ?? null,
      currency: h.currency ?? null,
      ship_to: h.ship_to_name ?? null,
      ref: `${source.fileName} ISA13 ${o.set.group.interchange.controlNumber} GS06 ${o.set.group.controlNumber} ST02 ${o.set.controlNumber}`,
      gs06: o.set.group.controlNumber,
      st02: o.set.controlNumber,
      header: h,
      lines: o.mapped.lines,
      items: o.lines.map((l, i) => ({
        line_no: i + 1,
        sku: l.sku,
        ref: l.customerLineRef,
        quantity: l.quantity,
        uom: l.uom,
        price: l.unitPrice,
      })),
    };
  });
  // The orders go in in `ord` order, so their identities ascend with it (what the one-by-one path
  // gives); `n` numbers the inserted rows by identity to join each back to its lines and link.
  const { rows: stored } = await db.query<{ order_no: string }>(
    `WITH t AS (
       SELECT * FROM jsonb_to_recordset($3::jsonb) AS r (ord bigint, po text, po_date date, ship_date date,
              currency text, ship_to text, ref text, gs06 text, st02 text, header jsonb, lines jsonb, items jsonb)),
     o AS (
       INSERT INTO sales.orders (customer_no, customer_po, order_date, requested_ship_date, currency, ship_to_name, source, source_ref)
       SELECT $1, t.po, t.po_date, t.ship_date, coalesce(t.currency, 'USD'), t.ship_to, 'edi', t.ref FROM t ORDER BY t.ord
       RETURNING id, order_no),
     n AS (SELECT id, order_no, row_number() OVER (ORDER BY id) AS ord FROM o),
     l AS (
       INSERT INTO sales.order_lines (order_id, line_no, sku, customer_line_ref, quantity, uom, unit_price)
       SELECT n.id, x.line_no, x.sku, x.ref, x.quantity, x.uom, x.price
         FROM n JOIN t USING (ord),
              jsonb_to_recordset(t.items) AS x (line_no int, sku text, ref text, quantity numeric, uom text, price numeric)),
     i AS (
       INSERT INTO edi.inbound_orders (order_id, partner, interchange_id, gs06, st02, header, lines)
       SELECT n.id, $2, $4, t.gs06, t.st02, t.header, t.lines FROM n JOIN t USING (ord))
     SELECT order_no FROM n ORDER BY ord`,
    [source.customerNo, source.partner, JSON.stringify(rows), source.interchangeId],
  );
  if (stored.length !== orders.length)
    throw new Error(`inserted ${stored.length} orders of ${orders.length}`);
  return stored.map((r) => r.order_no);
}
