import { spawn } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInbound } from '../src/edi/inbound.js';
import { runOutbound, type OutboundRunResult } from '../src/edi/outbound.js';
import { shipNoticeMapping } from '../src/edi/ship-notice.js';
import { ediStatus } from '../src/edi/status.js';
import type { Partner } from '../src/partners/profile.js';
import { loadOutboundMapping } from '../src/x12/outbound.js';
import { HOME, parseStrict, segs, startEdiWorld, type EdiWorld } from './helpers/edi.js';
import { checkHierarchy, gs1CheckDigit } from './helpers/hl-check.js';

let w: EdiWorld;
let A: Partner;
let B: Partner;
const NOW = new Date('2026-02-03T14:30:00Z');

/** Ships every line of the order with PO `po` in full and invoices the shipment. */
async function shipAndInvoice(
  po: string | null,
  orderId?: number,
): Promise<{ shipment: string; invoice: string }> {
  const { rows: s } = await w.db.pool.query<{ id: string; shipment_no: string }>(
    `INSERT INTO sales.shipments (order_id, ship_date, carrier, tracking_no, bill_of_lading, created_at)
     SELECT id, '2026-02-02', 'UPSN', '1ZTRACK' || id, 'BOL-' || id, '2026-02-02T16:45:00Z'
       FROM sales.orders WHERE ($1::text IS NULL AND id = $2) OR customer_po = $1
     RETURNING id, shipment_no`,
    [po, orderId ?? null],
  );
  const shipment = s[0]!;
  // Lines 1 and 2 go in carton 1 (10.5 lb), the others in carton 2 (4.25 lb).
  await w.db.pool.query(
    `INSERT INTO sales.shipment_packages (shipment_id, package_no, weight)
     SELECT $1, n, CASE n WHEN 1 THEN 10.5 ELSE 4.25 END
       FROM generate_series(1, (SELECT CASE WHEN count(*) > 2 THEN 2 ELSE 1 END FROM sales.order_lines l
                                  JOIN sales.shipments s ON s.order_id = l.order_id WHERE s.id = $1)) AS n`,
    [shipment.id],
  );
  await w.db.pool.query(
    `INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity, package_no)
     SELECT $1, l.line_no, l.order_id, l.line_no, l.quantity, CASE WHEN l.line_no <= 2 THEN 1 ELSE 2 END
       FROM sales.order_lines l JOIN sales.shipments s ON s.order_id = l.order_id WHERE s.id = $1`,
    [shipment.id],
  );
  const { rows: i } = await w.db.pool.query<{ id: string; invoice_no: string }>(
    `INSERT INTO sales.invoices (customer_no, order_id, shipment_id, invoice_date, due_date)
     SELECT o.customer_no, o.id, s.id, '2026-02-03', '2026-03-05'
       FROM sales.shipments s JOIN sales.orders o ON o.id = s.order_id WHERE s.id = $1
     RETURNING id, invoice_no`,
    [shipment.id],
  );
  await w.db.pool.query(
    `INSERT INTO sales.invoice_lines (invoice_id, line_no, sku, description, order_line_no, quantity, uom, unit_price)
     SELECT $1, sl.line_no, ol.sku, it.description, ol.line_no, sl.quantity, ol.uom, ol.unit_price
       FROM sales.shipment_lines sl
       JOIN sales.order_lines ol ON ol.order_id = sl.order_id AND ol.line_no = sl.order_line_no
       JOIN sales.items it ON it.sku = ol.sku
      WHERE sl.shipment_id = $2`,
    [i[0]!.id, shipment.id],
  );
  return { shipment: shipment.shipment_no, invoice: i[0]!.invoice_no };
}

async function outbound(
  partner: Partner,
  sets: ('810' | '856')[],
  dryRun = false,
): Promise<OutboundRunResult> {
  return runOutbound(w.app, partner, { dryRun, env: w.env, now: NOW, transactionSets: sets });
}

