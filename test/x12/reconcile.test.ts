import { createReadStream } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildAck } from '../../src/x12/ack.js';
import { allocateControlNumbers } from '../../src/edi/control-numbers.js';
import { overdueInterchanges, recordOutbound } from '../../src/edi/interchanges.js';
import { loadOutboundMapping, buildOutbound } from '../../src/x12/outbound.js';
import { applyFunctionalAck, readFunctionalAcks } from '../../src/edi/reconcile.js';
import { splitX12 } from '../../src/x12/splitter.js';
import type { GeEvent, InterchangeHeader } from '../../src/x12/types.js';
import type { TestDatabase } from '../helpers/db.js';
import { test } from '../helpers/fixtures.js';
import { FIXTURES, fixtureEvents, HOME, profile } from '../helpers/x12.js';

let db: TestDatabase;
test.beforeAll(async ({ db: d }) => {
  db = d;
});

describe('readFunctionalAcks', () => {
  it('reads the partner A 997 for our 810 group 1001', async () => {
    const { acks, problems, sender } = await readFunctionalAcks(
      createReadStream(path.join(FIXTURES, 'partner-a-997-for-810.edi')),
      {
        file: 'partner-a-997-for-810.edi',
      },
    );
    expect(problems).toEqual([]);
    expect(sender).toEqual({ qualifier: 'ZZ', id: 'ACMEBUY' });
    expect(acks).toHaveLength(1);
    const g = acks[0]!.group;
    expect([
      acks[0]!.type,
      g.functionalId,
      g.controlNumber,
      g.code,
      g.status,
      g.included,
      g.received,
      g.accepted,
    ]).toEqual(['997', 'IN', '1001', 'P', 'partially_accepted', 2, 2, 1]);
    expect(g.sets.map((s) => [s.id, s.controlNumber, s.code, s.accepted, s.errorCodes])).toEqual([
      ['810', '0001', 'A', true, []],
      ['810', '0002', 'R', false, ['5']],
    ]);
    expect(g.sets[1]!.segmentErrors).toEqual([
      {
        segmentId: 'IT1',
        position: 4,
        loopId: '',
        code: '8',
        elements: [{ position: 2, component: null, reference: '358', code: '1', value: '' }],
      },
    ]);
  });

  it('reads the partner B 999 (IK5) for our 856 group 2001', async () => {
    const { acks } = await readFunctionalAcks(
      createReadStream(path.join(FIXTURES, 'partner-b-999-for-856.edi')),
    );
    expect(
      acks.map((a) => [
        a.type,
        a.group.functionalId,
        a.group.controlNumber,
        a.group.version,
        a.group.status,
        a.group.sets[0]!.accepted,
      ]),
    ).toEqual([['999', 'SH', '2001', '005010', 'accepted', true]]);
  });

  it('reads back a 997 we generated, with AK3/AK4', async () => {
    const evs = await fixtureEvents('bad-se-count.edi');
    const isa = evs[0]!.kind === 'isa' ? evs[0]!.interchange : (undefined as unknown as InterchangeHeader);
    const groups = evs.filter((e): e is GeEvent => e.kind === 'ge');
    groups[0]!.sets[0]!.problems.push({
      code: 'X',
      level: 'element',
      file: 'f',
      segment: 5,
      segmentId: 'PO1',
      positionInSet: 10,
      element: 2,
      value: 'abc',
      message: 'm',
      ack: { ak4: '6' },
    });
    const ack = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-a'),
      control: { isa13: 1, gs06: [1], st02: [1] },
    });
    const { acks } = await readFunctionalAcks([ack.text]);
    const g = acks[0]!.group;
    expect([g.code, g.accepted, g.sets.map((s) => s.code)]).toEqual(['R', 0, ['R', 'R']]);
    expect(g.sets[0]!.segmentErrors).toEqual([
      {
        segmentId: 'PO1',
        position: 10,
        loopId: '',
        code: '8',
        elements: [{ position: 2, component: null, reference: '', code: '6', value: 'abc' }],
      },
    ]);
  });

  it('reports a malformed ack instead of applying it', async () => {
    const isa =
      'ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260115*0930*U*00401*000000001*0*P*>~';
    const text = `${isa}GS*FA*ACMEBUY*ERPCO*20260115*0930*1*X*004010~ST*997*0001~AK1*IN*5~AK2*810*0001~AK9*A*1*1*1~SE*5*0001~GE*1*1~IEA*1*000000001~`;
    const { acks, problems } = await readFunctionalAcks([text], { file: 'ack.edi' });
    expect(acks).toEqual([]);
    expect(problems.map((p) => p.message)).toEqual([
      'ack.edi, segment 6 (AK9): AK2 for 810 0001 has no AK5/IK5',
    ]);
  });
});

