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
 * {@link insertPurchaseOrder} for many orders, set-wise: one INSERT … SELECT from arrays per table
 * (orders, their lines, their edi.inbound_orders links) instead of three statements an order.
 * Returns the order numbers in the order of `orders`. A data error in any order fails the whole
 * statement: the caller undoes it to a savepoint and stores the orders one by one.
 */
export async function insertPurchaseOrders(
  db: pg.ClientBase,
  source: OrderSource,
  orders: readonly OrderToInsert[],
): Promise<string[]> {
  if (orders.length === 0) return [];
  const x = (o: OrderToInsert): string =>
    `${source.fileName} ISA13 ${o.set.group.interchange.controlNumber} GS06 ${o.set.group.controlNumber} ST02 ${o.set.controlNumber}`;
  const header = (o: OrderToInsert, k: string): string | null => o.mapped.header[k] ?? null;
  // Rows come back in insertion order; sorting by the identity makes that explicit.
  const { rows } = await db.query<{ id: string; order_no: string }>(
    `INSERT INTO sales.orders (customer_no, customer_po, order_date, requested_ship_date, currency, ship_to_name, source, source_ref)
     SELECT $1, t.po, t.po_date::date, t.ship_date::date, coalesce(t.currency, 'USD'), t.ship_to, 'edi', t.ref
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY
            AS t (po, po_date, ship_date, currency, ship_to, ref, ord)
      ORDER BY t.ord
     RETURNING id, order_no`,
    [
      source.customerNo,
      orders.map((o) => header(o, 'po_number')),
      orders.map((o) => header(o, 'po_date')),
      orders.map((o) => header(o, 'requested_ship_date')),
      orders.map((o) => header(o, 'currency')),
      orders.map((o) => header(o, 'ship_to_name')),
      orders.map(x),
    ],
  );
  if (rows.length !== orders.length) throw new Error(`inserted ${rows.length} orders of ${orders.length}`);
  rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  const ids: string[] = [];
  const lineNos: number[] = [];
  const lines: ResolvedLine[] = [];
  orders.forEach((o, k) => {
    o.lines.forEach((l, i) => {
      ids.push(rows[k]!.id);
      lineNos.push(i + 1);
      lines.push(l);
    });
  });
  await db.query(
    `INSERT INTO sales.order_lines (order_id, line_no, sku, customer_line_ref, quantity, uom, unit_price)
     SELECT t.order_id, t.line_no, t.sku, t.ref, t.quantity::numeric, t.uom, t.price::numeric
       FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
            AS t (order_id, line_no, sku, ref, quantity, uom, price)`,
    [
      ids,
      lineNos,
      lines.map((l) => l.sku),
      lines.map((l) => l.customerLineRef),
      lines.map((l) => l.quantity),
      lines.map((l) => l.uom),
      lines.map((l) => l.unitPrice),
    ],
  );
  await db.query(
    `INSERT INTO edi.inbound_orders (order_id, partner, interchange_id, gs06, st02, header, lines)
     SELECT t.order_id, $1, $2, t.gs06, t.st02, t.header::jsonb, t.lines::jsonb
       FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) AS t (order_id, gs06, st02, header, lines)`,
    [
      source.partner,
      source.interchangeId,
      rows.map((r) => r.id),
      orders.map((o) => o.set.group.controlNumber),
      orders.map((o) => o.set.controlNumber),
      orders.map((o) => JSON.stringify(o.mapped.header)),
      orders.map((o) => JSON.stringify(o.mapped.lines)),
    ],
  );
  return rows.map((r) => r.order_no);
}
