import type pg from 'pg';
import type { AppContext } from '../pipeline/run.js';
import type { Partner } from '../partners/profile.js';
import type { X12Problem } from '../x12/errors.js';
import { describeField, loadInboundMapping, mapTransaction } from '../x12/mapping.js';
import type { Segment, TransactionSet } from '../x12/types.js';
import { insertPurchaseOrder } from './orders.js';
import { checkPurchaseOrder } from './po-check.js';

/**
 * The exception list: purchase orders that are valid X12 but failed a business rule, held because
 * the partner profile says `business_errors: hold` (their 997 accepted them).
 *
 *   inbound run ──holdOrder──► edi.held_orders (status held: the set's segments, the problems)
 *   erp edi exceptions        lists them
 *   erp edi reprocess         per held order, in its own transaction, the row locked:
 *                             map + check again ─ clean: insert the order, status loaded (once)
 *                                              └ still failing: problems updated, stays held
 */

/** Where a held order came from. */
export interface HoldSource {
  partner: string;
  interchangeId: number;
  fileName: string;
}

/** Stores a set with business problems in the exception list (inside the file's transaction). */
export async function holdOrder(
  db: pg.ClientBase,
  source: HoldSource,
  set: TransactionSet,
  po: string | null,
  problems: readonly X12Problem[],
): Promise<void> {
  await db.query(
    `INSERT INTO edi.held_orders (partner, interchange_id, file_name, isa13, gs06, st02, customer_po, segments, component, problems)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (interchange_id, gs06, st02) DO NOTHING`,
    [
      source.partner,
      source.interchangeId,
      source.fileName,
      set.group.interchange.controlNumber,
      set.group.controlNumber,
      set.controlNumber,
      po,
      JSON.stringify(set.segments.map((s) => [s.ordinal, ...s.elements])),
      set.group.interchange.delimiters.component,
      problems.map((p) => p.message),
    ],
  );
}

/** One held order. */
export interface HeldOrder {
  id: number;
  partner: string;
  fileName: string;
  isa13: string;
  gs06: string;
  st02: string;
  customerPo: string | null;
  problems: string[];
  heldAt: Date;
  checkedAt: Date | null;
}

/** Orders still held, oldest first (one partner, or all). */
export async function listExceptions(db: pg.Pool | pg.ClientBase, partner?: string): Promise<HeldOrder[]> {
  const { rows } = await db.query<{
    id: string;
    partner: string;
    file_name: string;
    isa13: string;
    gs06: string;
    st02: string;
    customer_po: string | null;
    problems: string[];
    held_at: Date;
    checked_at: Date | null;
  }>(
    `SELECT id, partner, file_name, isa13, gs06, st02, customer_po, problems, held_at, checked_at
       FROM edi.held_orders WHERE status = 'held' AND ($1::text IS NULL OR partner = $1) ORDER BY id`,
    [partner ?? null],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    partner: r.partner,
    fileName: r.file_name,
    isa13: r.isa13,
    gs06: r.gs06,
    st02: r.st02,
    customerPo: r.customer_po,
    problems: r.problems,
    heldAt: r.held_at,
    checkedAt: r.checked_at,
  }));
}

/** What reprocessing one held order did. */
export interface ReprocessOutcome {
  id: number;
  customerPo: string | null;
  /** The order loaded, or null when it is still held. */
  orderNo: string | null;
  problems: string[];
}

/** Rebuilds the transaction set of a held order, enough to map and check it again. */
function heldSet(row: {
  file_name: string;
  isa13: string;
  gs06: string;
  st02: string;
  segments: (string | number)[][];
  component: string;
}): TransactionSet {
  const segments: Segment[] = row.segments.map(([ordinal, ...elements]) => ({
    tag: String(elements[0]),
    elements: elements.map(String),
    ordinal: Number(ordinal),
  }));
  return {
    id: '850',
    controlNumber: row.st02,
    implementationRef: null,
    problems: [],
    segments,
    group: {
      controlNumber: row.gs06,
      interchange: {
        file: row.file_name,
        controlNumber: row.isa13,
        delimiters: { element: '*', component: row.component, segment: '~', repetition: null },
      },
    } as unknown as TransactionSet['group'],
  };
}

/**
 * Loads the held orders of `partner` whose problems are gone (master data fixed), each in its own
 * transaction with its row locked, so two operators reprocessing at once load each order once.
 */
export async function reprocessHeld(
  app: AppContext,
  partner: Partner,
  opts: { dryRun?: boolean } = {},
): Promise<ReprocessOutcome[]> {
  const x12 = partner.x12!;
  const mappingName = x12.mappings['850'];
  if (mappingName === undefined) return [];
  const mapping = await loadInboundMapping(app.home, mappingName);
  const productFields =
    (mapping.lines?.fields ?? [])
      .filter((f) => f.kind === 'product')
      .map((f) => `${f.name} (${describeField(f)})`)
      .join(' and ') || 'no product id field';
  const { rows: ids } = await app.pool.query<{ id: string }>(
    `SELECT id FROM edi.held_orders WHERE partner = $1 AND status = 'held' ORDER BY id`,
    [partner.name],
  );
  const out: ReprocessOutcome[] = [];
  for (const { id } of ids) {
    const client = await app.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query(
        `SELECT * FROM edi.held_orders WHERE id = $1 AND status = 'held' FOR UPDATE SKIP LOCKED`,
        [id],
      );
      const row = rows[0];
      if (!row) {
        await client.query('ROLLBACK');
        continue;
      }
      const set = heldSet(row);
      const mapped = mapTransaction(mapping, set);
      const checked =
        mapped.problems.length > 0
          ? null
          : await checkPurchaseOrder(client, partner.customer_no!, set, mapped, {
              checkDuplicatePo: true,
              productFields,
            });
      const problems = [...mapped.problems, ...(checked?.problems ?? [])].map((p) => p.message);
      let orderNo: string | null = null;
      if (problems.length === 0 && checked) {
        orderNo = await insertPurchaseOrder(
          client,
          {
            partner: partner.name,
            customerNo: partner.customer_no!,
            interchangeId: Number(row.interchange_id),
            fileName: row.file_name,
          },
          set,
          mapped,
          checked.lines.filter((l) => l !== null),
        );
        const { rows: o } = await client.query<{ id: string }>(
          'SELECT id FROM sales.orders WHERE order_no = $1',
          [orderNo],
        );
        await client.query(
          `UPDATE edi.held_orders SET status = 'loaded', order_id = $2, problems = '{}', checked_at = now(), loaded_at = now() WHERE id = $1`,
          [id, o[0]!.id],
        );
      } else {
        await client.query('UPDATE edi.held_orders SET problems = $2, checked_at = now() WHERE id = $1', [
          id,
          problems,
        ]);
      }
      await client.query(opts.dryRun ? 'ROLLBACK' : 'COMMIT');
      out.push({ id: Number(id), customerPo: row.customer_po, orderNo, problems });
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
  return out;
}