async function outboxText(partner: string, name: string): Promise<string> {
  return readFile(path.join(w.dir(partner, 'outbox'), name), 'utf8');
}

const docs: Record<string, { shipment: string; invoice: string }> = {};
let manualShipment = '';

beforeAll(async () => {
  w = await startEdiWorld('edi_outbound');
  A = await w.partner('PARTNERA');
  B = await w.partner('PARTNERB');
  // Shipments take stock at cost and post it: the month is open and the stock is there.
  await w.db.pool.query(`
    SELECT gl.open_period('2026-02');
    INSERT INTO inv.stock_movements (sku, moved_at, quantity, reason, unit_cost, source_ref)
    SELECT sku, '2026-02-01', 1000, 'opening', round(list_price * 0.6, 4), 'count 2026-01-31' FROM sales.items;`);
  // Orders arrive by EDI first, so the 810/856 echo the 850's buyer parts and ship-to codes.
  await w.drop('PARTNERA', 'partner-a-850.edi');
  await w.drop('PARTNERB', 'partner-b-850.edi');
  for (const p of [A, B]) {
    const r = await runInbound(w.app, p, { dryRun: false, env: w.env });
    expect(r.files.map((f) => f.status)).toEqual(['loaded']);
  }
  // As if PO-10002's second line had said PO105 = CP (price per carton) rather than nothing.
  await w.db.pool.query(
    `UPDATE edi.inbound_orders io SET lines = jsonb_set(io.lines, '{1,price_basis}', '"CP"')
      FROM sales.orders o WHERE o.id = io.order_id AND o.customer_po = 'PO-10002'`,
  );
  for (const po of ['PO-10001', 'PO-10002', 'GX-7001']) docs[po] = await shipAndInvoice(po);
  // A manual order without a customer PO: its 856 cannot be written (PRF01 is required).
  const { rows } = await w.db.pool.query<{ id: number }>(
    `WITH o AS (INSERT INTO sales.orders (customer_no) VALUES ('PARTNERA') RETURNING id)
     INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price)
     SELECT id, 1, 'SKU-1003', 4, 'EA', 0.15 FROM o RETURNING order_id AS id`,
  );
  manualShipment = (await shipAndInvoice(null, rows[0]!.id)).shipment;
});
afterAll(async () => {
  await w?.close();
});

