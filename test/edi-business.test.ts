import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listExceptions, reprocessHeld } from '../src/edi/exceptions.js';
import { describeInboundFile, runInbound, type InboundFileResult } from '../src/edi/inbound.js';
import { splitX12 } from '../src/x12/splitter.js';
import { ediStatus } from '../src/edi/status.js';
import { formatEdiStatus } from '../src/commands/edi.js';
import type { Partner } from '../src/partners/profile.js';
import { recordOutbound } from '../src/edi/interchanges.js';
import { FIXTURES, parseStrict, segs, startEdiWorld, type EdiWorld } from './helpers/edi.js';

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
  it('IEA02 ≠ ISA13: a TA1 R with note code 001 goes out instead of a 997', async () => {
    await w.drop('PARTNERA', 'bad-iea-control.edi');
    const [r] = await inbound(await w.partner('PARTNERA'));
    expect([r!.status, r!.ack]).toEqual(['rejected', null]);
    expect(r!.ta1!.text).toMatch(/~\nTA1\*000000106\*260115\*0930\*R\*001~\n/);
    expect(await w.list('PARTNERA', 'outbox')).toContain(r!.ta1!.name);
    // node-x12 refuses a TA1 anywhere; our splitter, which reads partners' TA1s, reads ours back.
    const read = [];
    for await (const ev of splitX12([r!.ta1!.text], { file: r!.ta1!.name })) read.push(ev);
    expect(read.map((e) => e.kind)).toEqual(['isa', 'ta1', 'iea']);
    expect(read[1]).toMatchObject({ controlNumber: '000000106', code: 'R', note: '001' });
    expect(read.flatMap((e) => (e.kind === 'iea' ? e.problems : []))).toEqual([]);
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
    // Never acked as accepted: the TA1 R 025 is the whole answer, no 997.
    expect(r!.ack).toBeNull();
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

  it("a TA1 inside the partner's interchange is read and reconciled with our outbound ISA13; erp edi status shows it", async () => {
    const partner = await w.partner('PARTNERA');
    const client = await w.db.pool.connect();
    try {
      for (const isa13 of [700001, 700002]) {
        await recordOutbound(client, {
          partner: 'PARTNERA',
          fileName: `810-${isa13}.edi`,
          sha256: null,
          usage: 'P',
          isa13,
          groups: [
            { functionalId: 'IN', gs06: isa13, version: '004010', sets: [{ st01: '810', st02: '0001' }] },
          ],
        });
      }
    } finally {
      client.release();
    }
    const isa = (n: string): string =>
      `ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260116*0800*U*00401*${n}*0*P*>~\n`;
    // Two TA1s before the first GS (where X12 puts them), and a group after them.
    const text = await variant('000000811', 'PO-TA1-1', 'PO1*2*5.5*EA*3.2**BP*SKU-1002~');
    await dropText(
      'PARTNERA',
      'ta1s.edi',
      text.replace(/~\n(GS\*)/, '~\nTA1*000700001*260116*0700*R*005~\nTA1*000700002*260116*0700*A*000~\n$1'),
    );
    const [r] = await inbound(partner);
    expect([r!.status, r!.problemCount, r!.ordersLoaded]).toEqual(['loaded', 0, 1]);
    expect(r!.ta1sApplied.map((t) => [t.isa13, t.code, t.note, t.interchangeId !== null])).toEqual([
      ['000700001', 'R', '005', true],
      ['000700002', 'A', '000', true],
    ]);
    expect(r!.notices).toContain(
      'PARTNERA rejected our interchange 000700001 (TA1 R 005: invalid interchange id qualifier for the sender)',
    );
    const { rows } = await w.db.pool.query(
      `SELECT i.isa13::int, i.status, i.ta1_code, i.ta1_note, g.status AS group_status
         FROM edi.interchanges i JOIN edi.groups g ON g.interchange_id = i.id
        WHERE i.direction = 'out' AND i.isa13 IN (700001, 700002) ORDER BY 1`,
    );
    expect(rows).toEqual([
      {
        isa13: 700001,
        status: 'rejected_by_partner',
        ta1_code: 'R',
        ta1_note: '005',
        group_status: 'rejected_by_partner',
      },
      // Accepted at the envelope: its 997 is still expected.
      { isa13: 700002, status: 'sent', ta1_code: 'A', ta1_note: '000', group_status: 'sent' },
    ]);
    const status = formatEdiStatus(await ediStatus(w.db.pool, [partner], { limit: 50 }));
    expect(status).toMatch(
      /out\s+PARTNERA\s+000700001\s+rejected_by_partner\s.*R 005\s+TA1 R 005: invalid interchange id qualifier/,
    );
    expect(status).toMatch(/out\s+PARTNERA\s+000700002\s+sent\s.*A 000/);

    // An interchange holding only a TA1 about an ISA13 we never sent: read, and said.
    await dropText(
      'PARTNERA',
      'ta1-unknown.edi',
      `${isa('000000812')}TA1*000799999*260116*0700*A*000~\nIEA*0*000000812~\n`,
    );
    const [u] = await inbound(partner);
    expect(u!.ta1sApplied).toEqual([{ isa13: '000799999', code: 'A', note: '000', interchangeId: null }]);
    expect(u!.problems).toEqual([
      'ta1-unknown.edi, segment 2 (TA1): acknowledges our interchange 000799999, which we never sent to PARTNERA; ignored',
    ]);
    // A TA1 inside a group is out of place; a malformed one is named.
    await dropText(
      'PARTNERA',
      'ta1-bad.edi',
      `${isa('000000813')}TA1*000700002*260116*0700*X*000~\nIEA*0*000000813~\n`,
    );
    const [b] = await inbound(partner);
    expect(b!.problems).toEqual([
      'ta1-bad.edi, segment 2 (TA104): TA104 is "X"; expected A (accepted), E (accepted with errors) or R (rejected)',
    ]);
  });
});

describe('unused segments', () => {
  it('a segment the mapping does not read is reported the first time a partner sends it, then counted', async () => {
    const partner = await w.partner('PARTNERA');
    const withSac = async (isa13: string, po: string): Promise<string> =>
      // In place of the REF (SE01 stays right).
      (await variant(isa13, po, 'PO1*2*5.5*EA*3.2**BP*SKU-1002~')).replace(
        'REF*DP*042~',
        'SAC*C*D240***1500~',
      );
    await dropText('PARTNERA', 'sac-1.edi', await withSac('000000821', 'PO-SAC-1'));
    const [first] = await inbound(partner);
    expect(first!.status).toBe('loaded');
    expect(first!.unusedSegments.filter((u) => u.segment === 'SAC')).toEqual([
      { segment: 'SAC', sets: 1, first: true, timesSeen: 1 },
    ]);
    expect(describeInboundFile(first!)).toContain(
      '  unused segment SAC: first time seen from this partner (in 1 set); the mapping does not read it',
    );
    await dropText('PARTNERA', 'sac-2.edi', await withSac('000000822', 'PO-SAC-2'));
    const [second] = await inbound(partner);
    expect(second!.unusedSegments.filter((u) => u.segment === 'SAC')).toEqual([
      { segment: 'SAC', sets: 1, first: false, timesSeen: 2 },
    ]);
    expect(describeInboundFile(second!)).toContain(
      '  unused segment SAC: in 1 set, 2 in all; the mapping does not read it',
    );
  });
});
