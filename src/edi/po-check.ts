/**
 * The business checks of a mapped 850 against the ERP, one method per segment they are about:
 *
 *   BEG  the PO number was not loaded before for this customer
 *   CUR  the currency is an ISO code
 *   PO1  per line: quantity, unit and price fit the order tables; the item exists and is active
 *
 * Every problem is a business problem (`business: true`): the set is valid X12, and the partner
 * profile's `business_errors` decides whether it is rejected, held or acknowledged line by line.
 * Each names the segment and element and carries AK3/AK4 codes for the `reject` case.
 */
import type pg from 'pg';
import { problem, type X12Problem } from '../x12/errors.js';
import type { PlacedSegment } from '../x12/loops.js';
import type { MappedTransaction } from '../x12/mapping.js';
import type { Segment, TransactionSet } from '../x12/types.js';

/** A line ready to insert. */
export interface ResolvedLine {
  sku: string;
  customerLineRef: string | null;
  quantity: string;
  uom: string;
  unitPrice: string;
  /** The price was not in the 850 and comes from the item's list price. */
  priceFromList: boolean;
}

/** What {@link checkPurchaseOrder} found. */
export interface CheckedOrder {
  problems: X12Problem[];
  /** Per mapped line: the line to insert, or null when the line has a problem. */
  lines: (ResolvedLine | null)[];
  /** A problem about the whole order (BEG, CUR, no lines): no line of it can be loaded. */
  headerRejected: boolean;
}

/** Options of {@link checkPurchaseOrder}. */
export interface CheckOptions {
  /** Look for the PO number among the customer's orders (off for a re-delivered interchange). */
  checkDuplicatePo: boolean;
  /** How the mapping's product id fields read, for messages: `vendor_part (product id VP, VN or SK …)`. */
  productFields: string;
}

// numeric(14,3) quantities and numeric(14,4) prices: at most 11 and 10 integer digits.
const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

interface ItemRow {
  sku: string | null;
  active: boolean | null;
  list_price: string | null;
}

/** "VN "123", BP "X-1"" — the (qualifier, id) pairs of a PO1, for messages. */
function pairs(seg: Segment | undefined): string {
  const e = seg?.elements ?? [];
  const out: string[] = [];
  for (let i = 6; i < e.length; i += 2) if (e[i]) out.push(`${e[i]} ${JSON.stringify(e[i + 1] ?? '')}`);
  return out.join(', ') || 'none';
}

class PurchaseOrderCheck {
  readonly problems: X12Problem[] = [];
  headerRejected = false;
  private readonly file: string;
  private readonly where: string;

  constructor(
    private readonly set: TransactionSet,
    private readonly mapped: MappedTransaction,
    private readonly customerNo: string,
    private readonly options: CheckOptions,
  ) {
    this.file = set.group.interchange.file;
    this.where = `transaction set 850 ${set.controlNumber}`;
  }

  /** The first segment `tag` of the set, with its position. */
  private first(tag: string): PlacedSegment | null {
    const i = this.set.segments.findIndex((s) => s.tag === tag);
    return i < 0 ? null : { seg: this.set.segments[i]!, position: i + 1 };
  }

  private report(p: {
    at: PlacedSegment | null;
    element?: number;
    code: string;
    value?: string;
    text: string;
    ak: { ak3?: string; ak4?: string };
  }): void {
    const at = p.at;
    this.problems.push(
      problem({
        code: p.code,
        level: at ? (p.element !== undefined ? 'element' : 'segment') : 'transaction',
        business: true,
        file: this.file,
        segment: at?.seg.ordinal ?? this.set.segments[0]!.ordinal,
        segmentId: at?.seg.tag ?? 'ST',
        ...(at ? { positionInSet: at.position } : {}),
        ...(at && p.element !== undefined ? { element: p.element } : {}),
        ...(p.value !== undefined ? { value: p.value } : {}),
        text: `${this.where}: ${p.text}`,
        ack: at ? p.ak : { ak5: '5' },
      }),
    );
  }

