import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import type pg from 'pg';
import { withTransaction } from '../db/pool.js';
import { CancelledError, UserError } from '../errors.js';
import { resolveEndpoint, type Partner, type PartnerDirs } from '../partners/profile.js';
import type { AppContext } from '../pipeline/run.js';
import { resolveInside, uploadAtomic, type Sftp } from '../sftp/index.js';
import { recordOutbound } from './interchanges.js';
import {
  buildOutbound,
  buildTransactionBody,
  loadOutboundMapping,
  type OutboundDocument,
  type OutboundMapping,
} from '../x12/outbound.js';
import { outputFormat, usageIndicator } from '../x12/partner.js';
import { serializeSegment, X12FormatError } from '../x12/writer.js';
import { shipNoticeMapping, shipNoticeProblem } from './ship-notice.js';
import { ControlNumberSource, previewSegments, withPartnerSftp } from './transport.js';

/**
 * Outbound EDI for one partner: 810 invoices and 856 ship notices for the partner's customer.
 *
 *   BEGIN ─ select unsent documents (FOR UPDATE SKIP LOCKED, at most max_documents_per_file)
 *         ─ check each against the mapping and, for an 856, the partner's x12.ship_notice rules
 *           (a document that cannot be written is reported, skipped, and takes no control number)
 *         ─ control numbers (allocateControlNumbers: committed on their own, never handed out twice)
 *         ─ build the interchange (mappings/x12/810-out.yaml, 856-out.yaml)
 *         ─ record it 'sent' + edi.sent_invoices / sent_shipments + its text (edi.outbound_files)
 *   COMMIT ─► uploadAtomic to the partner's outbox ─► delivered_at
 *
 * A document is sent once: the link row's primary key and the row lock guarantee it across
 * concurrent workers. A file committed but not uploaded (the upload failed, the worker died) is
 * delivered by the next run from its recorded text, with the same name and control numbers.
 */

/** The transaction sets erp writes. */
export const OUTBOUND_SETS = ['810', '856'] as const;
export type OutboundSet = (typeof OUTBOUND_SETS)[number];

/** Options of an outbound run. */
export interface OutboundOptions {
  /** Build the files and show them; allocate, record, upload nothing. */
  dryRun: boolean;
  signal?: AbortSignal;
  /** Which sets; @defaultValue the partner's outbound 810/856 */
  transactionSets?: OutboundSet[];
  /** Where `_env` settings of the partner are read. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** ISA09/GS04. @defaultValue now */
  now?: Date;
  /** Segments of each file kept in the result's preview. @defaultValue 12 */
  previewSegments?: number;
  /** Called with the number of documents written so far. */
  onDocuments?: (n: number) => void;
}

/** One outbound file. */
export interface OutboundFileResult {
  transactionSet: OutboundSet;
  name: string;
  isa13: string;
  gs06: string;
  /** Its edi.interchanges row (null in a dry run). */
  interchangeId: number | null;
  /** Invoice or shipment numbers, in ST02 order. */
  documents: string[];
  bytes: number;
  /** Remote path once uploaded. */
  remotePath: string | null;
  /** The first segments. */
  preview: string[];
}

/** The result of an outbound run for one partner. */
export interface OutboundRunResult {
  partner: string;
  files: OutboundFileResult[];
  /** Files of earlier runs that were committed but not uploaded, delivered now. */
  redelivered: string[];
  /** Documents that cannot be written (they stay unsent), with why. */
  rejected: { transactionSet: OutboundSet; document: string; error: string }[];
}

interface SelectedDocument {
  id: string;
  key: string;
  doc: OutboundDocument;
}

const INVOICES = `
  SELECT i.id::text, i.invoice_no, i.invoice_date::text, i.currency, o.customer_po, o.order_date::text AS po_date,
         -- N1*BT/ST echo the party codes and qualifiers the 850 came with; an order that did not come
         -- by EDI names the customer by our number, qualifier 91 (assigned by seller).
         c.name AS bill_to_name, coalesce(io.header ->> 'bill_to_code', c.customer_no) AS bill_to_code,
         CASE WHEN io.header ->> 'bill_to_code' IS NOT NULL THEN coalesce(io.header ->> 'bill_to_qualifier', '92')
              ELSE '91' END AS bill_to_qualifier,
         c.payment_terms_days,
         coalesce(o.ship_to_name, io.header ->> 'ship_to_name') AS ship_to_name,
         io.header ->> 'ship_to_code' AS ship_to_code,
         coalesce(io.header ->> 'ship_to_qualifier', '92') AS ship_to_qualifier, s.ship_date::text AS ship_date
    FROM sales.invoices i
    JOIN sales.customers c ON c.customer_no = i.customer_no
    LEFT JOIN sales.orders o ON o.id = i.order_id
    LEFT JOIN edi.inbound_orders io ON io.order_id = o.id
    LEFT JOIN sales.shipments s ON s.id = i.shipment_id
   WHERE i.customer_no = $1 AND i.status = 'open'
     AND NOT EXISTS (SELECT 1 FROM edi.sent_invoices x WHERE x.invoice_id = i.id)
     AND NOT (i.id = ANY ($2::bigint[]))
   ORDER BY i.id
   LIMIT $3`;

