import { describe, expect, it } from 'vitest';
import { parseYaml } from '../../src/config/yaml.js';
import { buildAck } from '../../src/x12/ack.js';
import { escapeControl } from '../../src/x12/errors.js';
import {
  compileInboundMapping,
  inboundMappingSchema,
  loadInboundMapping,
  mapTransaction,
} from '../../src/x12/mapping.js';
import { splitX12 } from '../../src/x12/splitter.js';
import type { GeEvent, TransactionSet } from '../../src/x12/types.js';
import { parseStrict, segs } from '../helpers/edi.js';
import { HOME, profile } from '../helpers/x12.js';

const ISA =
  'ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260115*0930*U*00401*000000101*0*P*>~\n';

/** One 004010 interchange holding one 850 whose body (BEG … CTT) is `body`; SE01 is counted. */
function x850(body: string): string {
  const lines = body
    .trim()
    .split('\n')
    .map((l) => l.trim());
  const se = lines.length + 2;
  return `${ISA}GS*PO*ACMEBUY*ERPCO*20260115*0930*101*X*004010~\nST*850*0001~\n${lines.join('\n')}\nSE*${se}*0001~\nGE*1*101~\nIEA*1*000000101~\n`;
}

async function events(text: string): Promise<{ sets: TransactionSet[]; ge: GeEvent[] }> {
  const sets: TransactionSet[] = [];
  const ge: GeEvent[] = [];
  async function* one(): AsyncGenerator<Buffer> {
    yield Buffer.from(text);
  }
  for await (const ev of splitX12(one(), { file: 'po.edi' })) {
    if (ev.kind === 'transaction') sets.push(ev.set);
    if (ev.kind === 'ge') ge.push(ev);
  }
  return { sets, ge };
}

const HEADER = `BEG*00*SA*PO-1**20260115~
N1*ST*DC ONE*92*DC01~`;

