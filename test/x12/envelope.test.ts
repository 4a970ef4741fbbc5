import { describe, expect, it } from 'vitest';
import { judgeGroup } from '../../src/x12/ack.js';
import { splitX12 } from '../../src/x12/splitter.js';
import type { GeEvent, IeaEvent, X12Event } from '../../src/x12/types.js';
import { chunked, fixtureEvents } from '../helpers/x12.js';

const ISA =
  'ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260115*0930*U*00401*000000101*0*P*>~';
const GS = 'GS*PO*ACMEBUY*ERPCO*20260115*0930*7*X*004010~';

async function events(text: string): Promise<X12Event[]> {
  const out: X12Event[] = [];
  for await (const ev of splitX12(chunked(Buffer.from(text), 5), { file: 'x.edi' })) out.push(ev);
  return out;
}
const groups = (evs: X12Event[]): GeEvent[] => evs.filter((e): e is GeEvent => e.kind === 'ge');
const iea = (evs: X12Event[]): IeaEvent => evs.find((e): e is IeaEvent => e.kind === 'iea')!;

describe('envelope validation of the malformed fixtures', () => {
  it('bad SE01: the set is rejected with AK5 code 4, the group partially accepted', async () => {
    const evs = await fixtureEvents('bad-se-count.edi');
    const [ge] = groups(evs);
    const bad = ge!.sets[1]!.problems;
    expect(bad.map((p) => [p.code, p.ack.ak5, p.segment, p.element])).toEqual([['SE01_COUNT', '4', 34, 1]]);
    expect(bad[0]!.message).toBe(
      'bad-se-count.edi, segment 34 (SE01): SE01 is "99" but transaction set 850 0002 (ST at segment 20) has 15 segments ST..SE; expected 15',
    );
    const v = judgeGroup(ge!);
    expect([v.code, v.included, v.received, v.accepted, v.codes]).toEqual(['P', 2, 2, 1, []]);
    expect(v.sets.map((s) => [s.set.controlNumber, s.accepted, s.codes])).toEqual([
      ['0001', true, []],
      ['0002', false, ['4']],
    ]);
  });

  it('IEA02 differs from ISA13: an interchange problem (TA1 001) that rejects every group', async () => {
    const evs = await fixtureEvents('bad-iea-control.edi');
    const p = iea(evs).problems;
    expect(p.map((x) => [x.code, x.ack.ta1, x.segment, x.element])).toEqual([
      ['IEA02_MISMATCH', '001', 21, 2],
    ]);
    expect(p[0]!.message).toBe(
      'bad-iea-control.edi, segment 21 (IEA02): IEA02 is "000000999"; expected "000000106" as in ISA13 at segment 1',
    );
    const v = judgeGroup(groups(evs)[0]!, p);
    expect([v.code, v.accepted, v.sets[0]!.accepted]).toEqual(['R', 0, false]);
  });

  it('GE01 and GE02 wrong: AK9 R with codes 5 and 4', async () => {
    const evs = await fixtureEvents('bad-ge.edi');
    const [ge] = groups(evs);
    expect(ge!.problems.map((p) => [p.code, p.ack.ak9])).toEqual([
      ['GE01_COUNT', '5'],
      ['GE02_MISMATCH', '4'],
    ]);
    const v = judgeGroup(ge!);
    expect([v.code, v.included, v.received, v.accepted, v.codes]).toEqual(['R', 2, 1, 0, ['5', '4']]);
  });

  it('truncated file: missing SE (AK5 2), GE (AK9 3) and IEA (TA1 023)', async () => {
    const evs = await fixtureEvents('truncated.edi');
    const [ge] = groups(evs);
    expect(ge!.sets.map((s) => s.problems.map((p) => [p.code, p.ack.ak5]))).toEqual([
      [],
      [['SE_MISSING', '2']],
    ]);
    expect(ge!.problems.map((p) => [p.code, p.ack.ak9, p.segment])).toEqual([['GE_MISSING', '3', null]]);
    expect(iea(evs).problems.map((p) => [p.code, p.ack.ta1])).toEqual([
      ['TRUNCATED', '023'],
      ['IEA_MISSING', '023'],
    ]);
    expect(iea(evs).problems[0]!.message).toBe(
      'truncated.edi, segment 31: the file ends inside this segment ("PO1*2*24*EA*"), before its terminator; the file is truncated',
    );
    const v = judgeGroup(ge!, iea(evs).problems);
    expect([v.code, v.included, v.received, v.accepted, v.codes]).toEqual(['R', 2, 2, 0, ['3']]);
    expect(v.sets[1]!.codes).toEqual(['2']);
  });
});