const INVOICE_LINES = `
  SELECT il.invoice_id::text, il.quantity::text, il.uom, il.unit_price::text, il.description, il.sku,
         coalesce(io.lines -> (il.order_line_no - 1) ->> 'buyer_part', ci.customer_item, il.sku) AS buyer_part,
         -- What the 850 line named: the vendor part (PO1 VP) and the price basis (PO105).
         coalesce(io.lines -> (il.order_line_no - 1) ->> 'vendor_part', il.sku) AS vendor_part,
         io.lines -> (il.order_line_no - 1) ->> 'price_basis' AS price_basis,
         il.amount::text
    FROM sales.invoice_lines il
    JOIN sales.invoices i ON i.id = il.invoice_id
    LEFT JOIN edi.inbound_orders io ON io.order_id = i.order_id
    LEFT JOIN LATERAL (SELECT x.customer_item FROM sales.customer_items x
                        WHERE x.customer_no = i.customer_no AND x.sku = il.sku
                        ORDER BY x.customer_item LIMIT 1) ci ON true
   WHERE il.invoice_id = ANY ($1::bigint[])
   ORDER BY il.invoice_id, il.line_no`;

const SHIPMENTS = `
  SELECT s.id::text, s.shipment_no, s.ship_date::text, to_char(s.created_at AT TIME ZONE 'UTC', 'HH24MI') AS ship_time,
         s.carrier, s.tracking_no, s.bill_of_lading, s.packaging_code, s.weight_uom,
         coalesce(s.package_count, nullif(p.packages, 0)) AS package_count,
         coalesce(s.gross_weight, p.weight)::text AS gross_weight,
         coalesce(o.ship_to_name, io.header ->> 'ship_to_name') AS ship_to_name,
         io.header ->> 'ship_to_code' AS ship_to_code
    FROM sales.shipments s
    JOIN sales.orders o ON o.id = s.order_id
    LEFT JOIN edi.inbound_orders io ON io.order_id = o.id
    -- The cartons' count and weight (a weight only when every carton has one).
    LEFT JOIN LATERAL (SELECT count(*)::int AS packages,
                              CASE WHEN count(*) = count(sp.weight) THEN sum(sp.weight) END AS weight
                         FROM sales.shipment_packages sp WHERE sp.shipment_id = s.id) p ON true
   WHERE o.customer_no = $1
     AND NOT EXISTS (SELECT 1 FROM edi.sent_shipments x WHERE x.shipment_id = s.id)
     AND NOT (s.id = ANY ($2::bigint[]))
   ORDER BY s.id
   LIMIT $3`;

const SHIPMENT_LINES = `
  SELECT sl.shipment_id::text, sl.quantity::text, ol.uom, coalesce(ol.customer_line_ref, ol.line_no::text) AS line_number,
         ol.sku, it.description, o.customer_po, o.order_date::text AS po_date, sp.sscc,
         coalesce(io.lines -> (ol.line_no - 1) ->> 'buyer_part', ci.customer_item, ol.sku) AS buyer_part,
         coalesce(io.lines -> (ol.line_no - 1) ->> 'vendor_part', ol.sku) AS vendor_part
    FROM sales.shipment_lines sl
    JOIN sales.order_lines ol ON ol.order_id = sl.order_id AND ol.line_no = sl.order_line_no
    JOIN sales.orders o ON o.id = sl.order_id
    JOIN sales.items it ON it.sku = ol.sku
    LEFT JOIN sales.shipment_packages sp ON sp.shipment_id = sl.shipment_id AND sp.package_no = sl.package_no
    LEFT JOIN edi.inbound_orders io ON io.order_id = o.id
    LEFT JOIN LATERAL (SELECT x.customer_item FROM sales.customer_items x
                        WHERE x.customer_no = o.customer_no AND x.sku = ol.sku
                        ORDER BY x.customer_item LIMIT 1) ci ON true
   WHERE sl.shipment_id = ANY ($1::bigint[])
   ORDER BY sl.shipment_id, sl.line_no`;