describe('loops by the 850 structure', () => {
  it('an AMT inside the second PO1 loop keeps lines 3 and 4 and the PID of line 4 (lost with until: [CTT, AMT, SE])', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const { sets } = await events(
      x850(`${HEADER}
        PO1*1*1*EA*1**BP*A~
        PO1*2*2*EA*1**BP*B~
        AMT*1*2~
        PO1*3*3*EA*1**BP*C~
        PO1*4*4*EA*1**BP*D~
        PID*F****FOURTH~
        CTT*4*10~`),
    );
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems).toEqual([]);
    expect(m.lines.map((l) => [l.line_number, l.buyer_part, l.description])).toEqual([
      ['1', 'A', null],
      ['2', 'B', null],
      ['3', 'C', null],
      ['4', 'D', 'FOURTH'],
    ]);
    expect(m.unused).toEqual(['PO1/AMT']);
  });

  it('N1 at header and line level, SAC/MEA/PO4/SDQ/DTM/N9 inside lines: each in its own scope', async () => {
    const mapping = compileInboundMapping(
      parseYaml(
        'm.yaml',
        `transaction_set: '850'
header: { ship_to: 'N1[N101=ST].N104', charge: 'SAC[SAC01=C].SAC05' }
lines:
  loop: PO1
  fields:
    ship_to: 'N1[N101=ST].N104'
    pack: PO401
    allowance: 'SAC[SAC01=A].SAC05'
    store_qty: SDQ04
    deliver: { path: 'DTM[DTM01=002].DTM02', type: DT }
    note: N902
`,
        inboundMappingSchema,
      ),
      'm',
    );
    const { sets } = await events(
      x850(`BEG*00*SA*PO-1**20260115~
        SAC*C*D240***1500~
        N1*ST*DC ONE*92*DC01~
        PO1*1*5*EA*2**VN*X~
        MEA*PD*WT*3*LB~
        PO4*12~
        SAC*A*C310***250~
        SDQ*EA*92*0001*5~
        DTM*002*20260301~
        N9*L1*GIFT~
        N1*ST*STORE 7*92*S7~
        PO1*2*1*EA*2**VN*Y~
        CTT*2*6~`),
    );
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems).toEqual([]);
    expect(m.header).toEqual({ ship_to: 'DC01', charge: '1500' });
    expect(m.lines).toEqual([
      { ship_to: 'S7', pack: '12', allowance: '250', store_qty: '5', deliver: '2026-03-01', note: 'GIFT' },
      { ship_to: null, pack: null, allowance: null, store_qty: null, deliver: null, note: null },
    ]);
  });

  it('CTT01 and CTT02 are reconciled with the lines read: a mismatch names the element', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const { sets } = await events(
      x850(`${HEADER}
        PO1*1*1.5*EA*1**BP*A~
        PO1*2*2*EA*1**BP*B~
        CTT*3*4~`),
    );
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems.map((p) => [p.code, p.segmentId, p.element, p.value, p.ack])).toEqual([
      ['CONTROL_TOTAL', 'CTT', 1, '3', { ak3: '8', ak4: '7' }],
      ['CONTROL_TOTAL', 'CTT', 2, '4', { ak3: '8', ak4: '7' }],
    ]);
    expect(m.problems[0]!.message).toBe(
      'po.edi, segment 8 (CTT01): CTT01 says 3 PO1 line items, but 2 were read; the set is rejected rather than loaded with lines missing',
    );
    expect(m.problems[1]!.message).toBe(
      'po.edi, segment 8 (CTT02): CTT02 hash total is 4, but the PO102 quantities read add up to 3.5',
    );
  });

  it('segments out of place or not in the 850, and a missing mandatory BEG, get their AK304 codes', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const { sets } = await events(
      x850(`CUR*BY*USD~
        PO1*1*1*EA*1**BP*A~
        BEG*00*SA*PO-1**20260115~
        ZZZ*1~
        CTT*1*1~`),
    );
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems.map((p) => [p.code, p.segmentId, p.positionInSet, p.ack.ak3])).toEqual([
      ['SEGMENT_MISSING', 'BEG', 2, '3'],
      ['SEGMENT_OUT_OF_SEQUENCE', 'BEG', 4, '7'],
      ['SEGMENT_NOT_IN_SET', 'ZZZ', 5, '6'],
    ]);
  });
  it('segments of the standard 850 erp does not check (TD3, TD4, PKG, MAN, TAX, SI…) are read, not rejected, and reported as unused', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const { sets } = await events(
      x850(`BEG*00*SA*PO-1**20260115~
        TAX*ABC123~
        SAC*C*D240***1500~
        CUR*BY*USD~
        PKG*F*68***PALLETIZED~
        TD5*O*2*UPSN*U~
        TD3*TL**TRAILER1~
        TD4*ZZZ~
        MAN*GM*LABEL1~
        N1*ST*DC ONE*92*DC01~
        TD5*O*2*FDEG~
        PKG*F*68***STACKED~
        PO1*1*2*EA*1**BP*A~
        SI*ZZ*XX*1~
        PO4*1~
        TD3*TL~
        PKG*F*68***BOXED~
        SLN*1**I*1*EA~
        PO1*2*3*EA*1**BP*B~
        LS*1~
        N9*ZZ*REF~
        LE*1~
        CTT*2*5~`),
    );
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems).toEqual([]);
    expect(m.lines.map((l) => l.buyer_part)).toEqual(['A', 'B']);
    expect(m.header.ship_to_code).toBe('DC01');
    expect(m.unused.sort()).toEqual(
      [
        'MAN',
        'PKG',
        'SAC',
        'TAX',
        'TD3',
        'TD4',
        'TD5',
        'PO1/LE',
        'PO1/LS',
        'PO1/N9',
        'PO1/PKG',
        'PO1/PO4',
        'PO1/SI',
        'PO1/SLN',
        'PO1/TD3',
      ].sort(),
    );
  });

  it('a segment that is no 850 segment at all is still AK304 6, a declared one out of place AK304 7', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const { sets } = await events(
      x850(`BEG*00*SA*PO-1**20260115~
        PO1*1*2*EA*1**BP*A~
        BSN*00*X~
        TD3*TL~
        CTT*1*2~
        FOB*PP~`),
    );
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems.map((p) => [p.code, p.segmentId, p.ack.ak3])).toEqual([
      ['SEGMENT_NOT_IN_SET', 'BSN', '6'],
      ['SEGMENT_OUT_OF_SEQUENCE', 'FOB', '7'],
    ]);
  });
});

