import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInbound, type InboundFileResult, type MappedOrder } from '../src/edi/inbound.js';
import { parseStrict, segs, startEdiWorld, type EdiWorld } from './helpers/edi.js';

/**
 * The inbound 850s are checked and stored set-wise (src/edi/inbound-processor.ts): these are the
 * cases where a batch must still give what one set at a time gave — a PO number twice in one
 * file, a data error in one order of a batch, and a batch larger than one round of 500.
 */

let w: EdiWorld;
beforeAll(async () => {
  w = await startEdiWorld('edi_setwise');
});
afterAll(async () => {
  await w?.close();
});

const NOW = new Date('2026-01-16T08:05:00Z');

/** One 850 for PARTNERA: PO `po`, ST02 `st02`, two lines. */
const set850 = (st02: string, po: string): string =>
  `ST*850*${st02}~\nBEG*00*SA*${po}**20260115~\nCUR*BY*USD~\nDTM*002*20260201~\n` +
  `N1*ST*ACME DISTRIBUTION CENTER*92*DC01~\n` +
  `PO1*1*10*EA*12.50**BP*SKU-1001*VP*V-9001~\nPID*F****STEEL BOLT M8~\n` +
  `PO1*2*5.5*CA*3.2**BP*SKU-1002~\nPID*F****HEX NUT ZINC~\nCTT*2*15.5~\nSE*11*${st02}~\n`;

/** An interchange `isa13` of one group holding 850s for `pos`, in order. */
function interchange(isa13: number, pos: string[]): string {
  const n = String(isa13).padStart(9, '0');
  return (
    `ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260115*0930*U*00401*${n}*0*P*>~\n` +
    `GS*PO*ACMEBUY*ERPCO*20260115*0930*${isa13}*X*004010~\n` +
    pos.map((po, i) => set850(String(i + 1).padStart(4, '0'), po)).join('') +
    `GE*${pos.length}*${isa13}~\nIEA*1*${n}~\n`
  );
}

async function inbound(
  name: string,
  text: string,
  opts: { fresh?: boolean } = {},
): Promise<{ file: InboundFileResult; orders: MappedOrder[] }> {
  await writeFile(path.join(w.dir('PARTNERA', 'inbox'), name), text);
  const orders: MappedOrder[] = [];
  // A file of more 850s than the shipped profile's cap, for the test of several batches.
  const partner = { ...(await w.partner('PARTNERA')), max_documents_per_file: 5000 };
  const r = await runInbound(w.app, partner, {
    dryRun: false,
    env: w.env,
    now: NOW,
    onOrder: (o) => orders.push(o),
    ...opts,
  });
  const file = r.files.find((f) => f.file.endsWith(name));
  expect(file, `no result for ${name}`).toBeDefined();
  return { file: file!, orders };
}

async function ordersFor(pos: string[]): Promise<{ po: string; order_no: string; lines: number }[]> {
  const { rows } = await w.db.pool.query<{ po: string; order_no: string; lines: number }>(
    `SELECT o.customer_po AS po, o.order_no, (SELECT count(*)::int FROM sales.order_lines l WHERE l.order_id = o.id) AS lines
       FROM sales.orders o WHERE o.customer_no = 'PARTNERA' AND o.customer_po = ANY ($1) ORDER BY o.id`,
    [pos],
  );
  return rows;
}

async function ack(name: string): Promise<string[][]> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(path.join(w.dir('PARTNERA', 'outbox'), name), 'utf8');
  return parseStrict(text).segments[0]!;
}