/**
 * Up to `limit` unsent documents of `set` for the customer, not in `exclude`, locked (SKIP
 * LOCKED: a concurrent run takes the others), as mapping input.
 */
async function selectDocuments(
  db: pg.ClientBase,
  set: OutboundSet,
  customerNo: string,
  exclude: readonly string[],
  limit: number,
): Promise<SelectedDocument[]> {
  type Row = Record<string, string | number | null>;
  const lock = set === '810' ? ' FOR UPDATE OF i SKIP LOCKED' : ' FOR UPDATE OF s SKIP LOCKED';
  const { rows } = await db.query<Row>((set === '810' ? INVOICES : SHIPMENTS) + lock, [
    customerNo,
    exclude,
    limit,
  ]);
  if (rows.length === 0) return [];
  const { rows: lines } = await db.query<Row>(set === '810' ? INVOICE_LINES : SHIPMENT_LINES, [
    rows.map((r) => r.id),
  ]);
  const byDoc = new Map<string, Row[]>();
  for (const l of lines) {
    const id = String(set === '810' ? l.invoice_id : l.shipment_id);
    const list = byDoc.get(id) ?? [];
    list.push(l);
    byDoc.set(id, list);
  }
  return rows.map((r) => {
    const id = String(r.id);
    const ls = byDoc.get(id) ?? [];
    if (set === '810') {
      const total = ls.reduce((sum, l) => sum + BigInt(String(l.amount).replace('.', '')), 0n);
      const cents = total.toString().padStart(3, '0');
      return {
        id,
        key: String(r.invoice_no),
        doc: {
          header: {
            invoice_number: r.invoice_no,
            invoice_date: r.invoice_date,
            po_number: r.customer_po,
            po_date: r.po_date,
            currency: r.currency,
            bill_to_name: r.bill_to_name,
            bill_to_code: r.bill_to_code,
            bill_to_qualifier: r.bill_to_qualifier,
            ship_to_name: r.ship_to_name,
            ship_to_code: r.ship_to_code,
            ship_to_qualifier: r.ship_to_qualifier,
            terms_net_days: r.payment_terms_days,
            ship_date: r.ship_date,
            total_amount: `${cents.slice(0, -2)}.${cents.slice(-2)}`,
          },
          lines: ls.map((l) => ({
            quantity: l.quantity,
            uom: l.uom,
            unit_price: l.unit_price,
            description: l.description,
            vendor_part: l.vendor_part,
            buyer_part: l.buyer_part,
            price_basis: l.price_basis,
          })),
        },
      };
    }
    return {
      id,
      key: String(r.shipment_no),
      doc: {
        header: {
          shipment_id: r.shipment_no,
          ship_date: r.ship_date,
          ship_time: r.ship_time,
          carrier_scac: r.carrier,
          tracking_number: r.tracking_no,
          bill_of_lading: r.bill_of_lading,
          packaging_code: r.packaging_code,
          package_count: r.package_count,
          gross_weight: r.gross_weight,
          weight_uom: r.weight_uom,
          ship_to_name: r.ship_to_name,
          ship_to_code: r.ship_to_code,
        },
        lines: ls.map((l) => ({
          line_number: l.line_number,
          sku: l.sku,
          sscc: l.sscc,
          quantity: l.quantity,
          uom: l.uom,
          vendor_part: l.vendor_part,
          buyer_part: l.buyer_part,
          description: l.description,
          po_number: l.customer_po,
          po_date: l.po_date,
        })),
      },
    };
  });
}

/** Writes a document's body once, to find values that cannot be written before numbers are allocated. */
function checkDocument(
  partner: Partner,
  mapping: OutboundMapping,
  d: SelectedDocument,
  set: OutboundSet,
): string | null {
  const label = `${set === '810' ? 'invoice' : 'shipment'} ${d.key}`;
  if (d.doc.lines.length === 0) return `${label}: has no lines; nothing to send`;
  if (set === '856') {
    const missing = shipNoticeProblem(partner, d.doc, label);
    if (missing !== null) return missing;
  }
  try {
    const format = outputFormat(partner.x12);
    for (const seg of buildTransactionBody(mapping, d.doc, label)) serializeSegment(seg, format);
    return null;
  } catch (err) {
    if (err instanceof X12FormatError)
      return err.message.startsWith(label) ? err.message : `${label}: ${err.message}`;
    throw err;
  }
}

/**
 * Sends the partner's unsent 810s and 856s (see the module comment). In a dry run the files are
 * built with the control numbers the next run would use and returned; nothing is written.
 */