describe('outbound 810 invoices', () => {
  let first: OutboundRunResult;

  it('partner A: one interchange with both invoices, parsed back strictly, recorded as sent, delivered atomically', async () => {
    first = await outbound(A, ['810']);
    expect(first.rejected.map((r) => r.document)).toEqual([]);
    expect(first.files.map((f) => f.documents)).toEqual([
      [docs['PO-10001']!.invoice, docs['PO-10002']!.invoice, expect.stringMatching(/^INV/)],
    ]);
    const f = first.files[0]!;
    // Only the final name in the outbox (no temp .part file), next to the acks of the inbound run.
    const outbox = await w.list('PARTNERA', 'outbox');
    expect(outbox).toContain(f.name);
    expect(outbox.filter((n) => n.startsWith('.'))).toEqual([]);
    const text = await outboxText('PARTNERA', f.name);
    const { rows: stored } = await w.db.pool.query(
      'SELECT content, delivered_at IS NOT NULL AS delivered FROM edi.outbound_files',
    );
    expect(stored).toEqual([{ content: text, delivered: true }]);

    const s = parseStrict(text).segments[0]!;
    const isa = segs(s, 'ISA')[0]!;
    // node-x12 drops ISA13's leading zeros; the raw text keeps them.
    expect(text.split('*')[13]).toBe(f.isa13);
    expect([isa[5], isa[6]!.trim(), isa[7], isa[8]!.trim(), Number(isa[13]), isa[15]]).toEqual([
      'ZZ',
      'ERPCO',
      'ZZ',
      'ACMEBUY',
      Number(f.isa13),
      'P',
    ]);
    expect(segs(s, 'GS')[0]!.slice(1, 9)).toEqual([
      'IN',
      'ERPCO',
      'ACMEBUY',
      '20260203',
      '1430',
      f.gs06,
      'X',
      '004010',
    ]);
    expect(segs(s, 'BIG')[0]).toEqual(['BIG', '20260203', docs['PO-10001']!.invoice, '20260115', 'PO-10001']);
    expect(segs(s, 'IT1').slice(0, 3)).toEqual([
      // VP: the vendor part the 850 line named (V-9001), our sku where it named none.
      ['IT1', '1', '10', 'EA', '12.5', 'PE', 'BP', 'SKU-1001', 'VP', 'V-9001'],
      ['IT1', '2', '5.5', 'CA', '3.2', 'PE', 'BP', 'SKU-1002', 'VP', 'SKU-1002'],
      ['IT1', '3', '100', 'EA', '0.15', 'PE', 'BP', 'SKU-1003', 'VP', 'V-9003'],
    ]);
    // IT105 echoes the basis of unit price the order line came with (PO105 CP on PO-10002 line 2).
    expect(segs(s, 'IT1')[4]).toEqual([
      'IT1',
      '2',
      '24',
      'EA',
      '7.99',
      'CP',
      'BP',
      'SKU-2002',
      'VP',
      'V-8002',
    ]);
    // N1*BT: the buyer's own code and qualifier from the 850 (N1*BT*ACME CORP*92*HQ), not our customer number.
    expect(segs(s, 'N1')[0]).toEqual(['N1', 'BT', 'Acme Corp', '92', 'HQ']);
    expect(segs(s, 'N1')[1]).toEqual(['N1', 'ST', 'ACME DISTRIBUTION CENTER', '92', 'DC01']);
    expect(segs(s, 'PID')[1]).toEqual(['PID', 'F', '', '', '', 'Hex nut, zinc']);
    // 125.00 + 17.60 + 15.00 = 157.60 (N2); 900.00 + 191.76 = 1091.76; the manual order 4 × 0.15.
    expect(segs(s, 'TDS')).toEqual([
      ['TDS', '15760'],
      ['TDS', '109176'],
      ['TDS', '60'],
    ]);
    expect(segs(s, 'CTT')).toEqual([
      ['CTT', '3', '115.5'],
      ['CTT', '2', '26'],
      ['CTT', '1', '4'],
    ]);
    const st02 = segs(s, 'ST').map((x) => x[2]);
    expect(st02).toEqual(f.documents.map((_, i) => String(Number(st02[0]) + i).padStart(4, '0')));

    const { rows } = await w.db.pool.query(
      `SELECT i.status, lpad(i.isa13::text, 9, '0') AS isa13, i.set_count, (SELECT count(*)::int FROM edi.sent_invoices s WHERE s.interchange_id = i.id) AS invoices
         FROM edi.interchanges i WHERE i.direction = 'out'`,
    );
    expect(rows).toEqual([{ status: 'sent', isa13: f.isa13, set_count: 3, invoices: 3 }]);
  });

  it('a second run sends nothing again; a new invoice gets higher control numbers that never repeat', async () => {
    const again = await outbound(A, ['810']);
    expect(again.files).toEqual([]);
    // A second order for partner A, shipped and invoiced: only it goes out.
    const { rows } = await w.db.pool.query<{ id: number }>(
      `WITH o AS (INSERT INTO sales.orders (customer_no, customer_po) VALUES ('PARTNERA', 'PO-MANUAL-2') RETURNING id)
       INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price)
       SELECT id, 1, 'SKU-2002', 3, 'EA', 7.99 FROM o RETURNING order_id AS id`,
    );
    const extra = await shipAndInvoice(null, rows[0]!.id);
    const second = await outbound(A, ['810']);
    expect(second.files.map((f) => f.documents)).toEqual([[extra.invoice]]);
    const a = first.files[0]!;
    const b = second.files[0]!;
    expect(Number(b.isa13)).toBeGreaterThan(Number(a.isa13));
    expect(Number(b.gs06)).toBeGreaterThan(Number(a.gs06));
    const st = (name: string): Promise<number[]> =>
      outboxText('PARTNERA', name).then((t) =>
        segs(parseStrict(t).segments[0]!, 'ST').map((x) => Number(x[2])),
      );
    const all = [...(await st(a.name)), ...(await st(b.name))];
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual([...all].sort((x, y) => x - y));
    const { rows: sent } = await w.db.pool.query(
      'SELECT count(*)::int AS n, count(DISTINCT invoice_id)::int AS d FROM edi.sent_invoices',
    );
    expect(sent).toEqual([{ n: 4, d: 4 }]);
  });

  it('two runs at once never send a document twice', async () => {
    const made: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { rows } = await w.db.pool.query<{ id: number }>(
        `WITH o AS (INSERT INTO sales.orders (customer_no, customer_po) VALUES ('PARTNERA', $1) RETURNING id)
         INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price)
         SELECT id, 1, 'SKU-1001', 1, 'EA', 12.50 FROM o RETURNING order_id AS id`,
        [`PO-PAR-${i}`],
      );
      made.push((await shipAndInvoice(null, rows[0]!.id)).invoice);
    }
    const one = { ...A, max_documents_per_file: 1 };
    const runs = await Promise.all([
      runOutbound(w.app, one, { dryRun: false, env: w.env, transactionSets: ['810'] }),
      runOutbound(w.app, one, { dryRun: false, env: w.env, transactionSets: ['810'] }),
    ]);
    const sent = runs.flatMap((r) => r.files.flatMap((f) => f.documents));
    expect(sent.sort()).toEqual(made.sort());
    const isa13s = runs.flatMap((r) => r.files.map((f) => f.isa13));
    expect(new Set(isa13s).size).toBe(4);
  });
});

