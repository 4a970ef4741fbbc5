import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listExceptions, reprocessHeld } from '../src/edi/exceptions.js';
import { runInbound, type InboundFileResult } from '../src/edi/inbound.js';
import type { Partner } from '../src/partners/profile.js';
import { FIXTURES, parseStrict, segs, startEdiWorld, type EdiWorld } from './edi-helpers.js';

/** Business errors apart from syntax (hold, acknowledge with an 855), TA1s and reused ISA13s, end to end. */

let w: EdiWorld;
beforeAll(async () => {
  w = await startEdiWorld('edi_business');
});
afterAll(async () => {
  await w?.close();
});

const NOW = new Date('2026-01-16T08:05:00Z');

async function inbound(partner: Partner): Promise<InboundFileResult[]> {
  return (await runInbound(w.app, partner, { dryRun: false, env: w.env, now: NOW })).files;
}

async function dropText(partner: string, name: string, text: string): Promise<void> {
  await writeFile(path.join(w.dir(partner, 'inbox'), name), text);
}

async function outbox(partner: string, name: string): Promise<string> {
  return readFile(path.join(w.dir(partner, 'outbox'), name), 'utf8');
}

/** partner-a-850.edi's first set under a new ISA13/PO, line 2 replaced. */
async function variant(isa13: string, po: string, line2: string): Promise<string> {
  const text = await readFile(path.join(FIXTURES, 'partner-a-850.edi'), 'utf8');
  const first = text.slice(0, text.indexOf('ST*850*0002~'));
  return `${first
    .replaceAll('000000101', isa13)
    .replace('PO-10001', po)
    .replace('PO1*2*5.5*CA*3.2**BP*SKU-1002~', line2)
    .replace(
      'GS*PO*ACMEBUY*ERPCO*20260115*0930*101',
      `GS*PO*ACMEBUY*ERPCO*20260115*0930*${Number(isa13)}`,
    )}GE*1*${Number(isa13)}~\nIEA*1*${isa13}~\n`;
}

describe('business_errors: hold', () => {
  it('997 accepts, the order waits in the exception list, reprocess loads it exactly once after the item exists', async () => {
    const partner = { ...(await w.partner('PARTNERA')), business_errors: 'hold' as const };
    await dropText(
      'PARTNERA',
      'hold.edi',
      await variant('000000801', 'PO-HOLD-1', 'PO1*2*5.5*EA*3.2**BP*SKU-NEW-77~'),
    );
    const [r] = await inbound(partner);
    expect([r!.status, r!.setsAccepted, r!.setsRejected, r!.ordersLoaded]).toEqual(['loaded', 1, 0, 0]);
    expect(r!.notices.join('\n')).toMatch(
      /held for an operator \(erp edi exceptions\): .*no item for buyer_part BP "SKU-NEW-77"/,
    );
    const s = parseStrict(await outbox('PARTNERA', r!.ack!.name)).segments.flat();
    expect(segs(s, 'AK9')).toEqual([['AK9', 'A', '1', '1', '1']]);
    expect(await w.list('PARTNERA', 'archive')).toContain('hold.edi');

    const held = await listExceptions(w.db.pool, 'PARTNERA');
    expect(held.map((h) => [h.customerPo, h.st02])).toEqual([['PO-HOLD-1', '0001']]);

    // Still unknown: stays held.
    expect((await reprocessHeld(w.app, partner)).map((o) => o.orderNo)).toEqual([null]);
    await w.db.pool.query(
      `INSERT INTO sales.items (sku, description, uom, list_price, category) VALUES ('SKU-NEW-77', 'New item', 'EA', 3.2, 'FASTENERS')`,
    );
    const [done] = await reprocessHeld(w.app, partner);
    expect(done!.orderNo).toMatch(/^SO/);
    // Twice, concurrently or not: loaded once.
    expect(await Promise.all([reprocessHeld(w.app, partner), reprocessHeld(w.app, partner)])).toEqual([
      [],
      [],
    ]);
    const { rows } = await w.db.pool.query(
      `SELECT l.sku FROM sales.orders o JOIN sales.order_lines l ON l.order_id = o.id WHERE o.customer_po = 'PO-HOLD-1' ORDER BY l.line_no`,
    );
    expect(rows.map((x) => x.sku)).toEqual(['SKU-1001', 'SKU-NEW-77', 'SKU-1003']);
    expect(await listExceptions(w.db.pool, 'PARTNERA')).toEqual([]);
  });
});