export async function runOutbound(
  app: AppContext,
  partner: Partner,
  opts: OutboundOptions,
): Promise<OutboundRunResult> {
  const p = partner.x12;
  const sets = opts.transactionSets ?? OUTBOUND_SETS.filter((s) => p.outbound.includes(s));
  const mappings = new Map<OutboundSet, OutboundMapping>();
  for (const set of sets) {
    if (!p.outbound.includes(set) || p.mappings[set] === undefined) {
      throw new UserError(
        `${partner.file}: partner ${partner.name} does not receive ${set} (x12.outbound is ${p.outbound.join(', ') || 'empty'})`,
      );
    }
    const mapping = await loadOutboundMapping(app.home, p.mappings[set]!);
    if (mapping.transaction_set !== set) {
      throw new UserError(
        `${partner.file}, x12.mappings.${set}: mapping ${mapping.name} writes ${mapping.transaction_set}, not ${set}`,
      );
    }
    mappings.set(set, set === '856' ? shipNoticeMapping(partner, mapping) : mapping);
  }
  const result: OutboundRunResult = { partner: partner.name, files: [], redelivered: [], rejected: [] };
  const work = async (sftp: Sftp | null, endpoint: PartnerDirs | null): Promise<void> => {
    if (sftp && endpoint)
      result.redelivered = await deliverPending(app, partner, sftp, endpoint, opts.signal);
    const source = new ControlNumberSource(app.pool, partner.name, opts.dryRun);
    let written = 0;
    for (const set of sets) {
      const mapping = mappings.get(set)!;
      const exclude: string[] = [];
      for (;;) {
        if (opts.signal?.aborted) throw new CancelledError();
        const file = await sendBatch(app, partner, set, mapping, source, exclude, result, opts);
        if (file === null) break;
        written += file.documents.length;
        opts.onDocuments?.(written);
        if (sftp && endpoint) {
          file.remotePath = await deliver(app, sftp, endpoint, file.interchangeId!, opts.signal);
        }
        result.files.push(file);
      }
    }
  };
  if (opts.dryRun) {
    await work(null, null);
  } else {
    const endpoint = resolveEndpoint(partner, opts.env);
    await withPartnerSftp(
      partner,
      endpoint,
      {
        log: app.log,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.env ? { env: opts.env } : {}),
      },
      (sftp) => work(sftp, endpoint),
    );
  }
  for (const r of result.rejected) {
    app.log.warn({ partner: partner.name, set: r.transactionSet, document: r.document }, r.error);
  }
  return result;
}

/**
 * One interchange of up to max_documents_per_file documents, recorded and committed (rolled back
 * in a dry run); null when nothing is left to send. Documents that cannot be written are added to
 * `exclude` and `result.rejected`.
 */
async function sendBatch(
  app: AppContext,
  partner: Partner,
  set: OutboundSet,
  mapping: OutboundMapping,
  source: ControlNumberSource,
  exclude: string[],
  result: OutboundRunResult,
  opts: OutboundOptions,
): Promise<OutboundFileResult | null> {
  // A dry run builds and records the file as a real run would, and keeps nothing.
  return withTransaction(
    app.pool,
    async (client) => {
      for (;;) {
        const selected = await selectDocuments(
          client,
          set,
          partner.customer_no,
          exclude,
          partner.max_documents_per_file,
        );
        if (selected.length === 0) return null;
        const good: SelectedDocument[] = [];
        for (const d of selected) {
          const error = checkDocument(partner, mapping, d, set);
          if (error === null) good.push(d);
          else {
            exclude.push(d.id);
            result.rejected.push({ transactionSet: set, document: d.key, error });
          }
        }
        if (good.length === 0) continue;
        const control = await source.next({ groups: 1, sets: good.length });
        const built = buildOutbound(
          {
            profile: partner.x12,
            mapping,
            control: { isa13: control.isa13, gs06: control.gs06[0]!, st02: control.st02 },
            ...(opts.now ? { now: opts.now } : {}),
            label: (_doc, i) => `${set === '810' ? 'invoice' : 'shipment'} ${good[i]!.key}`,
          },
          good.map((d) => d.doc),
        );
        const name = `${set}-${built.isa13}.edi`;
        const sha256 = createHash('sha256').update(built.text).digest('hex');
        const interchangeId = await recordOutbound(client, {
          partner: partner.name,
          fileName: name,
          sha256,
          usage: usageIndicator(partner.x12),
          isa13: built.isa13,
          groups: [
            {
              functionalId: mapping.functional_id,
              gs06: built.gs06,
              version: partner.x12.version,
              sets: built.sets.map((s, i) => ({ st01: set, st02: s.st02, documentKey: good[i]!.key })),
            },
          ],
        });
        await client.query(
          `INSERT INTO ${set === '810' ? 'edi.sent_invoices (invoice_id' : 'edi.sent_shipments (shipment_id'}, partner, interchange_id, st02)
         SELECT d.id, $2, $3, d.st02 FROM unnest($1::bigint[], $4::text[]) AS d (id, st02)`,
          [good.map((d) => d.id), partner.name, interchangeId, built.sets.map((s) => s.st02)],
        );
        await client.query(
          'INSERT INTO edi.outbound_files (interchange_id, partner, file_name, content) VALUES ($1, $2, $3, $4)',
          [interchangeId, partner.name, name, built.text],
        );
        // Nothing is kept in a dry run, so the next batch would select the same documents again.
        if (opts.dryRun) exclude.push(...good.map((d) => d.id));
        return {
          transactionSet: set,
          name,
          isa13: built.isa13,
          gs06: built.gs06,
          interchangeId: opts.dryRun ? null : interchangeId,
          documents: good.map((d) => d.key),
          bytes: Buffer.byteLength(built.text),
          remotePath: null,
          preview: previewSegments(built.text, opts.previewSegments ?? 12),
        };
      }
    },
    { rollback: opts.dryRun },
  );
}