describe('outbound 856 ship notices', () => {
  it('partner A (S-O-P-I): pack HLs with SSCC-18s, TD1, REF*BM and REF*CN from the shipments; a shipment without a PO is reported and left unsent', async () => {
    const r = await outbound(A, ['856']);
    expect(r.rejected).toEqual([
      {
        transactionSet: '856',
        document: manualShipment,
        error: `shipment ${manualShipment}, HL 2 (O): PRF01 (field po_number) is required but empty`,
      },
    ]);
    const f = r.files[0]!;
    expect(f.documents.slice(0, 2)).toEqual([docs['PO-10001']!.shipment, docs['PO-10002']!.shipment]);
    const s = parseStrict(await outboxText('PARTNERA', f.name)).segments[0]!;
    expect(segs(s, 'GS')[0]![1]).toBe('SH');
    expect(segs(s, 'BSN')[0]).toEqual(['BSN', '00', docs['PO-10001']!.shipment, '20260202', '1645']);
    const first = s.slice(
      s.findIndex((x) => x[0] === 'ST'),
      s.findIndex((x) => x[0] === 'SE') + 1,
    );
    const { rows: ship } = await w.db.pool.query<{ id: string; sscc: string[] }>(
      `SELECT s.id::text, array_agg(p.sscc ORDER BY p.package_no) AS sscc
         FROM sales.shipments s JOIN sales.shipment_packages p ON p.shipment_id = s.id
        WHERE s.shipment_no = $1 GROUP BY s.id`,
      [docs['PO-10001']!.shipment],
    );
    const [c1, c2] = ship[0]!.sscc;
    // Extension 0, GS1 company prefix 0614141 (sales.settings), a serial, the GS1 check digit.
    for (const code of [c1!, c2!]) {
      expect(code).toMatch(/^00614141\d{10}$/);
      expect(Number(code[17])).toBe(gs1CheckDigit(code.slice(0, 17)));
    }
    // Two cartons of 10.5 and 4.25 lb; the BOL and tracking number as the shipment has them.
    expect(segs(first, 'TD1')).toEqual([['TD1', 'CTN25', '2', '', '', '', 'G', '14.75', 'LB']]);
    expect(segs(first, 'TD5')).toEqual([['TD5', 'B', '2', 'UPSN']]);
    expect(segs(first, 'REF')).toEqual([
      ['REF', 'BM', `BOL-${ship[0]!.id}`],
      ['REF', 'CN', `1ZTRACK${ship[0]!.id}`],
    ]);
    const tree = checkHierarchy(first, ['S', 'O', 'P', 'I']);
    expect(
      tree.map((h) => [h.hl, ...h.segments.filter((x) => ['PRF', 'MAN', 'LIN', 'SN1'].includes(x[0]!))]),
    ).toEqual([
      ['S:1<'],
      ['O:2<1', ['PRF', 'PO-10001', '', '', '20260115']],
      ['P:3<2', ['MAN', 'GM', c1]],
      ['I:4<3', ['LIN', '1', 'BP', 'SKU-1001', 'VP', 'V-9001'], ['SN1', '', '10', 'EA']],
      ['I:5<3', ['LIN', '2', 'BP', 'SKU-1002', 'VP', 'SKU-1002'], ['SN1', '', '5.5', 'CA']],
      ['P:6<2', ['MAN', 'GM', c2]],
      ['I:7<6', ['LIN', '3', 'BP', 'SKU-1003', 'VP', 'V-9003'], ['SN1', '', '100', 'EA']],
    ]);
    const { rows } = await w.db.pool.query(
      `SELECT count(*)::int AS n FROM edi.sent_shipments ss JOIN sales.shipments s ON s.id = ss.shipment_id WHERE s.shipment_no = $1`,
      [manualShipment],
    );
    expect(rows[0].n).toBe(0);
  });

  it('partner A refuses an 856 lacking what its profile requires: the error names the shipment and the field; no file, no control number', async () => {
    const { rows } = await w.db.pool.query<{ id: number }>(
      `WITH o AS (INSERT INTO sales.orders (customer_no, customer_po) VALUES ('PARTNERA', 'PO-NOBOL') RETURNING id)
       INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price)
       SELECT id, 1, 'SKU-1001', 3, 'EA', 12.50 FROM o RETURNING order_id AS id`,
    );
    const late = await shipAndInvoice(null, rows[0]!.id);
    const state = async (): Promise<unknown> =>
      (
        await w.db.pool.query(
          `SELECT (SELECT count(*) FROM edi.interchanges)::int AS ix, (SELECT count(*) FROM edi.sent_shipments)::int AS sent,
                  (SELECT json_agg(c ORDER BY c.partner) FROM edi.control_numbers c) AS numbers`,
        )
      ).rows[0];
    const outboxBefore = await w.list('PARTNERA', 'outbox');
    const tries: [string, string, string][] = [
      ['bill_of_lading = NULL', 'bill_of_lading', 'sales.shipments.bill_of_lading'],
      ["bill_of_lading = 'BOL-LATE', tracking_no = NULL", 'tracking_number', 'sales.shipments.tracking_no'],
      ["tracking_no = '1ZLATE', carrier = NULL", 'carrier', 'sales.shipments.carrier'],
    ];
    for (const [set, field, column] of tries) {
      await w.db.pool.query(`UPDATE sales.shipments SET ${set} WHERE shipment_no = $1`, [late.shipment]);
      const before = await state();
      const r = await outbound(A, ['856']);
      expect(r.files).toEqual([]);
      expect(r.rejected.map((x) => x.error)).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^shipment ${late.shipment}: ${field} is missing \\(${column.replaceAll('.', '\\.')}\\) for the 856 .*; partner PARTNERA requires it`,
          ),
        ),
      );
      expect(await state()).toEqual(before);
      expect(await w.list('PARTNERA', 'outbox')).toEqual(outboxBefore);
    }
    // A line in no carton: S-O-P-I needs every line packed.
    await w.db.pool.query(`UPDATE sales.shipments SET carrier = 'UPSN' WHERE shipment_no = $1`, [
      late.shipment,
    ]);
    await w.db.pool.query(
      `UPDATE sales.shipment_lines sl SET package_no = NULL FROM sales.shipments s
        WHERE s.id = sl.shipment_id AND s.shipment_no = $1`,
      [late.shipment],
    );
    const unpacked = await outbound(A, ['856']);
    expect(unpacked.files).toEqual([]);
    expect(unpacked.rejected.map((x) => x.error)).toContainEqual(
      `shipment ${late.shipment}, line 1 (SKU-1001): sscc is missing — the line is in no carton (sales.shipment_lines.package_no) for the 856 MAN*GM; partner PARTNERA's hierarchy is S-O-P-I`,
    );
    // Complete again, it goes out in the next run.
    await w.db.pool.query(
      `UPDATE sales.shipment_lines sl SET package_no = 1 FROM sales.shipments s
        WHERE s.id = sl.shipment_id AND s.shipment_no = $1`,
      [late.shipment],
    );
    const sent = await outbound(A, ['856']);
    expect(sent.files.map((f) => f.documents)).toEqual([[late.shipment]]);
  });

  it('an SSCC with a wrong check digit is refused; an S-O-P-I partner with a mapping lacking the pack level is refused by name', async () => {
    const { rows } = await w.db.pool.query<{ id: string; sscc: string }>(
      'SELECT shipment_id::text AS id, sscc FROM sales.shipment_packages ORDER BY sscc LIMIT 1',
    );
    const good = rows[0]!.sscc;
    const bad = good.slice(0, 17) + String((Number(good[17]) + 1) % 10);
    await expect(
      w.db.pool.query(
        'INSERT INTO sales.shipment_packages (shipment_id, package_no, sscc) VALUES ($1, 99, $2)',
        [rows[0]!.id, bad],
      ),
    ).rejects.toThrow(/shipment_packages_sscc_check/);
    const mapping = await loadOutboundMapping(HOME, 'x12/856-out');
    const noPack = { ...mapping, hierarchy: mapping.hierarchy!.filter((l) => l.level !== 'P') };
    expect(shipNoticeMapping(A, mapping).hierarchy!.map((l) => l.level)).toEqual(['S', 'O', 'P', 'I']);
    expect(shipNoticeMapping(B, mapping).hierarchy!.map((l) => l.level)).toEqual(['S', 'O', 'I']);
    expect(() => shipNoticeMapping(A, noPack)).toThrow(
      `${A.file}, x12.ship_notice.hierarchy S-O-P-I: mapping x12/856-out has no HL level P (it has S, O, I)`,
    );
  });

  it('partner B (005010, | ^ !): a dry run builds and shows, and writes nothing; the real run sends 810 and 856', async () => {
    const count = async (): Promise<unknown> =>
      (
        await w.db.pool.query(
          `SELECT (SELECT count(*) FROM edi.interchanges)::int AS ix, (SELECT coalesce(sum(isa13), 0) FROM edi.control_numbers)::int AS cn`,
        )
      ).rows[0];
    const before = await count();
    const outboxBefore = await w.list('PARTNERB', 'outbox');
    const dry = await outbound(B, ['810', '856'], true);
    expect(dry.files.map((f) => [f.transactionSet, f.documents, f.remotePath])).toEqual([
      ['810', [docs['GX-7001']!.invoice], null],
      ['856', [docs['GX-7001']!.shipment], null],
    ]);
    expect(dry.files[0]!.preview[0]).toMatch(/^ISA\|00\|/);
    expect(dry.files[0]!.preview[2]).toMatch(/^ST\|810\|\d{4}!$/);
    expect(await count()).toEqual(before);
    expect(await w.list('PARTNERB', 'outbox')).toEqual(outboxBefore);

    const real = await outbound(B, ['810', '856']);
    // The dry run showed the control numbers the real run then used.
    expect(real.files.map((f) => [f.name, f.isa13])).toEqual(dry.files.map((f) => [f.name, f.isa13]));
    const s810 = parseStrict(await outboxText('PARTNERB', real.files[0]!.name)).segments[0]!;
    const isa = segs(s810, 'ISA')[0]!;
    expect([isa[7], isa[8]!.trim(), isa[11], isa[12], isa[15]]).toEqual([
      '01',
      '987654321',
      '{',
      '00501',
      'T',
    ]);
    expect(segs(s810, 'GS')[0]![8]).toBe('005010');
    expect(segs(s810, 'IT1')[0]).toEqual([
      'IT1',
      '1',
      '10',
      'EA',
      '12.5',
      'PE',
      'BP',
      'SKU-1001',
      'VP',
      'V-9001',
    ]);
    const s856 = parseStrict(await outboxText('PARTNERB', real.files[1]!.name)).segments[0]!;
    expect(segs(s856, 'PRF')).toEqual([['PRF', 'GX-7001', '', '', '20260115']]);
    // Partner B takes S-O-I: no pack level, TD1 still counts the carton and its weight.
    const set = s856.slice(
      s856.findIndex((x) => x[0] === 'ST'),
      s856.findIndex((x) => x[0] === 'SE') + 1,
    );
    expect(checkHierarchy(set, ['S', 'O', 'I']).map((h) => h.hl)).toEqual([
      'S:1<',
      'O:2<1',
      'I:3<2',
      'I:4<2',
    ]);
    expect(segs(set, 'MAN')).toEqual([]);
    expect(segs(set, 'TD1')).toEqual([['TD1', 'CTN25', '1', '', '', '', 'G', '10.5', 'LB']]);
  });
});

