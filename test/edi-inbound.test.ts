import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INBOX_LOCK_CLASS, runInbound, type InboundFileResult } from '../src/edi/inbound.js';
import { ediStatus } from '../src/edi/status.js';
import { runEdiStep } from '../src/edi/step.js';
import { resolveRunnable } from '../src/jobs/definition.js';
import { formatRunDetail } from '../src/commands/report.js';
import { executeRun, planRun } from '../src/jobs/execute.js';
import { resolveEndpoint } from '../src/partners/profile.js';
import { createRun, getRun } from '../src/runs/store/runs.js';
import { FIXTURES, HOME, parseStrict, segs, startEdiWorld, type EdiWorld } from './helpers/edi.js';

let w: EdiWorld;
beforeAll(async () => {
  w = await startEdiWorld('edi_inbound');
});
afterAll(async () => {
  await w?.close();
});

const NOW = new Date('2026-01-16T08:05:00Z');

async function inbound(partner: 'PARTNERA' | 'PARTNERB', dryRun = false): Promise<InboundFileResult[]> {
  const r = await runInbound(w.app, await w.partner(partner), { dryRun, env: w.env, now: NOW });
  return r.files;
}

async function ordersOf(customer: string, po: string[]): Promise<Record<string, string[][]>> {
  const { rows } = await w.db.pool.query<{ customer_po: string; line: string[] }>(
    `SELECT o.customer_po, ARRAY[l.line_no::text, l.sku, l.customer_line_ref, l.quantity::text, l.uom, l.unit_price::text] AS line
       FROM sales.orders o JOIN sales.order_lines l ON l.order_id = o.id
      WHERE o.customer_no = $1 AND o.customer_po = ANY ($2) AND o.source = 'edi'
      ORDER BY o.customer_po, l.line_no`,
    [customer, po],
  );
  const out: Record<string, string[][]> = {};
  for (const r of rows) (out[r.customer_po] ??= []).push(r.line);
  return out;
}

async function ack(partner: string, name: string): Promise<string[][]> {
  const text = await readFile(path.join(w.dir(partner, 'outbox'), name), 'utf8');
  const { segments } = parseStrict(text);
  return segments.flat();
}