/**
 * Uploads one recorded file to the partner's outbox and marks it delivered. The row stays locked
 * during the upload, so two runs never deliver the same file twice. A file already in the outbox
 * with the recorded size (an earlier upload whose bookkeeping failed) counts as delivered.
 * Returns the remote path, or null when another run has it.
 */
async function deliver(
  app: AppContext,
  sftp: Sftp,
  endpoint: PartnerDirs,
  interchangeId: number,
  signal?: AbortSignal,
): Promise<string | null> {
  return withTransaction(app.pool, async (client) => {
    const { rows } = await client.query<{ interchange_id: string; file_name: string; content: string }>(
      `SELECT f.interchange_id, f.file_name, f.content FROM edi.outbound_files f
        WHERE f.interchange_id = $1 AND f.delivered_at IS NULL FOR UPDATE SKIP LOCKED`,
      [interchangeId],
    );
    const row = rows[0];
    if (!row) return null;
    const content = Buffer.from(row.content);
    const name = row.file_name;
    const target = resolveInside(endpoint.outbox, name);
    let remotePath: string;
    const there = await sftp.exists(target).catch(() => false);
    if (there !== false && (await sftp.stat(target)).size === content.length) {
      remotePath = target;
    } else {
      remotePath = await uploadAtomic(sftp, Readable.from([content]), endpoint.outbox, name, {
        ...(signal ? { signal } : {}),
      });
    }
    await client.query(
      'UPDATE edi.outbound_files SET delivered_at = now(), remote_path = $2 WHERE interchange_id = $1',
      [row.interchange_id, remotePath],
    );
    await client.query(
      `UPDATE edi.interchanges SET sent_at = now(), updated_at = now() WHERE id = $1 AND status = 'sent'`,
      [row.interchange_id],
    );
    return remotePath;
  });
}

/** Delivers the partner's files that were committed as sent but never uploaded. */
async function deliverPending(
  app: AppContext,
  partner: Partner,
  sftp: Sftp,
  endpoint: PartnerDirs,
  signal?: AbortSignal,
): Promise<string[]> {
  const { rows } = await app.pool.query<{ interchange_id: string }>(
    `SELECT interchange_id FROM edi.outbound_files WHERE partner = $1 AND delivered_at IS NULL ORDER BY interchange_id`,
    [partner.name],
  );
  const out: string[] = [];
  for (const r of rows) {
    const remote = await deliver(app, sftp, endpoint, Number(r.interchange_id), signal);
    if (remote) out.push(path.posix.basename(remote));
  }
  return out;
}

/** One line per file, for step summaries and dry runs. */
export function describeOutboundFile(f: OutboundFileResult, previewLines = 0): string[] {
  const out = [
    `${f.name}: ${f.transactionSet} × ${f.documents.length} (${f.documents.slice(0, 10).join(', ')}${f.documents.length > 10 ? ' …' : ''}), ISA13 ${f.isa13}, GS06 ${f.gs06}, ${f.bytes} bytes${f.remotePath ? `, delivered to ${f.remotePath}` : ''}`,
  ];
  for (const s of f.preview.slice(0, previewLines)) out.push(`  | ${s}`);
  return out;
}
