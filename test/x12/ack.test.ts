import { X12Interchange, X12Parser, type X12Segment } from 'node-x12';
import { describe, expect, it } from 'vitest';
import { buildAck } from '../../src/x12/ack.js';
import { loadInboundMapping, mapTransaction } from '../../src/x12/mapping.js';
import type { GeEvent, InterchangeHeader, X12Event } from '../../src/x12/types.js';
import { fixtureEvents, HOME, profile } from '../helpers/x12.js';

const NOW = new Date('2026-01-16T08:05:00Z');

/** Parses with node-x12 in strict mode and returns every segment as [tag, ...values]. */
function parseStrict(text: string): { interchange: X12Interchange; segments: string[][] } {
  const parsed = new X12Parser(true).parse(text);
  expect(parsed).toBeInstanceOf(X12Interchange);
  const x = parsed as X12Interchange;
  const row = (s: X12Segment): string[] => [s.tag, ...s.elements.map((e) => e.value)];
  const segments = [row(x.header)];
  for (const g of x.functionalGroups) {
    segments.push(row(g.header));
    for (const t of g.transactions) segments.push(row(t.header), ...t.segments.map(row), row(t.trailer));
    segments.push(row(g.trailer));
  }
  segments.push(row(x.trailer));
  return { interchange: x, segments };
}

function parts(evs: X12Event[]): { isa: InterchangeHeader; groups: GeEvent[]; problems: X12Event[] } {
  const isa = evs.find((e) => e.kind === 'isa')!;
  return {
    isa: isa.kind === 'isa' ? isa.interchange : (undefined as never),
    groups: evs.filter((e): e is GeEvent => e.kind === 'ge'),
    problems: evs.filter((e) => e.kind === 'iea'),
  };
}

describe('997 for partner A (004010)', () => {
  it('acknowledges both 850s: swapped ids, GS01 FA, AK1/AK2/AK5/AK9, parsed back strictly', async () => {
    const { isa, groups } = parts(await fixtureEvents('partner-a-850.edi'));
    const ack = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-a'),
      control: { isa13: 42, gs06: [17], st02: [5] },
      now: NOW,
    });
    expect(ack.type).toBe('997');
    const { interchange, segments } = parseStrict(ack.text);
    // Sender and receiver swapped from the inbound ISA (ZZ ACMEBUY → ZZ ERPCO).
    expect(
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16].map((n) => interchange.header.valueOf(n)),
    ).toEqual([
      '00',
      '          ',
      '00',
      '          ',
      'ZZ',
      'ERPCO          ',
      'ZZ',
      'ACMEBUY        ',
      '260116',
      '0805',
      'U',
      '00401',
      // node-x12 drops the leading zeros of ISA13
      '42',
      '0',
      'P',
      '>',
    ]);
    expect(ack.text.slice(0, 107)).toBe(
      'ISA*00*          *00*          *ZZ*ERPCO          *ZZ*ACMEBUY        *260116*0805*U*00401*000000042*0*P*>~\n',
    );
    expect(segments.slice(1)).toEqual([
      ['GS', 'FA', 'ERPCO', 'ACMEBUY', '20260116', '0805', '17', 'X', '004010'],
      ['ST', '997', '0005'],
      ['AK1', 'PO', '101'],
      ['AK2', '850', '0001'],
      ['AK5', 'A'],
      ['AK2', '850', '0002'],
      ['AK5', 'A'],
      ['AK9', 'A', '2', '2', '2'],
      ['SE', '8', '0005'],
      ['GE', '1', '17'],
      ['IEA', '1', '42'],
    ]);
    expect(ack.groups[0]!.code).toBe('A');
  });

  it('bad SE01 count: AK5 R 4 for that set, AK9 P 2 2 1', async () => {
    const { isa, groups } = parts(await fixtureEvents('bad-se-count.edi'));
    const ack = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-a'),
      control: { isa13: 1, gs06: [1], st02: [1] },
      now: NOW,
    });
    const { segments } = parseStrict(ack.text);
    expect(segments.filter((s) => /^AK/.test(s[0]!))).toEqual([
      ['AK1', 'PO', '401'],
      ['AK2', '850', '0001'],
      ['AK5', 'A'],
      ['AK2', '850', '0002'],
      ['AK5', 'R', '4'],
      ['AK9', 'P', '2', '2', '1'],
    ]);
  });

  it('GE01/GE02 wrong: AK9 R with codes 5 and 4, every set rejected', async () => {
    const { isa, groups } = parts(await fixtureEvents('bad-ge.edi'));
    const ack = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-a'),
      control: { isa13: 2, gs06: [2], st02: [2] },
      now: NOW,
    });
    const { segments } = parseStrict(ack.text);
    expect(segments.filter((s) => /^AK[259]/.test(s[0]!))).toEqual([
      ['AK2', '850', '0001'],
      ['AK5', 'R'],
      ['AK9', 'R', '2', '1', '0', '5', '4'],
    ]);
  });

  it('truncated: the cut set gets AK5 R 2, the group AK9 R 3', async () => {
    const evs = await fixtureEvents('truncated.edi');
    const { isa, groups } = parts(evs);
    const iea = evs.at(-1)!;
    const ack = buildAck({
      interchange: isa,
      groups,
      interchangeProblems: iea.kind === 'iea' ? iea.problems : [],
      profile: await profile('partner-a'),
      control: { isa13: 3, gs06: [3], st02: [3] },
      now: NOW,
    });
    const { segments } = parseStrict(ack.text);
    expect(segments.filter((s) => /^AK[259]/.test(s[0]!))).toEqual([
      ['AK2', '850', '0001'],
      ['AK5', 'R'],
      ['AK2', '850', '0002'],
      ['AK5', 'R', '2'],
      ['AK9', 'R', '2', '2', '0', '3'],
    ]);
  });

  it('two groups in one interchange: one FA group each, with their own control numbers', async () => {
    const { isa, groups } = parts(await fixtureEvents('partner-a-2gs.edi'));
    const ack = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-a'),
      control: { isa13: 9, gs06: [30, 31], st02: [40, 41] },
      now: NOW,
    });
    const { segments } = parseStrict(ack.text);
    expect(segments.filter((s) => ['GS', 'ST', 'AK1', 'AK9', 'GE'].includes(s[0]!))).toEqual([
      ['GS', 'FA', 'ERPCO', 'ACMEBUY', '20260116', '0805', '30', 'X', '004010'],
      ['ST', '997', '0040'],
      ['AK1', 'PO', '201'],
      ['AK9', 'A', '1', '1', '1'],
      ['GE', '1', '30'],
      ['GS', 'FA', 'ERPCO', 'ACMEBUY', '20260116', '0805', '31', 'X', '004010'],
      ['ST', '997', '0041'],
      ['AK1', 'PO', '202'],
      ['AK9', 'A', '1', '1', '1'],
      ['GE', '1', '31'],
    ]);
    expect(segments.at(-1)).toEqual(['IEA', '2', '9']);
  });

  it('mapping problems become AK3/AK4: missing BEG (AK3 3) and a bad date (AK4 8)', async () => {
    const evs = await fixtureEvents('partner-a-850-missing-beg.edi');
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    for (const ev of evs) {
      if (ev.kind === 'transaction') ev.set.problems.push(...mapTransaction(mapping, ev.set).problems);
    }
    const { isa, groups } = parts(evs);
    const ack = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-a'),
      control: { isa13: 4, gs06: [4], st02: [4] },
      now: NOW,
    });
    const { segments } = parseStrict(ack.text);
    expect(segments.filter((s) => /^AK/.test(s[0]!))).toEqual([
      ['AK1', 'PO', '901'],
      ['AK2', '850', '0001'],
      ['AK3', 'BEG', '2', '', '3'],
      ['AK3', 'DTM', '4', '', '8'],
      ['AK4', '2', '', '8', '20261341'],
      ['AK5', 'R', '5'],
      ['AK9', 'R', '1', '1', '0'],
    ]);
  });
});

