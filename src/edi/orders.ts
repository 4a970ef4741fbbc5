import type pg from 'pg';
import { problem, type X12Problem } from '../x12/errors.js';
import type { MappedTransaction } from '../x12/mapping.js';
import type { Segment, TransactionSet } from '../x12/types.js';

/**
 * An inbound 850, mapped by mappings/x12/850-in.yaml, checked against the ERP and stored as a
 * sales order with its lines:
 *
 *   { header, lines } ──checkPurchaseOrder──► problems (AK3/AK4: unknown item, PO already loaded, bad uom…)
 *                    │                        └─ any problem: the set is rejected and loads nothing
 *                    └──insertPurchaseOrder──► sales.orders + sales.order_lines + edi.inbound_orders
 *
 * Items are resolved per line: the vendor part (PO1 VP, our sku), else the customer's part number
 * through sales.customer_items, else the buyer part as a sku. A price missing from the 850 is
 * taken from the item's list price.
 */

/** "VN "123", BP "X-1"" — the (qualifier, id) pairs of a PO1, for messages. */
function pairs(seg: Segment | undefined): string {
  const e = seg?.elements ?? [];
  const out: string[] = [];
  for (let i = 6; i < e.length; i += 2) if (e[i]) out.push(`${e[i]} ${JSON.stringify(e[i + 1] ?? '')}`);
  return out.join(', ') || 'none';
}

/** A line ready to insert. */
export interface ResolvedLine {
  sku: string;
  customerLineRef: string | null;
  quantity: string;
  uom: string;
  unitPrice: string;
}

/** What {@link checkPurchaseOrder} found. */
export interface CheckedOrder {
  problems: X12Problem[];
  lines: ResolvedLine[];
}

// numeric(14,3) quantities and numeric(14,4) prices: at most 11 and 10 integer digits.
const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

function positionOf(set: TransactionSet, tag: string, nth = 0): { seg: Segment; position: number } | null {
  let seen = 0;
  for (let i = 0; i < set.segments.length; i++) {
    const seg = set.segments[i]!;
    if (seg.tag !== tag) continue;
    if (seen++ === nth) return { seg, position: i + 1 };
  }
  return null;
}

/**
 * Checks a mapped 850 for `customerNo`: items exist and are active, quantities, units and prices
 * fit the order tables, the currency is a code, and (with `checkDuplicatePo`) the PO number has
 * not been loaded for this customer before. Every problem names the segment and element and
 * carries its AK3/AK4 codes.
 */
