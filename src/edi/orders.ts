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