describe('inbound 850 → sales orders, 997/999 back, over real SFTP', () => {
  it('partner A (004010): loads both orders with their lines, 997 accepted in the outbox, file archived', async () => {
    await w.drop('PARTNERA', 'partner-a-850.edi');
    const [r, ...more] = await inbound('PARTNERA');
    expect(more).toEqual([]);
    expect([r!.status, r!.setsAccepted, r!.setsRejected, r!.ordersLoaded, r!.problems]).toEqual([
      'loaded',
      2,
      0,
      2,
      [],
    ]);
    expect(await ordersOf('PARTNERA', ['PO-10001', 'PO-10002'])).toEqual({
      'PO-10001': [
        ['1', 'SKU-1001', '1', '10.000', 'EA', '12.5000'],
        ['2', 'SKU-1002', '2', '5.500', 'CA', '3.2000'],
        ['3', 'SKU-1003', '3', '100.000', 'EA', '0.1500'],
      ],
      'PO-10002': [
        ['1', 'SKU-2001', '1', '2.000', 'PL', '450.0000'],
        ['2', 'SKU-2002', '2', '24.000', 'EA', '7.9900'],
      ],
    });
    const { rows: hdr } = await w.db.pool.query(
      `SELECT o.order_date::text, o.requested_ship_date::text, o.currency, o.ship_to_name, io.header ->> 'ship_to_code' AS code
         FROM sales.orders o JOIN edi.inbound_orders io ON io.order_id = o.id WHERE o.customer_po = 'PO-10002'`,
    );
    expect(hdr).toEqual([
      {
        order_date: '2026-01-16',
        requested_ship_date: '2026-02-01',
        currency: 'USD',
        ship_to_name: 'ACME EAST',
        code: 'DC01',
      },
    ]);

    // The 997, read back by node-x12 in strict mode: sender and receiver swapped, GS01 FA, AK9 A.
    expect(r!.ack!.type).toBe('997');
    expect(await w.list('PARTNERA', 'outbox')).toEqual([r!.ack!.name]);
    const s = await ack('PARTNERA', r!.ack!.name);
    const isa = segs(s, 'ISA')[0]!;
    expect([isa[5], isa[6]!.trim(), isa[7], isa[8]!.trim(), isa[12], isa[15]]).toEqual([
      'ZZ',
      'ERPCO',
      'ZZ',
      'ACMEBUY',
      '00401',
      'P',
    ]);
    expect(segs(s, 'GS')[0]!.slice(1, 4)).toEqual(['FA', 'ERPCO', 'ACMEBUY']);
    expect(segs(s, 'AK1')).toEqual([['AK1', 'PO', '101']]);
    expect(segs(s, 'AK2')).toEqual([
      ['AK2', '850', '0001'],
      ['AK2', '850', '0002'],
    ]);
    expect(segs(s, 'AK5')).toEqual([
      ['AK5', 'A'],
      ['AK5', 'A'],
    ]);
    expect(segs(s, 'AK9')).toEqual([['AK9', 'A', '2', '2', '2']]);

    // Archived after the commit; nothing left in the inbox.
    expect(await w.list('PARTNERA', 'inbox')).toEqual([]);
    expect(await w.list('PARTNERA', 'archive')).toEqual(['partner-a-850.edi']);
    const { rows: ix } = await w.db.pool.query(
      `SELECT status, lpad(isa13::text, 9, '0') AS isa13, set_count, ack_isa13 IS NOT NULL AS acked
         FROM edi.interchanges WHERE partner = 'PARTNERA' AND direction = 'in'`,
    );
    expect(ix).toEqual([{ status: 'loaded', isa13: '000000101', set_count: 2, acked: true }]);
  });

  it('a re-delivered interchange is acknowledged again but not loaded again', async () => {
    await w.drop('PARTNERA', 'partner-a-850.edi', 'resent-850.edi');
    const [r] = await inbound('PARTNERA');
    expect([r!.status, r!.ordersLoaded, r!.interchanges]).toEqual([
      'duplicate',
      0,
      [{ isa13: '000000101', status: 'duplicate', usage: 'P' }],
    ]);
    const { rows } = await w.db.pool.query(
      `SELECT customer_po, count(*)::int AS n FROM sales.orders WHERE customer_po IN ('PO-10001', 'PO-10002') GROUP BY 1 ORDER BY 1`,
    );
    expect(rows).toEqual([
      { customer_po: 'PO-10001', n: 1 },
      { customer_po: 'PO-10002', n: 1 },
    ]);
    const s = await ack('PARTNERA', r!.ack!.name);
    expect(segs(s, 'AK9')).toEqual([['AK9', 'A', '2', '2', '2']]);
    expect((await w.list('PARTNERA', 'outbox')).length).toBe(2);
    expect(await w.list('PARTNERA', 'archive')).toEqual(['partner-a-850.edi', 'resent-850.edi']);
    const { rows: ix } = await w.db.pool.query(
      `SELECT status FROM edi.interchanges WHERE partner = 'PARTNERA' AND isa13 = 101 ORDER BY id`,
    );
    expect(ix.map((x) => x.status)).toEqual(['loaded', 'duplicate']);
  });

  it('partner B (005010, | ^ !, test usage): loads both orders, 999 with IK5 A', async () => {
    await w.drop('PARTNERB', 'partner-b-850.edi');
    const [r] = await inbound('PARTNERB');
    expect([r!.status, r!.setsAccepted, r!.ordersLoaded]).toEqual(['loaded', 2, 2]);
    expect(await ordersOf('PARTNERB', ['GX-7001', 'GX-7002'])).toEqual({
      'GX-7001': [
        ['1', 'SKU-1001', '1', '10.000', 'EA', '12.5000'],
        ['2', 'SKU-1002', '2', '5.500', 'CA', '3.2000'],
      ],
      'GX-7002': [
        ['1', 'SKU-2001', '1', '2.000', 'PL', '450.0000'],
        ['2', 'SKU-2002', '2', '24.000', 'EA', '7.9900'],
      ],
    });
    expect(r!.ack!.type).toBe('999');
    const text = await readFile(path.join(w.dir('PARTNERB', 'outbox'), r!.ack!.name), 'utf8');
    expect(text.slice(0, 4)).toBe('ISA|');
    const s = parseStrict(text).segments.flat();
    const isa = segs(s, 'ISA')[0]!;
    expect([isa[5], isa[6]!.trim(), isa[7], isa[8]!.trim(), isa[12], isa[15]]).toEqual([
      'ZZ',
      'ERPCO',
      '01',
      '987654321',
      '00501',
      'T',
    ]);
    expect(segs(s, 'GS')[0]!.slice(1, 4)).toEqual(['FA', 'ERPCO', 'GLOBEX']);
    expect(segs(s, 'ST')).toEqual([['ST', '999', segs(s, 'ST')[0]![2]!, '005010X231A1']]);
    expect(segs(s, 'AK1')).toEqual([['AK1', 'PO', '77', '005010']]);
    expect(segs(s, 'IK5')).toEqual([
      ['IK5', 'A'],
      ['IK5', 'A'],
    ]);
    expect(segs(s, 'AK9')).toEqual([['AK9', 'A', '2', '2', '2']]);
    expect(await w.list('PARTNERB', 'archive')).toEqual(['partner-b-850.edi']);
  });

  it('two ISA in one file and two GS in one ISA: every group acknowledged, all loaded in one transaction', async () => {
    await w.drop('PARTNERA', 'partner-a-2isa.edi');
    await w.drop('PARTNERA', 'partner-a-2gs.edi');
    const files = await inbound('PARTNERA');
    expect(files.map((f) => [f.file, f.status, f.interchanges.length, f.ordersLoaded])).toEqual([
      ['partner-a-2gs.edi', 'loaded', 1, 2],
      ['partner-a-2isa.edi', 'loaded', 2, 2],
    ]);
    const twoIsa = parseStrict(
      await readFile(path.join(w.dir('PARTNERA', 'outbox'), files[1]!.ack!.name), 'utf8'),
    );
    expect(twoIsa.interchanges.length).toBe(2);
    expect(twoIsa.segments.map((x) => segs(x, 'AK1')[0])).toEqual([
      ['AK1', 'PO', '301'],
      ['AK1', 'PO', '302'],
    ]);
    const twoGs = (await ack('PARTNERA', files[0]!.ack!.name)).filter(
      (x) => x[0] === 'AK1' || x[0] === 'AK9',
    );
    expect(twoGs).toEqual([
      ['AK1', 'PO', '201'],
      ['AK9', 'A', '1', '1', '1'],
      ['AK1', 'PO', '202'],
      ['AK9', 'A', '1', '1', '1'],
    ]);
    expect(Object.keys(await ordersOf('PARTNERA', ['PO-20001', 'PO-20002', 'PO-30001', 'PO-30002']))).toEqual(
      ['PO-20001', 'PO-20002', 'PO-30001', 'PO-30002'],
    );
  });
});