describe('reconciling our outbound interchanges', () => {
  it('sent → partially accepted 997: set statuses, group P, interchange rejected_by_partner; 999 A → accepted', async () => {
    const a = await profile('partner-a');
    const mapping = await loadOutboundMapping(HOME, 'x12/810-out');
    // Make the counters hand out GS06 1001 and ST02 0001/0002, the numbers the fixture 997 refers to.
    await db.pool.query(
      `INSERT INTO edi.control_numbers (partner, isa13, gs06, st02) VALUES ('acme', 500, 1000, 0)`,
    );
    const control = await allocateControlNumbers(db.pool, 'acme', { groups: 1, sets: 2 });
    expect(control).toEqual({ isa13: 501, gs06: [1001], st02: [1, 2] });
    const doc = (n: string) => ({
      header: { invoice_number: n, invoice_date: '2026-02-01', total_amount: 1 },
      lines: [{ quantity: 1, uom: 'EA', unit_price: 1 }],
    });
    const out = buildOutbound(
      { profile: a, mapping, control: { isa13: control.isa13, gs06: control.gs06[0]!, st02: control.st02 } },
      [doc('INV-1'), doc('INV-2')],
    );
    const client = await db.pool.connect();
    let id: number;
    try {
      id = await recordOutbound(client, {
        partner: 'acme',
        fileName: 'out-810.edi',
        sha256: null,
        usage: 'P',
        isa13: out.isa13,
        groups: [
          {
            functionalId: 'IN',
            gs06: out.gs06,
            version: '004010',
            sets: out.sets.map((s, i) => ({ st01: '810', st02: s.st02, documentKey: `INV-${i + 1}` })),
          },
        ],
      });
    } finally {
      client.release();
    }
    // Overdue: with a limit of 0 hours it is listed; with 24 it is not.
    await db.pool.query(`UPDATE edi.interchanges SET sent_at = now() - interval '2 hours' WHERE id = $1`, [
      id,
    ]);
    expect(
      (await overdueInterchanges(db.pool, { acme: 1 })).map((o) => [o.id, o.isa13, o.hoursWaiting]),
    ).toEqual([[id, '000000501', 2]]);
    expect(await overdueInterchanges(db.pool, { acme: 24 })).toEqual([]);

    const { acks } = await readFunctionalAcks(
      createReadStream(path.join(FIXTURES, 'partner-a-997-for-810.edi')),
    );
    expect(await applyFunctionalAck(db.pool, 'acme', acks[0]!)).toBe(id);
    const x = await db.pool.query(
      `SELECT status, ack_isa13::int, acknowledged_at IS NOT NULL AS acked FROM edi.interchanges WHERE id = $1`,
      [id],
    );
    expect(x.rows).toEqual([{ status: 'rejected_by_partner', ack_isa13: 120, acked: true }]);
    const sets = await db.pool.query(
      `SELECT s.st02, s.document_key, s.status, g.status AS group_status, g.ack_code
         FROM edi.transaction_sets s JOIN edi.groups g ON g.id = s.group_id ORDER BY s.st02`,
    );
    expect(sets.rows).toEqual([
      {
        st02: '0001',
        document_key: 'INV-1',
        status: 'accepted',
        group_status: 'partially_accepted',
        ack_code: 'P',
      },
      {
        st02: '0002',
        document_key: 'INV-2',
        status: 'rejected_by_partner',
        group_status: 'partially_accepted',
        ack_code: 'P',
      },
    ]);
    expect(await overdueInterchanges(db.pool, { acme: 1 })).toEqual([]);
    // An ack for a group we never sent changes nothing.
    expect(await applyFunctionalAck(db.pool, 'globex', acks[0]!)).toBeNull();
  });

  it('an accepted 999 makes the interchange accepted', async () => {
    const client = await db.pool.connect();
    let id: number;
    try {
      id = await recordOutbound(client, {
        partner: 'globex',
        fileName: 'out-856.edi',
        sha256: null,
        usage: 'T',
        isa13: 77,
        groups: [
          { functionalId: 'SH', gs06: 2001, version: '005010', sets: [{ st01: '856', st02: '0001' }] },
        ],
      });
    } finally {
      client.release();
    }
    const acks: Awaited<ReturnType<typeof readFunctionalAcks>>['acks'] = [];
    for await (const _ of splitX12(createReadStream(path.join(FIXTURES, 'partner-b-999-for-856.edi')))) {
      // the splitter alone accepts the file
    }
    acks.push(
      ...(await readFunctionalAcks(createReadStream(path.join(FIXTURES, 'partner-b-999-for-856.edi')))).acks,
    );
    expect(await applyFunctionalAck(db.pool, 'globex', acks[0]!)).toBe(id);
    const { rows } = await db.pool.query(`SELECT status FROM edi.interchanges WHERE id = $1`, [id]);
    expect(rows).toEqual([{ status: 'accepted' }]);
  });
});