export async function checkPurchaseOrder(
  db: pg.ClientBase,
  customerNo: string,
  set: TransactionSet,
  mapped: MappedTransaction,
  options: {
    checkDuplicatePo: boolean;
    /** How the mapping's product id fields read, for messages: `vendor_part (product id VP, VN or SK …)`. */
    productFields: string;
  },
): Promise<CheckedOrder> {
  const file = set.group.interchange.file;
  const problems: X12Problem[] = [];
  const where = `transaction set 850 ${set.controlNumber}`;
  const h = mapped.header;
  const at = (
    tag: string,
    nth: number,
    element: number | undefined,
    code: string,
    value: string | null,
    text: string,
    ak: { ak3?: string; ak4?: string; ak5?: string },
  ): void => {
    const hit = positionOf(set, tag, nth);
    problems.push(
      problem({
        code,
        level: element !== undefined && hit ? 'element' : hit ? 'segment' : 'transaction',
        file,
        segment: hit?.seg.ordinal ?? set.segments[0]!.ordinal,
        segmentId: hit ? tag : 'ST',
        ...(hit ? { positionInSet: hit.position } : {}),
        ...(element !== undefined && hit ? { element } : {}),
        ...(value !== null ? { value } : {}),
        text: `${where}: ${text}`,
        ack: { ...ak, ...(hit ? {} : { ak5: ak.ak5 ?? '5' }) },
      }),
    );
  };

  if (h.currency && !/^[A-Z]{3}$/.test(h.currency)) {
    at(
      'CUR',
      0,
      2,
      'CURRENCY_INVALID',
      h.currency,
      `CUR02 is "${h.currency}"; expected a 3-letter ISO currency code`,
      {
        ak4: '7',
      },
    );
  }
  if (mapped.lines.length === 0) {
    at(
      'PO1',
      0,
      undefined,
      'NO_LINES',
      null,
      'the purchase order has no PO1 line items; expected at least one',
      {
        ak3: '3',
      },
    );
  }

  // One query per set: resolve every line's item, and look for the PO number.
  const { rows } = await db.query<{
    ord: string;
    sku: string | null;
    active: boolean | null;
    list_price: string | null;
  }>(
    `SELECT u.ord::text, i.sku, i.active, i.list_price::text
       FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u (bp, vp, ord)
       LEFT JOIN LATERAL (
         SELECT coalesce(
           (SELECT s.sku FROM sales.items s WHERE s.sku = u.vp),
           (SELECT ci.sku FROM sales.customer_items ci WHERE ci.customer_no = $1 AND ci.customer_item = u.bp),
           (SELECT s.sku FROM sales.items s WHERE s.sku = u.bp)) AS sku) r ON true
       LEFT JOIN sales.items i ON i.sku = r.sku
      ORDER BY u.ord`,
    [
      customerNo,
      mapped.lines.map((l) => l.buyer_part ?? null),
      mapped.lines.map((l) => l.vendor_part ?? null),
    ],
  );
  const lines: ResolvedLine[] = [];
  mapped.lines.forEach((l, i) => {
    const n = i + 1;
    const item = rows[i];
    const quantity = l.quantity ?? '';
    const qm = DECIMAL.exec(quantity);
    if (!qm || Number(quantity) <= 0 || qm[1]!.replace(/^0+/, '').length > 11 || (qm[2]?.length ?? 0) > 3) {
      at(
        'PO1',
        i,
        2,
        'QUANTITY_INVALID',
        quantity,
        `line ${n}: PO102 quantity "${quantity}" must be above 0 with at most 11 digits before and 3 after the point`,
        {
          ak4: '6',
        },
      );
    }
    const uom = l.uom ?? '';
    if (!/^[A-Z0-9]{2}$/.test(uom)) {
      at(
        'PO1',
        i,
        3,
        'UOM_INVALID',
        uom,
        `line ${n}: PO103 unit of measure "${uom}" must be a 2-character code such as EA`,
        {
          ak4: '7',
        },
      );
    }
    let price = l.unit_price ?? null;
    if (price !== null) {
      const pm = DECIMAL.exec(price);
      if (!pm || pm[1]!.replace(/^0+/, '').length > 10 || (pm[2]?.length ?? 0) > 4) {
        at(
          'PO1',
          i,
          4,
          'PRICE_INVALID',
          price,
          `line ${n}: PO104 unit price "${price}" must be 0 or more with at most 10 digits before and 4 after the point`,
          {
            ak4: '6',
          },
        );
      }
    }
    if (!item?.sku || item.active === false) {
      const ids = mapped.productIds[i] ?? {};
      const found = [
        l.vendor_part ? `vendor_part ${ids.vendor_part?.qualifier ?? ''} "${l.vendor_part}"` : null,
        l.buyer_part ? `buyer_part ${ids.buyer_part?.qualifier ?? ''} "${l.buyer_part}"` : null,
      ].filter(Boolean);
      const hit = ids.vendor_part ?? ids.buyer_part ?? null;
      const anchor = mapped.lineAnchors[i];
      // The id element found, else the first id of the pairs (PO107): where an id was expected.
      const element = hit?.element ?? 7;
      const value = l.vendor_part ?? l.buyer_part ?? anchor?.seg.elements[element] ?? '';
      problems.push(
        problem({
          code: item?.sku ? 'ITEM_INACTIVE' : 'ITEM_UNKNOWN',
          level: 'element',
          business: true,
          file,
          segment: anchor?.seg.ordinal ?? set.segments[0]!.ordinal,
          segmentId: 'PO1',
          positionInSet: anchor?.position ?? 1,
          element,
          value,
          text: `${where}: ${
            item?.sku
              ? `line ${n}: item ${item.sku} is inactive; it cannot be ordered`
              : found.length === 0
                ? `line ${n}: the line names no product: the mapping reads ${options.productFields} and the line's pairs hold ${pairs(anchor?.seg)}`
                : `line ${n}: no item for ${found.join(' or ')}: not a sku in sales.items and not a part number of customer ${customerNo} in sales.customer_items`
          }`,
          ack: { ak3: '8', ak4: '7' },
        }),
      );
      return;
    }
    price ??= item.list_price;
    lines.push({
      sku: item.sku,
      customerLineRef: l.line_number ?? null,
      quantity,
      uom,
      unitPrice: price ?? '0',
    });
  });

  const po = h.po_number ?? '';
  if (options.checkDuplicatePo && po !== '') {
    const { rows: existing } = await db.query<{ order_no: string }>(
      'SELECT order_no FROM sales.orders WHERE customer_no = $1 AND customer_po = $2',
      [customerNo, po],
    );
    if (existing.length > 0) {
      at(
        'BEG',
        0,
        3,
        'PO_DUPLICATE',
        po,
        `BEG03 purchase order "${po}" was already loaded for customer ${customerNo} (order ${existing[0]!.order_no}); a purchase order is loaded once, send changes as an 860`,
        { ak4: '7' },
      );
    }
  }
  return { problems, lines };
}

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