describe('item resolution', () => {
  it("a line naming the customer's own part number is resolved through sales.customer_items", async () => {
    await w.db.pool.query(
      `INSERT INTO sales.customer_items (customer_no, customer_item, sku) VALUES ('PARTNERA', 'ACME-77', 'SKU-2001')`,
    );
    const text = (await readFile(path.join(FIXTURES, 'partner-a-850.edi'), 'utf8'))
      .replaceAll('000000101', '000000950')
      .replaceAll('PO-1000', 'PO-9500')
      .replace('BP*SKU-2001~', 'BP*ACME-77~');
    await writeFile(path.join(w.dir('PARTNERA', 'inbox'), 'customer-part.edi'), text);
    const [r] = await inbound('PARTNERA');
    expect([r!.file, r!.status, r!.ordersLoaded]).toEqual(['customer-part.edi', 'loaded', 2]);
    expect((await ordersOf('PARTNERA', ['PO-95002']))['PO-95002']![0]).toEqual([
      '1',
      'SKU-2001',
      '1',
      '2.000',
      'PL',
      '450.0000',
    ]);
    const { rows } = await w.db.pool.query(
      `SELECT io.lines -> 0 ->> 'buyer_part' AS bp FROM edi.inbound_orders io
         JOIN sales.orders o ON o.id = io.order_id WHERE o.customer_po = 'PO-95002'`,
    );
    expect(rows).toEqual([{ bp: 'ACME-77' }]);
  });
});