describe('envelope validation of hand-made cases', () => {
  it('SE02 differs from ST02: AK5 3', async () => {
    const evs = await events(
      `${ISA}${GS}ST*850*0001~BEG*00*SA*1**20260115~SE*3*0002~GE*1*7~IEA*1*000000101~`,
    );
    const [ge] = groups(evs);
    expect(ge!.sets[0]!.problems.map((p) => [p.code, p.ack.ak5, p.value])).toEqual([
      ['SE02_MISMATCH', '3', '0002'],
    ]);
  });

  it('ST02 used twice in a group: AK5 23; an invalid ST02: AK5 7; an invalid ST01: AK5 6', async () => {
    const evs = await events(
      `${ISA}${GS}ST*850*0001~SE*2*0001~ST*850*0001~SE*2*0001~ST*850*01~SE*2*01~ST*85X*0004~SE*2*0004~GE*4*7~IEA*1*000000101~`,
    );
    const [ge] = groups(evs);
    expect(ge!.sets.map((s) => s.problems.map((p) => p.ack.ak5))).toEqual([[], ['23'], ['7'], ['6']]);
  });

  it('an 850 in a group whose GS01 is not PO: AK5 6', async () => {
    const evs = await events(
      `${ISA}${GS.replace('GS*PO', 'GS*IN')}ST*850*0001~SE*2*0001~GE*1*7~IEA*1*000000101~`,
    );
    expect(groups(evs)[0]!.sets[0]!.problems.map((p) => [p.code, p.ack.ak5])).toEqual([
      ['ST01_GROUP_MISMATCH', '6'],
    ]);
  });

  it('a garbage segment id inside a set: AK3 1, the set is rejected with AK5 5', async () => {
    const evs = await events(
      `${ISA}${GS}ST*850*0001~BEG*00*SA*1**20260115~h@ck*1~SE*4*0001~GE*1*7~IEA*1*000000101~`,
    );
    const [ge] = groups(evs);
    expect(ge!.sets[0]!.problems.map((p) => [p.code, p.ack.ak3, p.positionInSet, p.segment])).toEqual([
      ['SEGMENT_ID_INVALID', '1', 3, 5],
    ]);
    expect(judgeGroup(ge!).sets[0]!.codes).toEqual(['5']);
  });

  it('IEA01 wrong: TA1 021', async () => {
    const evs = await events(`${ISA}${GS}ST*850*0001~SE*2*0001~GE*1*7~IEA*3*000000101~`);
    expect(iea(evs).problems.map((p) => [p.code, p.ack.ta1])).toEqual([['IEA01_COUNT', '021']]);
  });

  it('GS06 used twice in an interchange: AK9 19; GS06 not numeric: AK9 6', async () => {
    const evs = await events(
      `${ISA}${GS}ST*850*0001~SE*2*0001~GE*1*7~${GS}ST*850*0001~SE*2*0001~GE*1*7~${GS.replace('*7*', '*A7*')}ST*850*0001~SE*2*0001~GE*1*A7~IEA*3*000000101~`,
    );
    expect(groups(evs).map((g) => g.problems.map((p) => p.ack.ak9))).toEqual([[], ['19'], ['6']]);
  });

  it('a missing GE before the next GS: AK9 3 on the first group only', async () => {
    const evs = await events(
      `${ISA}${GS}ST*850*0001~SE*2*0001~${GS.replace('*7*', '*8*')}ST*850*0001~SE*2*0001~GE*1*8~IEA*2*000000101~`,
    );
    const [g1, g2] = groups(evs);
    expect(g1!.problems.map((p) => [p.code, p.segment])).toEqual([['GE_MISSING', 5]]);
    expect(g1!.problems[0]!.message).toContain('has no GE trailer; expected GE before GS');
    expect(g2!.problems).toEqual([]);
  });

  it('a segment between sets rejects the group; one outside any group is an interchange problem', async () => {
    const evs = await events(`${ISA}REF*XX*1~${GS}ST*850*0001~SE*2*0001~REF*DP*1~GE*1*7~IEA*1*000000101~`);
    expect(iea(evs).problems.map((p) => [p.code, p.segment])).toEqual([['SEGMENT_OUTSIDE_GROUP', 2]]);
    expect(groups(evs)[0]!.problems.map((p) => [p.code, p.segment])).toEqual([['SEGMENT_OUTSIDE_SET', 6]]);
    expect(judgeGroup(groups(evs)[0]!).code).toBe('R');
  });
});

describe('TA1 inside an inbound interchange', () => {
  it('before the first GS: a ta1 event with its elements, no problem', async () => {
    const evs = await events(
      `${ISA}TA1*000000042*260114*1200*R*001~${GS}ST*850*0001~SE*2*0001~GE*1*7~IEA*1*000000101~`,
    );
    expect(evs.map((e) => e.kind)).toEqual(['isa', 'ta1', 'gs', 'transaction', 'ge', 'iea']);
    expect(evs[1]).toMatchObject({
      controlNumber: '000000042',
      date: '260114',
      time: '1200',
      code: 'R',
      note: '001',
    });
    expect(iea(evs).problems).toEqual([]);
  });

  it('malformed: TA1_INVALID naming the element; inside a group: out of place', async () => {
    const bad = await events(`${ISA}TA1*42*260114*1200*R*001~IEA*0*000000101~`);
    expect(iea(bad).problems.map((p) => [p.code, p.element, p.ack.ta1, p.message])).toEqual([
      [
        'TA1_INVALID',
        1,
        '024',
        'x.edi, segment 2 (TA101): TA101 is "42"; expected the 9-digit ISA13 of the interchange it acknowledges',
      ],
    ]);
    const inGroup = await events(`${ISA}${GS}TA1*000000042*260114*1200*A*000~GE*0*7~IEA*1*000000101~`);
    expect(groups(inGroup)[0]!.problems.map((p) => p.code)).toEqual(['SEGMENT_OUTSIDE_SET']);
    expect(inGroup.some((e) => e.kind === 'ta1')).toBe(false);
  });
});