describe('business_errors: acknowledge', () => {
  it('997 accepts, the good lines are loaded, an 855 says IA / IR / IP per line and parses in node-x12 strict mode', async () => {
    const partner = { ...(await w.partner('PARTNERA')), business_errors: 'acknowledge' as const };
    await dropText(
      'PARTNERA',
      'ack855.edi',
      await variant('000000802', 'PO-ACK-1', 'PO1*2*5.5*EA*3.2**BP*NOPE-1~'),
    );
    // Line 3 without a price: taken from the list price, an accepted line with a changed price.
    const text = (await readFile(path.join(w.dir('PARTNERA', 'inbox'), 'ack855.edi'), 'utf8')).replace(
      'PO1*3*100*EA*0.15**BP*SKU-1003',
      'PO1*3*100*EA***BP*SKU-1003',
    );
    await dropText('PARTNERA', 'ack855.edi', text);
    const [r] = await inbound(partner);
    expect([r!.status, r!.setsAccepted, r!.ordersLoaded]).toEqual(['loaded', 1, 1]);
    const s = parseStrict(await outbox('PARTNERA', r!.poAck!.name)).segments.flat();
    expect(segs(s, 'GS')[0]!.slice(1, 4)).toEqual(['PR', 'ERPCO', 'ACMEBUY']);
    expect(segs(s, 'BAK')).toEqual([['BAK', '00', 'AC', 'PO-ACK-1', '20260115']]);
    expect(segs(s, 'ACK')).toEqual([
      ['ACK', 'IA', '10', 'EA'],
      ['ACK', 'IR', '0', 'EA'],
      ['ACK', 'IP', '100', 'EA'],
    ]);
    expect(segs(s, 'PO1')[2]).toEqual([
      'PO1',
      '3',
      '100',
      'EA',
      '0.15',
      '',
      'BP',
      'SKU-1003',
      'VP',
      'V-9003',
    ]);
    const { rows } = await w.db.pool.query(
      `SELECT l.sku, l.unit_price::text FROM sales.orders o JOIN sales.order_lines l ON l.order_id = o.id WHERE o.customer_po = 'PO-ACK-1' ORDER BY l.line_no`,
    );
    expect(rows).toEqual([
      { sku: 'SKU-1001', unit_price: '12.5000' },
      { sku: 'SKU-1003', unit_price: '0.1500' },
    ]);
    // Our 855 is an outbound interchange: the partner's 997 for it is reconciled.
    const { rows: out } = await w.db.pool.query(
      `SELECT g.functional_id, i.status FROM edi.interchanges i JOIN edi.groups g ON g.interchange_id = i.id WHERE i.direction = 'out' AND i.file_name = $1`,
      [r!.poAck!.name],
    );
    expect(out).toEqual([{ functional_id: 'PR', status: 'sent' }]);
  });
});

describe('TA1 and interchange control numbers', () => {
  it('IEA02 ≠ ISA13: a TA1 R with note code 001 goes out beside the 997', async () => {
    await w.drop('PARTNERA', 'bad-iea-control.edi');
    const [r] = await inbound(await w.partner('PARTNERA'));
    expect(r!.status).toBe('rejected');
    expect(r!.ta1!.text).toMatch(/~\nTA1\*000000106\*260115\*0930\*R\*001~\n/);
    expect(await w.list('PARTNERA', 'outbox')).toContain(r!.ta1!.name);
  });

  it('ISA14 = 1: a TA1 A 000', async () => {
    await w.drop('PARTNERB', 'partner-b-850.edi');
    const text = (await readFile(path.join(w.dir('PARTNERB', 'inbox'), 'partner-b-850.edi'), 'utf8')).replace(
      '|000000501|0|T|',
      '|000000501|1|T|',
    );
    await dropText('PARTNERB', 'partner-b-850.edi', text);
    const [r] = await inbound(await w.partner('PARTNERB'));
    expect(r!.status).toBe('loaded');
    expect(r!.ta1!.text).toContain('!TA1|000000501|260115|0930|A|000!');
  });

  it('an ISA13 reused with different content is held, rejected with TA1 025, never acked as accepted', async () => {
    const partner = await w.partner('PARTNERA');
    await dropText(
      'PARTNERA',
      'first.edi',
      await variant('000000803', 'PO-REUSE-1', 'PO1*2*5.5*EA*3.2**BP*SKU-1002~'),
    );
    expect((await inbound(partner))[0]!.status).toBe('loaded');
    await dropText(
      'PARTNERA',
      'second.edi',
      await variant('000000803', 'PO-REUSE-2', 'PO1*2*5.5*EA*3.2**BP*SKU-1002~'),
    );
    const [r] = await inbound(partner);
    expect([r!.status, r!.interchanges[0]!.status, r!.ordersLoaded]).toEqual(['rejected', 'held', 0]);
    const s = parseStrict(await outbox('PARTNERA', r!.ack!.name)).segments.flat();
    expect(segs(s, 'AK9')).toEqual([['AK9', 'R', '1', '1', '0']]);
    expect(r!.ta1!.text).toContain('TA1*000000803*260115*0930*R*025~');
    expect(r!.problems.join('\n')).toMatch(
      /ISA13 000000803 was already received from PARTNERA in first\.edi with different content/,
    );
    const { rows } = await w.db.pool.query(
      `SELECT count(*)::int AS n FROM sales.orders WHERE customer_po = 'PO-REUSE-2'`,
    );
    expect(rows[0].n).toBe(0);
    // The same content again is a plain re-delivery: acknowledged as before.
    await dropText(
      'PARTNERA',
      'again.edi',
      await variant('000000803', 'PO-REUSE-1', 'PO1*2*5.5*EA*3.2**BP*SKU-1002~'),
    );
    const [again] = await inbound(partner);
    expect(again!.interchanges[0]!.status).toBe('duplicate');
  });
});