describe('malformed inbound files', () => {
  let results: Map<string, InboundFileResult>;
  let footerOffset = 0;
  const fixtures = [
    'bad-se-count.edi',
    'bad-iea-control.edi',
    'bad-ge.edi',
    'truncated.edi',
    'garbage.edi',
    'unknown-partner.edi',
    'bad-isa-length.edi',
    'partner-a-850-missing-beg.edi',
  ];

  beforeAll(async () => {
    for (const f of fixtures) await w.drop('PARTNERA', f);
    // The first 850 of partner-a-850.edi again, under a new ISA13, with an unknown item on line 2;
    // the second with its PO number changed (PO-10002 was loaded by the first test): a duplicate PO.
    const text = (await readFile(path.join(FIXTURES, 'partner-a-850.edi'), 'utf8'))
      .replaceAll('000000101', '000000901')
      .replace('PO1*2*5.5*CA*3.2**BP*SKU-1002~', 'PO1*2*5.5*CA*3.2**BP*NOPE-42~')
      .replace('PO-10001', 'PO-90001');
    await writeFile(path.join(w.dir('PARTNERA', 'inbox'), 'unknown-item.edi'), text);
    // 100 good interchanges (more than one 64 KiB read, so the first ones are loaded before the
    // problem is seen), then text that is not X12 and one more interchange: garbage between
    // interchanges makes the file unreadable, so nothing of it loads.
    const one = await readFile(path.join(FIXTURES, 'partner-a-850.edi'), 'utf8');
    const nth = (i: number, prefix = 'PO-T'): string =>
      one
        .replaceAll('000000101', String(902000 + i).padStart(9, '0'))
        .replaceAll('PO-1000', `${prefix}${i}-`);
    let many = '';
    for (let i = 0; i < 100; i++) many += nth(i);
    await writeFile(
      path.join(w.dir('PARTNERA', 'inbox'), 'trailing-garbage.edi'),
      `${many}THIS IS NOT X12~\n${nth(100)}`,
    );
    // Two interchanges and a footer without terminator after the last IEA: read, with a warning.
    const two = `${nth(200, 'PO-F')}${nth(201, 'PO-F')}`;
    footerOffset = Buffer.byteLength(two);
    await writeFile(path.join(w.dir('PARTNERA', 'inbox'), 'footer.edi'), `${two}THIS IS A FOOTER`);
    const files = await inbound('PARTNERA');
    results = new Map(files.map((f) => [f.file, f]));
  });

  const ordersWith = async (pos: string[]): Promise<string[]> =>
    (
      await w.db.pool.query<{ customer_po: string }>(
        'SELECT customer_po FROM sales.orders WHERE customer_po = ANY ($1) ORDER BY 1',
        [pos],
      )
    ).rows.map((r) => r.customer_po);

  const report = (name: string): Promise<string> =>
    readFile(path.join(w.dir('PARTNERA', 'error'), `${name}.error.txt`), 'utf8');

  it('every file leaves the inbox: failed and rejected ones to the error dir, each with a report', async () => {
    expect(await w.list('PARTNERA', 'inbox')).toEqual([]);
    const errors = await w.list('PARTNERA', 'error');
    for (const f of [...fixtures, 'unknown-item.edi', 'trailing-garbage.edi']) {
      expect(errors).toContain(f);
      expect(errors).toContain(`${f}.error.txt`);
    }
    expect(await w.list('PARTNERA', 'archive')).not.toContain('bad-se-count.edi');
  });

  it('bad SE count: that set rejected (AK5 R 4), the good one loaded, 997 partially accepted', async () => {
    const r = results.get('bad-se-count.edi')!;
    expect([r.status, r.setsAccepted, r.setsRejected]).toEqual(['rejected', 1, 1]);
    expect(r.problems.join('\n')).toMatch(
      /bad-se-count\.edi, segment 34 \(SE01\): SE01 is "99" but .* has 15 segments ST\.\.SE; expected 15/,
    );
    const s = await ack('PARTNERA', r.ack!.name);
    expect(segs(s, 'AK5')).toEqual([
      ['AK5', 'A'],
      ['AK5', 'R', '4'],
    ]);
    expect(segs(s, 'AK9')).toEqual([['AK9', 'P', '2', '2', '1']]);
    // The database agrees with the ack.
    expect(await ordersWith(['PO-40001', 'PO-40002'])).toEqual(['PO-40001']);
    expect(await report('bad-se-count.edi')).toMatch(/accepted: 1, rejected: 1/);
  });

  it('mismatched IEA control number: a TA1 R 001 and no 997 (whose AK9 would have no code for it), nothing loaded', async () => {
    const r = results.get('bad-iea-control.edi')!;
    expect([r.status, r.setsAccepted, r.ordersLoaded, r.ack]).toEqual(['rejected', 0, 0, null]);
    expect(r.ta1!.text).toMatch(/~\nTA1\*\d{9}\*\d{6}\*\d{4}\*R\*001~\n/);
    expect(await w.list('PARTNERA', 'outbox')).toContain(r.ta1!.name);
    expect(await ordersWith(['PO-50001'])).toEqual([]);
    expect(await report('bad-iea-control.edi')).toMatch(/IEA02/);
  });

  it('bad GE counts: group rejected with AK9 codes 5 and 4, nothing loaded', async () => {
    const r = results.get('bad-ge.edi')!;
    const s = await ack('PARTNERA', r.ack!.name);
    expect(segs(s, 'AK9')).toEqual([['AK9', 'R', '2', '1', '0', '5', '4']]);
    expect(await ordersWith(['PO-60001'])).toEqual([]);
  });

  it('truncated: the complete first set is not loaded either; TA1 R 023 (premature end of file), no 997', async () => {
    const r = results.get('truncated.edi')!;
    expect([r.status, r.ordersLoaded, r.ack]).toEqual(['rejected', 0, null]);
    expect(r.ta1!.text).toMatch(/~\nTA1\*\d{9}\*\d{6}\*\d{4}\*R\*023~\n/);
    expect(await ordersWith(['PO-70001', 'PO-70002'])).toEqual([]);
    expect(await report('truncated.edi')).toMatch(/truncated/);
  });

  it('garbage, bad ISA and unknown partner: a clear error, no ack, nothing recorded', async () => {
    const garbage = results.get('garbage.edi')!;
    expect([garbage.status, garbage.ack]).toEqual(['failed', null]);
    expect(garbage.error).toMatch(/^garbage\.edi, segment 1: expected the file to start with an ISA segment/);
    const badIsa = results.get('bad-isa-length.edi')!;
    expect(badIsa.status).toBe('failed');
    expect(badIsa.error).toMatch(/ISA06 must be 15 characters.*ISA06 is 7 characters/);
    const unknown = results.get('unknown-partner.edi')!;
    expect(unknown.status).toBe('failed');
    expect(unknown.error).toMatch(
      /no trading partner has ISA05\/ISA06 ZZ:STRANGER; known senders: PARTNERA \(ZZ:ACMEBUY\)/,
    );
    expect(await report('unknown-partner.edi')).toMatch(/FAILED, nothing was loaded[\s\S]*STRANGER/);
    const { rows } = await w.db.pool.query(
      `SELECT count(*)::int AS n FROM edi.interchanges WHERE file_name IN ('garbage.edi', 'bad-isa-length.edi', 'unknown-partner.edi')`,
    );
    expect(rows[0].n).toBe(0);
  });

  it('text after the last IEA is a warning naming its byte offset: the interchanges before it are loaded and archived', async () => {
    const r = results.get('footer.edi')!;
    expect([r.status, r.ordersLoaded, r.setsAccepted, r.problemCount]).toEqual(['loaded', 4, 4, 0]);
    expect(r.notices).toEqual([
      `warning: footer.edi, end of file: text after the last IEA, from byte offset ${footerOffset}: "THIS IS A FOOTER"; ignored (the interchanges before it are read)`,
    ]);
    expect(await w.list('PARTNERA', 'archive')).toContain('footer.edi');
  });

  it('garbage between interchanges rejects the whole file: the complete interchanges before it are acknowledged R, not loaded', async () => {
    const r = results.get('trailing-garbage.edi')!;
    expect([r.status, r.ordersLoaded]).toEqual(['failed', 0]);
    expect(r.error).toMatch(
      /^trailing-garbage\.edi, segment 3601: expected an ISA segment or the end of the file after the IEA, found "THIS IS NOT X12~\\nISA\*00\*.*" at byte offset \d+, and then another ISA$/,
    );
    // The interchanges read before the problem are rejected by a TA1 each (024, invalid content), no 997.
    expect(r.ack).toBeNull();
    const ta1s = [...r.ta1!.text.matchAll(/~\nTA1\*(\d{9})\*\d{6}\*\d{4}\*R\*024~\n/g)].map((m) =>
      Number(m[1]),
    );
    expect(ta1s).toEqual(Array.from({ length: 100 }, (_, i) => 902000 + i));
    const { rows } = await w.db.pool.query(
      `SELECT (SELECT count(*)::int FROM edi.interchanges WHERE isa13 BETWEEN 902000 AND 902099) AS ix,
              (SELECT count(*)::int FROM sales.orders WHERE customer_po LIKE 'PO-T%') AS orders`,
    );
    expect(rows).toEqual([{ ix: 0, orders: 0 }]);
  });

  it('mapping problems: AK3 for the missing BEG, AK4 for the impossible date', async () => {
    const r = results.get('partner-a-850-missing-beg.edi')!;
    const s = await ack('PARTNERA', r.ack!.name);
    expect(segs(s, 'AK3')).toEqual([
      ['AK3', 'BEG', '2', '', '3'],
      ['AK3', 'DTM', '4', '', '8'],
    ]);
    expect(segs(s, 'AK4')).toEqual([['AK4', '2', '', '8', '20261341']]);
    expect(segs(s, 'AK9')).toEqual([['AK9', 'R', '1', '1', '0']]);
  });

  it('unknown item and duplicate PO: both sets rejected with AK3/AK4, nothing of them loaded', async () => {
    const r = results.get('unknown-item.edi')!;
    expect([r.status, r.setsAccepted, r.setsRejected]).toEqual(['rejected', 0, 2]);
    const s = await ack('PARTNERA', r.ack!.name);
    expect(segs(s, 'AK3')).toEqual([
      ['AK3', 'PO1', '12', '', '8'],
      ['AK3', 'BEG', '2', '', '8'],
    ]);
    expect(segs(s, 'AK4')).toEqual([
      ['AK4', '7', '', '7', 'NOPE-42'],
      ['AK4', '3', '', '7', 'PO-10002'],
    ]);
    expect(segs(s, 'AK5')).toEqual([
      ['AK5', 'R', '5'],
      ['AK5', 'R', '5'],
    ]);
    expect(r.problems.join('\n')).toMatch(
      /unknown-item\.edi, segment 14 \(PO107\): transaction set 850 0001: line 2: no item for buyer_part BP "NOPE-42"/,
    );
    expect(r.problems.join('\n')).toMatch(
      /BEG03 purchase order "PO-10002" was already loaded for customer PARTNERA/,
    );
    expect(await ordersWith(['PO-90001'])).toEqual([]);
    const { rows } = await w.db.pool.query(
      `SELECT count(*)::int AS n FROM sales.orders WHERE customer_po = 'PO-10002'`,
    );
    expect(rows[0].n).toBe(1);
  });
});