describe('set-wise inbound 850s', () => {
  it('a PO number twice in one file: the first loads, the second is the duplicate of its order', async () => {
    const { file, orders } = await inbound('twice.edi', interchange(601, ['PO-T1', 'PO-T2', 'PO-T1']));
    expect([file.status, file.setsAccepted, file.setsRejected]).toEqual(['rejected', 2, 1]);
    const loaded = await ordersFor(['PO-T1', 'PO-T2']);
    expect(loaded.map((o) => [o.po, o.lines])).toEqual([
      ['PO-T1', 2],
      ['PO-T2', 2],
    ]);
    expect(file.problems.join('\n')).toContain(
      `BEG03 purchase order "PO-T1" was already loaded for customer PARTNERA (order ${loaded[0]!.order_no})`,
    );
    expect(orders.map((o) => [o.st02, o.outcome])).toEqual([
      ['0001', 'loaded'],
      ['0002', 'loaded'],
      ['0003', 'rejected'],
    ]);
    const s = await ack(file.ack!.name);
    expect(segs(s, 'AK5')).toEqual([
      ['AK5', 'A'],
      ['AK5', 'A'],
      ['AK5', 'R', '5'],
    ]);
    expect(segs(s, 'AK9')).toEqual([['AK9', 'P', '3', '3', '2']]);
  });

  it('a data error in one order of a batch rejects that set alone (STORE_FAILED) and loads the others', async () => {
    // A replay (fresh) does not look for loaded PO numbers: PO-T2 reaches the insert and breaks
    // the table's one-order-per-PO constraint, which fails the batch's statement.
    const { file, orders } = await inbound('replay.edi', interchange(602, ['PO-F1', 'PO-T2', 'PO-F3']), {
      fresh: true,
    });
    expect([file.setsAccepted, file.setsRejected]).toEqual([2, 1]);
    expect(file.problems.join('\n')).toMatch(
      /transaction set 850 0002 \(PO PO-T2\) could not be stored: .*orders_customer_po_once/,
    );
    expect((await ordersFor(['PO-F1', 'PO-T2', 'PO-F3'])).map((o) => [o.po, o.lines])).toEqual([
      ['PO-T2', 2],
      ['PO-F1', 2],
      ['PO-F3', 2],
    ]);
    expect(orders.map((o) => [o.st02, o.outcome])).toEqual([
      ['0001', 'loaded'],
      ['0003', 'loaded'],
    ]);
    const s = await ack(file.ack!.name);
    expect(segs(s, 'AK5')).toEqual([
      ['AK5', 'A'],
      ['AK5', 'R', '5'],
      ['AK5', 'A'],
    ]);
  });

  it('a data error in a batch stored while the next is read: that set alone is rejected, every other loads', async () => {
    // 520 sets: the first batch of 500 is stored while the last 20 are mapped. Set 0003 breaks the
    // one-order-per-PO constraint (a replay does not look for loaded PO numbers), so that batch's
    // statement fails and its orders are stored one by one before the next batch is checked.
    const pos = Array.from({ length: 520 }, (_, i) => (i === 2 ? 'PO-T2' : `PO-P${i + 1}`));
    const { file, orders } = await inbound('pipelined-error.edi', interchange(604, pos), { fresh: true });
    expect([file.setsAccepted, file.setsRejected, file.ordersLoaded]).toEqual([519, 1, 519]);
    expect(file.problems).toHaveLength(1);
    expect(file.problems[0]).toMatch(
      /transaction set 850 0003 \(PO PO-T2\) could not be stored: .*orders_customer_po_once/,
    );
    const loaded = await ordersFor(pos.filter((po) => po !== 'PO-T2'));
    expect(loaded.map((o) => [o.po, o.lines])).toEqual(
      pos.filter((po) => po !== 'PO-T2').map((po) => [po, 2]),
    );
    // onOrder hears of every stored order once, in file order, and of the failed one never.
    const st02s = pos.map((_, i) => String(i + 1).padStart(4, '0')).filter((st02) => st02 !== '0003');
    expect(orders.map((o) => o.st02)).toEqual(st02s);
    expect(orders.every((o) => o.outcome === 'loaded')).toBe(true);
    const s = await ack(file.ack!.name);
    const ak5 = segs(s, 'AK5');
    expect(ak5).toHaveLength(520);
    expect(ak5[2]).toEqual(['AK5', 'R', '5']);
    expect(ak5.filter((a) => a[1] === 'A')).toHaveLength(519);
  });

  it('a PO number in two batches: the later one is checked after the earlier batch is stored', async () => {
    const pos = Array.from({ length: 510 }, (_, i) => `PO-X${i + 1}`);
    pos[505] = 'PO-X7';
    const { file, orders } = await inbound('across-batches.edi', interchange(605, pos));
    expect([file.setsAccepted, file.setsRejected]).toEqual([509, 1]);
    const first = (await ordersFor(['PO-X7']))[0]!;
    expect(file.problems.join('\n')).toContain(
      `BEG03 purchase order "PO-X7" was already loaded for customer PARTNERA (order ${first.order_no})`,
    );
    expect(orders.filter((o) => o.outcome === 'rejected').map((o) => o.st02)).toEqual(['0506']);
    expect(segs(await ack(file.ack!.name), 'AK9')).toEqual([['AK9', 'P', '510', '510', '509']]);
  });

  it('more sets than one batch: every order and line stored once, numbered in file order', async () => {
    const pos = Array.from({ length: 1203 }, (_, i) => `PO-B${i + 1}`);
    const { file } = await inbound('big.edi', interchange(603, pos));
    expect([file.status, file.setsAccepted, file.ordersLoaded]).toEqual(['loaded', 1203, 1203]);
    const loaded = await ordersFor(pos);
    expect(loaded.map((o) => o.po)).toEqual(pos);
    expect(loaded.every((o) => o.lines === 2)).toBe(true);
    const numbers = loaded.map((o) => Number(o.order_no.slice(2)));
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    const { rows } = await w.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM edi.inbound_orders i JOIN sales.orders o ON o.id = i.order_id
        WHERE o.customer_po = ANY ($1) AND jsonb_array_length(i.lines) = 2`,
      [pos],
    );
    expect(rows[0]!.n).toBe(1203);
  });
});