describe('999 for partner B (005010, | ^ ! repetition {)', () => {
  it('uses IK5, ST03 and GS08 005010X231A1, AK1 with the version, partner delimiters, test usage mirrored', async () => {
    const { isa, groups } = parts(await fixtureEvents('partner-b-850.edi'));
    const ack = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-b'),
      control: { isa13: 7, gs06: [8], st02: [9] },
      now: NOW,
    });
    expect(ack.type).toBe('999');
    expect(ack.text).not.toContain('\n');
    expect(ack.text.slice(0, 106)).toBe(
      'ISA|00|          |00|          |ZZ|ERPCO          |01|987654321      |260116|0805|{|00501|000000007|0|T|^!',
    );
    const { segments } = parseStrict(ack.text);
    expect(segments.slice(1)).toEqual([
      ['GS', 'FA', 'ERPCO', 'GLOBEX', '20260116', '0805', '8', 'X', '005010X231A1'],
      ['ST', '999', '0009', '005010X231A1'],
      ['AK1', 'PO', '77', '005010'],
      ['AK2', '850', '0001'],
      ['IK5', 'A'],
      ['AK2', '850', '0002'],
      ['IK5', 'A'],
      ['AK9', 'A', '2', '2', '2'],
      ['SE', '8', '0009'],
      ['GE', '1', '8'],
      ['IEA', '1', '7'],
    ]);
  });

  it('IK3/IK4 with a composite position use the partner component separator', async () => {
    const evs = await fixtureEvents('partner-b-850.edi');
    const { isa, groups } = parts(evs);
    const set = groups[0]!.sets[0]!;
    set.problems.push({
      code: 'ELEMENT_INVALID',
      level: 'element',
      file: 'partner-b-850.edi',
      segment: 16,
      segmentId: 'MEA',
      positionInSet: 14,
      element: 4,
      component: 1,
      value: 'LB',
      message: 'test',
      ack: { ak4: '7' },
    });
    const ack = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-b'),
      control: { isa13: 7, gs06: [8], st02: [9] },
      now: NOW,
    });
    expect(ack.text).toContain('!IK3|MEA|14||8!IK4|4^1||7|LB!IK5|R|5!');
    // A bad value holding one of our delimiters is not copied into IK404.
    set.problems[0]!.value = 'L|B';
    const again = buildAck({
      interchange: isa,
      groups,
      profile: await profile('partner-b'),
      control: { isa13: 7, gs06: [8], st02: [9] },
      now: NOW,
    });
    expect(again.text).toContain('!IK4|4^1||7!');
    expect(parseStrict(ack.text).segments.find((s) => s[0] === 'AK9')).toEqual(['AK9', 'P', '2', '2', '1']);
  });
});