describe('the edi job step', () => {
  it('dry run: reads and judges everything, writes, uploads and moves nothing', async () => {
    await w.drop('PARTNERA', 'garbage.edi', 'junk.edi');
    await w.drop('PARTNERA', 'partner-a-850.edi', 'again.edi');
    const before = await w.db.pool.query('SELECT count(*)::int AS n FROM edi.interchanges');
    const outbox = await w.list('PARTNERA', 'outbox');
    const dry = await runEdiStep(
      w.app,
      { direction: 'inbound', partner: 'PARTNERA' },
      { runId: null, dryRun: true, signal: new AbortController().signal, env: w.env },
    );
    expect(dry.summary).toBe('2 files: 1 duplicate, 1 failed; 0 orders would be loaded');
    expect(dry.lines.some((l) => l.startsWith('  | ISA*00*'))).toBe(true);
    expect(await w.list('PARTNERA', 'inbox')).toEqual(['again.edi', 'junk.edi']);
    expect(await w.list('PARTNERA', 'outbox')).toEqual(outbox);
    expect((await w.db.pool.query('SELECT count(*)::int AS n FROM edi.interchanges')).rows).toEqual(
      before.rows,
    );
  });

  it('the shipped edi-inbound job runs every partner through the job runner; a bad file holds up nobody', async () => {
    await w.drop('PARTNERB', 'partner-b-850.edi', 'again-b.edi');
    const runnable = await resolveRunnable(HOME, 'edi-inbound');
    const steps = await planRun(HOME, runnable, {});
    expect(steps.map((s) => [s.kind, s.name])).toEqual([
      ['edi', 'PARTNERA inbound'],
      ['edi', 'PARTNERB inbound'],
    ]);
    // The worker reads the partners' SFTP settings from its environment.
    Object.assign(process.env, w.env);
    try {
      const runId = await createRun(w.db.pool, { kind: 'job', name: 'edi-inbound', status: 'queued' });
      const outcome = await executeRun(w.app, {
        runId,
        runnable,
        params: {},
        dryRun: false,
        signal: new AbortController().signal,
      });
      expect([outcome.status, outcome.error]).toEqual(['succeeded', null]);
      const { rows } = await w.db.pool.query(
        `SELECT kind, name, status, detail ->> 'summary' AS summary FROM runner.run_steps WHERE run_id = $1 ORDER BY position`,
        [runId],
      );
      expect(rows).toEqual([
        {
          kind: 'edi',
          name: 'PARTNERA inbound',
          status: 'succeeded',
          summary: '2 files: 1 duplicate, 1 failed; 0 orders loaded',
        },
        {
          kind: 'edi',
          name: 'PARTNERB inbound',
          status: 'succeeded',
          summary: '1 file: 1 duplicate; 0 orders loaded',
        },
      ]);
      // erp runs show tells each EDI step's own counts, not the pipeline row counters (0 here).
      const shown = formatRunDetail((await getRun(w.db.pool, runId))!);
      expect(shown).not.toContain('rows read');
      const counts = outcome.steps.map((s) => {
        const files = s.edi!.inbound!.files;
        const sum = (k: 'setsAccepted' | 'setsRejected' | 'ordersLoaded'): number =>
          files.reduce((n, f) => n + f[k], 0);
        return `files read ${files.length}, transaction sets accepted ${sum('setsAccepted')}, rejected ${sum('setsRejected')}, orders loaded ${sum('ordersLoaded')}`;
      });
      expect(counts[0]).toMatch(
        /^files read 2, transaction sets accepted \d+, rejected \d+, orders loaded 0$/,
      );
      expect(shown).toContain(
        `  1. edi PARTNERA inbound: succeeded\n     2 files: 1 duplicate, 1 failed; 0 orders loaded\n     ${counts[0]}\n`,
      );
      expect(shown).toContain(
        `  2. edi PARTNERB inbound: succeeded\n     1 file: 1 duplicate; 0 orders loaded\n     ${counts[1]}`,
      );
    } finally {
      for (const k of Object.keys(w.env)) delete process.env[k];
    }
    expect(await w.list('PARTNERA', 'inbox')).toEqual([]);
    expect(await w.list('PARTNERA', 'archive')).toContain('again.edi');
    expect(await w.list('PARTNERB', 'archive')).toContain('again-b.edi');
    const { rows: failed } = await w.db.pool.query(
      `SELECT partner, error, moved_to FROM edi.failed_files WHERE file_name = 'junk.edi'`,
    );
    expect(failed).toEqual([
      {
        partner: 'PARTNERA',
        error: expect.stringMatching(/^junk\.edi, segment 1: expected the file to start with an ISA segment/),
        moved_to: path.join(w.dir('PARTNERA', 'error'), 'junk.edi'),
      },
    ]);
    const status = await ediStatus(w.db.pool, [await w.partner('PARTNERA')]);
    expect(status.failedFiles.map((f) => f.fileName)).toContain('junk.edi');
  });

  it('one reader per inbox: a run finding another one reading it skips, leaving the files', async () => {
    await w.drop('PARTNERB', 'partner-b-850.edi', 'while-busy.edi');
    const holder = await w.db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1, hashtext($2))', [INBOX_LOCK_CLASS, 'PARTNERB']);
      const r = await runInbound(w.app, await w.partner('PARTNERB'), { dryRun: false, env: w.env });
      expect([r.busy, r.files]).toEqual([true, []]);
      expect(await w.list('PARTNERB', 'inbox')).toEqual(['while-busy.edi']);
    } finally {
      await holder.query('SELECT pg_advisory_unlock($1, hashtext($2))', [INBOX_LOCK_CLASS, 'PARTNERB']);
      holder.release();
    }
    const r = await runInbound(w.app, await w.partner('PARTNERB'), { dryRun: false, env: w.env });
    expect(r.files.map((f) => [f.file, f.status])).toEqual([['while-busy.edi', 'duplicate']]);
  });

  it('environment settings: a missing variable is named, never a secret value; the host key is pinned', async () => {
    const partner = await w.partner('PARTNERA');
    expect(() => resolveEndpoint(partner, { ...w.env, ERP_SFTP_KEY_FILE: undefined })).toThrow(
      'partners/PARTNERA.yaml, sftp.private_key_file_env: environment variable ERP_SFTP_KEY_FILE is not set',
    );
    expect(() => resolveEndpoint(partner, { ...w.env, ERP_SFTP_HOST_KEY_SHA256: 'SHA256:short' })).toThrow(
      /sftp\.host_key_sha256 \(from environment variable ERP_SFTP_HOST_KEY_SHA256\): expected an OpenSSH SHA-256 fingerprint/,
    );
    const wrong = `SHA256:${'A'.repeat(43)}`;
    const err = await runInbound(w.app, partner, {
      dryRun: false,
      env: { ...w.env, ERP_SFTP_HOST_KEY_SHA256: wrong },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/host key mismatch, connection refused/);
  });
});