  cur(): void {
    const currency = this.mapped.header.currency;
    if (!currency || /^[A-Z]{3}$/.test(currency)) return;
    this.headerRejected = true;
    this.report({
      at: this.first('CUR'),
      element: 2,
      code: 'CURRENCY_INVALID',
      value: currency,
      text: `CUR02 is "${currency}"; expected a 3-letter ISO currency code`,
      ak: { ak3: '8', ak4: '7' },
    });
  }

  /** `existing`: the order number the customer's PO number was already loaded as, if any. */
  beg(existing: string | undefined): void {
    const po = this.mapped.header.po_number ?? '';
    if (!this.options.checkDuplicatePo || po === '' || existing === undefined) return;
    this.headerRejected = true;
    this.report({
      at: this.first('BEG'),
      element: 3,
      code: 'PO_DUPLICATE',
      value: po,
      text: `BEG03 purchase order "${po}" was already loaded for customer ${this.customerNo} (order ${existing}); a purchase order is loaded once, send changes as an 860`,
      ak: { ak3: '8', ak4: '7' },
    });
  }

  /** Line `i` (0-based): returns the line to insert, or null. */
  po1(i: number, item: ItemRow | undefined): ResolvedLine | null {
    const l = this.mapped.lines[i]!;
    const at = this.mapped.lineAnchors[i] ?? null;
    const n = i + 1;
    const before = this.problems.length;
    const quantity = l.quantity ?? '';
    const qm = DECIMAL.exec(quantity);
    if (!qm || Number(quantity) <= 0 || qm[1]!.replace(/^0+/, '').length > 11 || (qm[2]?.length ?? 0) > 3) {
      this.report({
        at,
        element: 2,
        code: 'QUANTITY_INVALID',
        value: quantity,
        text: `line ${n}: PO102 quantity "${quantity}" must be above 0 with at most 11 digits before and 3 after the point`,
        ak: { ak3: '8', ak4: '6' },
      });
    }
    const uom = l.uom ?? '';
    if (!/^[A-Z0-9]{2}$/.test(uom)) {
      this.report({
        at,
        element: 3,
        code: 'UOM_INVALID',
        value: uom,
        text: `line ${n}: PO103 unit of measure "${uom}" must be a 2-character code such as EA`,
        ak: { ak3: '8', ak4: '7' },
      });
    }
    const price = l.unit_price ?? null;
    if (price !== null) {
      const pm = DECIMAL.exec(price);
      if (!pm || pm[1]!.replace(/^0+/, '').length > 10 || (pm[2]?.length ?? 0) > 4) {
        this.report({
          at,
          element: 4,
          code: 'PRICE_INVALID',
          value: price,
          text: `line ${n}: PO104 unit price "${price}" must be 0 or more with at most 10 digits before and 4 after the point`,
          ak: { ak3: '8', ak4: '6' },
        });
      }
    }
    if (!item?.sku || item.active === false) {
      const ids = this.mapped.productIds[i] ?? {};
      const found = [
        l.vendor_part ? `vendor_part ${ids.vendor_part?.qualifier ?? ''} "${l.vendor_part}"` : null,
        l.buyer_part ? `buyer_part ${ids.buyer_part?.qualifier ?? ''} "${l.buyer_part}"` : null,
      ].filter(Boolean);
      // The id element found, else the first id of the pairs (PO107): where an id was expected.
      const element = (ids.vendor_part ?? ids.buyer_part)?.element ?? 7;
      this.report({
        at,
        element,
        code: item?.sku ? 'ITEM_INACTIVE' : 'ITEM_UNKNOWN',
        value: l.vendor_part ?? l.buyer_part ?? at?.seg.elements[element] ?? '',
        text: item?.sku
          ? `line ${n}: item ${item.sku} is inactive; it cannot be ordered`
          : found.length === 0
            ? `line ${n}: the line names no product: the mapping reads ${this.options.productFields} and the line's pairs hold ${pairs(at?.seg)}`
            : `line ${n}: no item for ${found.join(' or ')}: not a sku in sales.items and not a part number of customer ${this.customerNo} in sales.customer_items`,
        ak: { ak3: '8', ak4: '7' },
      });
    }
    if (this.problems.length > before || !item?.sku) return null;
    return {
      sku: item.sku,
      customerLineRef: l.line_number ?? null,
      quantity,
      uom,
      unitPrice: price ?? item.list_price ?? '0',
      priceFromList: price === null,
    };
  }