describe('acknowledgments and status', () => {
  it("partner A's 997 for our 810 group reconciles the interchange to accepted (acks run leaves 850s alone)", async () => {
    const { rows } = await w.db.pool.query<{ id: string; gs06: string; st02: string[] }>(
      `SELECT i.id, g.gs06::text, array_agg(s.st02 ORDER BY s.st02) AS st02
         FROM edi.interchanges i JOIN edi.groups g ON g.interchange_id = i.id JOIN edi.transaction_sets s ON s.group_id = g.id
        WHERE i.partner = 'PARTNERA' AND i.direction = 'out' AND g.functional_id = 'IN'
        GROUP BY i.id, g.gs06 ORDER BY i.id LIMIT 1`,
    );
    const ours = rows[0]!;
    const ak2 = ours.st02.map((st) => `AK2*810*${st}~\nAK5*A~\n`).join('');
    const body = `AK1*IN*${ours.gs06}~\n${ak2}AK9*A*${ours.st02.length}*${ours.st02.length}*${ours.st02.length}~\n`;
    const segCount = body.split('\n').length - 1 + 2;
    const text =
      'ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260204*0900*U*00401*000000777*0*P*>~\n' +
      `GS*FA*ACMEBUY*ERPCO*20260204*0900*777*X*004010~\nST*997*0777~\n${body}SE*${segCount}*0777~\nGE*1*777~\nIEA*1*000000777~\n`;
    await writeFile(path.join(w.dir('PARTNERA', 'inbox'), 'ack-from-acme.edi'), text);
    await w.drop('PARTNERA', 'partner-a-2gs.edi');
    const r = await runInbound(w.app, A, { dryRun: false, env: w.env, acksOnly: true });
    expect(r.files.map((f) => [f.file, f.status, f.acksApplied])).toEqual([
      [
        'ack-from-acme.edi',
        'loaded',
        [{ functionalId: 'IN', gs06: ours.gs06, code: 'A', interchangeId: Number(ours.id) }],
      ],
    ]);
    expect(r.files[0]!.ack).toBeNull();
    expect(await w.list('PARTNERA', 'inbox')).toEqual(['partner-a-2gs.edi']);
    const { rows: after } = await w.db.pool.query(
      `SELECT status, lpad(ack_isa13::text, 9, '0') AS ack, acknowledged_at IS NOT NULL AS acked FROM edi.interchanges WHERE id = $1`,
      [ours.id],
    );
    expect(after).toEqual([{ status: 'accepted', ack: '000000777', acked: true }]);
  });

  it('a file committed but not uploaded is delivered by the next run, with the same name and numbers', async () => {
    const { rows } = await w.db.pool.query<{ id: number }>(
      `WITH o AS (INSERT INTO sales.orders (customer_no, customer_po) VALUES ('PARTNERB', 'GX-LATE') RETURNING id)
       INSERT INTO sales.order_lines (order_id, line_no, sku, quantity, uom, unit_price)
       SELECT id, 1, 'SKU-1001', 2, 'EA', 12.50 FROM o RETURNING order_id AS id`,
    );
    const late = await shipAndInvoice(null, rows[0]!.id);
    const outbox = w.dir('PARTNERB', 'outbox');
    await rename(outbox, `${outbox}.gone`);
    const err = await outbound(B, ['810']).catch((e: unknown) => e);
    await rename(`${outbox}.gone`, outbox);
    expect(err).toBeInstanceOf(Error);
    const pending = await ediStatus(w.db.pool, [A, B]);
    expect(pending.undelivered.map((u) => u.partner)).toEqual(['PARTNERB']);
    const name = pending.undelivered[0]!.fileName;
    const next = await outbound(B, ['810']);
    expect([next.redelivered, next.files]).toEqual([[name], []]);
    const text = await outboxText('PARTNERB', name);
    const s = parseStrict(text).segments[0]!;
    expect(segs(s, 'BIG')[0]![2]).toBe(late.invoice);
    expect(name).toBe(`810-${text.split('|')[13]}.edi`);
    const { rows: stored } = await w.db.pool.query(
      "SELECT content FROM edi.outbound_files WHERE partner = 'PARTNERB' AND file_name = $1",
      [name],
    );
    expect(stored).toEqual([{ content: text }]);
  });

  it('erp edi status lists the interchange whose 997 is overdue (exit 0)', async () => {
    const { rows } = await w.db.pool.query<{ isa13: string; file_name: string }>(
      `UPDATE edi.interchanges SET sent_at = now() - interval '30 hours'
        WHERE id = (SELECT min(id) FROM edi.interchanges WHERE partner = 'PARTNERA' AND direction = 'out' AND status = 'sent')
        RETURNING lpad(isa13::text, 9, '0') AS isa13, file_name`,
    );
    const overdue = rows[0]!;
    const s = await ediStatus(w.db.pool, [A, B]);
    expect(s.overdue.map((o) => [o.partner, o.isa13, o.fileName])).toEqual([
      ['PARTNERA', overdue.isa13, overdue.file_name],
    ]);
    expect(s.overdue[0]!.hoursWaiting).toBeGreaterThanOrEqual(30);

    const child = spawn(process.execPath, [path.join(HOME, 'dist/cli.js'), 'edi', 'status'], {
      cwd: HOME,
      env: { ...process.env, DATABASE_URL: w.db.url, ERP_HOME: HOME, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/OVERDUE: 1 outbound interchange/);
    expect(stdout).toMatch(
      new RegExp(`PARTNERA\\s+${overdue.isa13}\\s+${overdue.file_name.replace('.', '\\.')}`),
    );
    expect(stdout).toMatch(/recent interchanges:/);
    expect(stdout).toMatch(/accepted/);
  });
});