describe('element-level validation', () => {
  it('mandatory, length, type, code list, paired elements, too many elements: AK4 code and bad value', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const { sets } = await events(
      x850(`BEG*00*SA*PO-1234567890123456789012**2026011~
        CUR**USD~
        DTM*002**2561~
        N1*ST*DC*92*D1~
        N4*SPRINGFIELD*IL*62701*US****EXTRA~
        PO1*1*1O*EA*1**BP~
        PID*Q****X~
        CTT*1~`),
    );
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems.map((p) => [p.segmentId, p.element, p.ack.ak4, p.value ?? null])).toEqual([
      ['BEG', 3, '5', 'PO-1234567890123456789012'],
      ['BEG', 5, '8', '2026011'],
      ['CUR', 1, '1', null],
      ['DTM', 3, '9', '2561'],
      ['N4', 8, '3', 'EXTRA'],
      ['PO1', 2, '6', '1O'],
      ['PO1', 7, '2', null],
      ['PID', 1, '7', 'Q'],
    ]);
    expect(m.problems.find((p) => p.segmentId === 'PO1' && p.element === 7)!.message).toBe(
      'po.edi, segment 9 (PO107): PO107: PO106 and PO107 go together (P0607): all or none',
    );
    expect(m.problems.find((p) => p.segmentId === 'PID')!.message).toBe(
      'po.edi, segment 10 (PID01): PID01 is "Q"; expected one of F, S, X',
    );
  });

  it('every AK3 for an element problem carries its AK4 with the code and the bad value (997 and 999)', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const { sets, ge } = await events(
      x850(`${HEADER}
        PO1*1*1*EA*1**BP*A~
        PO1*2*2*EA*1*XXX*BP*B~
        CTT*2*3~`),
    );
    sets[0]!.problems.push(...mapTransaction(mapping, sets[0]!).problems);
    for (const type of ['997', '999'] as const) {
      const ack = buildAck({
        interchange: sets[0]!.group.interchange,
        groups: ge,
        profile: { ...(await profile('partner-b')), ack: type },
        control: { isa13: 7, gs06: [7], st02: [7] },
        now: new Date('2026-01-16T00:00:00Z'),
      });
      const s = parseStrict(ack.text).segments.flat();
      const [k3, k4] = type === '997' ? ['AK3', 'AK4'] : ['IK3', 'IK4'];
      expect(segs(s, k3)).toEqual([[k3, 'PO1', '5', '', '8']]);
      expect(segs(s, k4)).toEqual([[k4, '5', '', '5', 'XXX']]);
    }
  });

  it('messages escape control characters', () => {
    expect(escapeControl('a\nb\tc\r\x1d')).toBe('a\\nb\\tc\\r\\x1d');
  });
});

describe('product ids by qualifier', () => {
  it('VN, BP, UP, CB, SK in any of PO106–PO125, the mapping preference order deciding', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const { sets } = await events(
      x850(`${HEADER}
        PO1*1*1*EA*1**VN*V-1*BP*B-1~
        PO1*2*1*EA*1**UP*012345678905*CB*C-2*SK*S-2~
        PO1*3*1*EA*1**UP*012345678906~
        PO1*4*1*EA*1**IN*I-4*EN*4006381333931*VP*V-4~
        CTT*4*4~`),
    );
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems).toEqual([]);
    expect(m.lines.map((l) => [l.vendor_part, l.buyer_part])).toEqual([
      ['V-1', 'B-1'],
      ['S-2', 'C-2'],
      [null, '012345678906'],
      ['V-4', 'I-4'],
    ]);
    expect(m.productIds[1]).toEqual({
      vendor_part: { qualifier: 'SK', element: 11 },
      buyer_part: { qualifier: 'CB', element: 9 },
    });
  });

  it('a required product id that is missing quotes what the mapping asked for, as a business problem', async () => {
    const mapping = compileInboundMapping(
      parseYaml(
        'm.yaml',
        `transaction_set: '850'\nlines:\n  loop: PO1\n  fields:\n    sku: { product_id: [VP, SK], required: true }\n`,
        inboundMappingSchema,
      ),
      'm',
    );
    const { sets } = await events(x850(`${HEADER}\nPO1*1*1*EA*1**BP*B-1*UP*0123~\nCTT*1*1~`));
    const m = mapTransaction(mapping, sets[0]!);
    expect(m.problems.map((p) => [p.business, p.element, p.message])).toEqual([
      [
        true,
        7,
        'po.edi, segment 6 (PO107): line 1: no product id VP or SK in any PO106–PO125 pair; field sku is required by the mapping (the pairs hold BP "B-1", UP "0123")',
      ],
    ]);
  });

  it('the old until key is refused with a reason', () => {
    expect(() =>
      parseYaml(
        'm.yaml',
        `transaction_set: '850'\nlines:\n  loop: PO1\n  until: [CTT]\n  fields: { q: PO102 }\n`,
        inboundMappingSchema,
      ),
    ).toThrow(/lines\.until: is no longer read: the line loop ends where the transaction set structure says/);
  });
});