  noLines(): void {
    this.headerRejected = true;
    this.report({
      at: null,
      code: 'NO_LINES',
      text: 'the purchase order has no PO1 line items; expected at least one',
      ak: {},
    });
  }
}

/**
 * Checks a mapped 850 for `customerNo`: items exist and are active, quantities, units and prices
 * fit the order tables, the currency is a code, and (with `checkDuplicatePo`) the PO number has
 * not been loaded for this customer before. One query resolves every line's item: the vendor part
 * (our sku), else the customer's part number through sales.customer_items, else the buyer part
 * as a sku. A price missing from the 850 is taken from the item's list price.
 */
export async function checkPurchaseOrder(
  db: pg.ClientBase,
  customerNo: string,
  set: TransactionSet,
  mapped: MappedTransaction,
  options: CheckOptions,
): Promise<CheckedOrder> {
  return (await checkPurchaseOrders(db, customerNo, [{ set, mapped }], options))[0]!;
}

/**
 * {@link checkPurchaseOrder} for many orders with two queries in all (every line's item, every
 * PO number), as the database stands: a PO number repeated among `orders` is not found in the
 * others (the caller loads the first before checking the second).
 */
export async function checkPurchaseOrders(
  db: pg.ClientBase,
  customerNo: string,
  orders: readonly { set: TransactionSet; mapped: MappedTransaction }[],
  options: CheckOptions,
): Promise<CheckedOrder[]> {
  // Each distinct (buyer part, vendor part) pair is looked up once: a file's lines name the same
  // few items over and over. `pair[i]` is line i's place among the distinct pairs.
  const bp: (string | null)[] = [];
  const vp: (string | null)[] = [];
  const distinct = new Map<string | null, Map<string | null, number>>();
  const pair: number[] = [];
  for (const { mapped } of orders) {
    for (const l of mapped.lines) {
      const b = l.buyer_part ?? null;
      const v = l.vendor_part ?? null;
      let byVp = distinct.get(b);
      if (byVp === undefined) distinct.set(b, (byVp = new Map()));
      let at = byVp.get(v);
      if (at === undefined) {
        at = bp.length;
        byVp.set(v, at);
        bp.push(b);
        vp.push(v);
      }
      pair.push(at);
    }
  }
  const { rows: found } = await db.query<ItemRow & { ord: string }>(
    `SELECT u.ord::text, i.sku, i.active, i.list_price::text
       FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u (bp, vp, ord)
       LEFT JOIN LATERAL (
         SELECT coalesce(
           (SELECT s.sku FROM sales.items s WHERE s.sku = u.vp),
           (SELECT ci.sku FROM sales.customer_items ci WHERE ci.customer_no = $1 AND ci.customer_item = u.bp),
           (SELECT s.sku FROM sales.items s WHERE s.sku = u.bp)) AS sku) r ON true
       LEFT JOIN sales.items i ON i.sku = r.sku
      ORDER BY u.ord`,
    [customerNo, bp, vp],
  );
  const rows = pair.map((k) => found[k]);
  const pos = options.checkDuplicatePo
    ? [...new Set(orders.map((o) => o.mapped.header.po_number ?? '').filter((po) => po !== ''))]
    : [];
  const existing = new Map<string, string>();
  if (pos.length > 0) {
    const found = await db.query<{ customer_po: string; order_no: string }>(
      `SELECT DISTINCT ON (customer_po) customer_po, order_no FROM sales.orders
        WHERE customer_no = $1 AND customer_po = ANY ($2::text[]) ORDER BY customer_po, id`,
      [customerNo, pos],
    );
    for (const r of found.rows) existing.set(r.customer_po, r.order_no);
  }
  let at = 0;
  return orders.map(({ set, mapped }) => {
    const check = new PurchaseOrderCheck(set, mapped, customerNo, options);
    check.cur();
    if (mapped.lines.length === 0) check.noLines();
    const lines = mapped.lines.map((_, i) => check.po1(i, rows[at + i]));
    at += mapped.lines.length;
    check.beg(existing.get(mapped.header.po_number ?? ''));
    return { problems: check.problems, lines, headerRejected: check.headerRejected };
  });
}
