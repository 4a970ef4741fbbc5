import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { X12Error } from '../../src/x12/errors.js';
import { splitX12 } from '../../src/x12/splitter.js';
import type { TransactionEvent, X12Event } from '../../src/x12/types.js';
import { chunked, describeEvents, FIXTURES, fixtureEvents } from '../helpers/x12.js';

const ISA_A =
  'ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260115*0930*U*00401*000000101*0*P*>~';

async function collect(text: string | Buffer, size = 1 << 16, file = 'test.edi'): Promise<X12Event[]> {
  const data = typeof text === 'string' ? Buffer.from(text) : text;
  const out: X12Event[] = [];
  for await (const ev of splitX12(chunked(data, size), { file })) out.push(ev);
  return out;
}

async function failure(text: string, options = {}): Promise<X12Error> {
  try {
    for await (const _ of splitX12(chunked(Buffer.from(text), 64), { file: 'bad.edi', ...options })) {
      // drain
    }
  } catch (err) {
    expect(err).toBeInstanceOf(X12Error);
    return err as X12Error;
  }
  throw new Error('expected an X12Error');
}

const sets = (events: X12Event[]): TransactionEvent['set'][] =>
  events.filter((e): e is TransactionEvent => e.kind === 'transaction').map((e) => e.set);

describe('splitX12 on the fixtures', () => {
  it('yields isa, gs, one event per transaction set, ge, iea for partner A (004010, ~ and LF)', async () => {
    const events = await fixtureEvents('partner-a-850.edi');
    expect(events.map((e) => e.kind)).toEqual(['isa', 'gs', 'transaction', 'transaction', 'ge', 'iea']);
    const isa = events[0]!;
    expect(isa.kind === 'isa' && isa.interchange).toMatchObject({
      senderQualifier: 'ZZ',
      senderId: 'ACMEBUY',
      receiverId: 'ERPCO',
      controlNumber: '000000101',
      version: '00401',
      usage: 'P',
      delimiters: { element: '*', component: '>', segment: '~', repetition: null },
    });
    const [s1, s2] = sets(events);
    expect(s1!.segments).toHaveLength(17);
    expect(s1!.segments[0]).toEqual({ tag: 'ST', elements: ['ST', '850', '0001'], ordinal: 3 });
    expect(s1!.segments[1]!.elements).toEqual(['BEG', '00', 'SA', 'PO-10001', '', '20260115']);
    expect(s1!.segments.at(-1)!.elements).toEqual(['SE', '17', '0001']);
    expect(s2!.segments[0]!.ordinal).toBe(20);
    expect(s2!.controlNumber).toBe('0002');
    expect(s1!.problems).toEqual([]);
    const ge = events[4]!;
    expect(ge.kind === 'ge' && ge.sets.map((s) => s.controlNumber)).toEqual(['0001', '0002']);
    const iea = events[5]!;
    expect(iea.kind === 'iea' && [iea.groupCount, iea.problems]).toEqual([1, []]);
  });

  it('reads partner B delimiters (| ^ ! repetition {) without line breaks, 005010', async () => {
    const events = await fixtureEvents('partner-b-850.edi');
    const isa = events[0]!;
    expect(isa.kind === 'isa' && isa.interchange.delimiters).toEqual({
      element: '|',
      component: '^',
      segment: '!',
      repetition: '{',
    });
    expect(
      isa.kind === 'isa' && [isa.interchange.version, isa.interchange.usage, isa.interchange.ackRequested],
    ).toEqual(['00501', 'T', true]);
    const [s1] = sets(events);
    const mea = s1!.segments.find((s) => s.tag === 'MEA')!;
    expect(mea.elements).toEqual(['MEA', 'PD', 'WT', '4.5', 'LB^X']);
    expect(sets(events).map((s) => s.problems)).toEqual([[], []]);
  });

  it('handles two GS in one ISA', async () => {
    const events = await fixtureEvents('partner-a-2gs.edi');
    expect(events.map((e) => e.kind)).toEqual([
      'isa',
      'gs',
      'transaction',
      'ge',
      'gs',
      'transaction',
      'ge',
      'iea',
    ]);
    const gs = events.filter((e) => e.kind === 'gs').map((e) => e.kind === 'gs' && e.group.controlNumber);
    expect(gs).toEqual(['201', '202']);
    const iea = events.at(-1)!;
    expect(iea.kind === 'iea' && iea.groupCount).toBe(2);
  });

  it('handles two ISA in one file with CRLF after segments', async () => {
    const events = await fixtureEvents('partner-a-2isa.edi');
    expect(events.map((e) => e.kind)).toEqual([
      'isa',
      'gs',
      'transaction',
      'ge',
      'iea',
      'isa',
      'gs',
      'transaction',
      'ge',
      'iea',
    ]);
    const isas = events
      .filter((e) => e.kind === 'isa')
      .map((e) => e.kind === 'isa' && e.interchange.controlNumber);
    expect(isas).toEqual(['000000103', '000000104']);
    // No CR or LF leaks into elements.
    for (const s of sets(events))
      for (const seg of s.segments) for (const e of seg.elements) expect(e).not.toMatch(/[\r\n]/);
    expect(events.flatMap((e) => ('problems' in e ? e.problems : []))).toEqual([]);
  });

  it('gives the same events for 1-byte chunks as for the whole buffer, on every fixture', async () => {
    const names = (await readdir(FIXTURES)).filter((n) => n.endsWith('.edi'));
    expect(names.length).toBeGreaterThanOrEqual(12);
    for (const name of names) {
      const whole = await fixtureEvents(name).then(describeEvents, (e: Error) => e.message);
      const bytes = await fixtureEvents(name, 1).then(describeEvents, (e: Error) => e.message);
      const sevens = await fixtureEvents(name, 7).then(describeEvents, (e: Error) => e.message);
      expect(bytes, name).toEqual(whole);
      expect(sevens, name).toEqual(whole);
    }
  });

  it('decodes multi-byte UTF-8 split across chunks', async () => {
    const text = `${ISA_A}\nGS*PO*A*B*20260115*0930*1*X*004010~ST*850*0001~PID*F****Café Ü~SE*3*0001~GE*1*1~IEA*1*000000101~`;
    const events = await collect(text, 1);
    expect(sets(events)[0]!.segments[1]!.elements[5]).toBe('Café Ü');
  });

  it('accepts a final IEA without terminator and trailing white space', async () => {
    const text = `${ISA_A}\nGS*PO*A*B*20260115*0930*1*X*004010~ST*850*0001~SE*2*0001~GE*1*1~IEA*1*000000101\n\n`;
    const events = await collect(text, 3);
    const iea = events.at(-1)!;
    expect(iea.kind === 'iea' && [iea.trailer?.elements, iea.problems]).toEqual([
      ['IEA', '1', '000000101'],
      [],
    ]);
  });

  it('a new ISA with other delimiters where an IEA is missing: IEA_MISSING, then the next interchange reads fine', async () => {
    const isaB =
      'ISA|00|          |00|          |01|987654321      |ZZ|ERPCO          |260115|0930|{|00501|000000002|0|T|^!';
    const text = `${ISA_A}\nGS*PO*A*B*20260115*0930*1*X*004010~\nST*850*0001~\nSE*2*0001~\nGE*1*1~\n${isaB}GS|PO|A|B|20260115|0930|2|X|005010!ST|850|0001!SE|2|0001!GE|1|2!IEA|1|000000002!`;
    const events = await collect(text, 2);
    expect(describeEvents(events).map((e) => (e as unknown[])[0])).toEqual([
      'isa',
      'gs',
      'st',
      'ge',
      'iea',
      'isa',
      'gs',
      'st',
      'ge',
      'iea',
    ]);
    const ieas = events
      .filter((e) => e.kind === 'iea')
      .map((e) => e.kind === 'iea' && e.problems.map((p) => [p.code, p.segment]));
    expect(ieas).toEqual([[['IEA_MISSING', 6]], []]);
    expect(sets(events).map((s) => s.problems)).toEqual([[], []]);
  });

  it('accepts a newline as segment terminator', async () => {
    const isa = ISA_A.slice(0, -1) + '\n';
    const text = `${isa}GS*PO*A*B*20260115*0930*1*X*004010\nST*850*0001\nBEG*00*SA*1**20260115\nSE*3*0001\nGE*1*1\nIEA*1*000000101\n`;
    const events = await collect(text, 5);
    expect(events.map((e) => e.kind)).toEqual(['isa', 'gs', 'transaction', 'ge', 'iea']);
    expect(sets(events)[0]!.problems).toEqual([]);
  });
});

describe('splitX12 refuses what is not X12', () => {
  it('garbage: names the file and what it expected', async () => {
    const err = await failure('Hello, this is not an X12 file.\n');
    expect(err.message).toBe(
      'bad.edi, segment 1: expected the file to start with an ISA segment, found "Hello, this is not an X12 file"; this is not an X12 interchange',
    );
    expect(err.problem.code).toBe('ISA_MISSING');
  });

  it('an empty file', async () => {
    const err = await failure('\n\n');
    expect(err.problem.code).toBe('EMPTY');
  });

  it('an ISA that is not 106 characters (ISA06 not padded)', async () => {
    const err = await failure(
      ISA_A.replace('ACMEBUY        *', 'ACMEBUY*') + 'GS*PO*A*B*20260115*0930*1*X*004010~',
    );
    expect(err.problem).toMatchObject({ code: 'ISA_LENGTH', segment: 1, element: 6, ack: { ta1: '024' } });
    expect(err.message).toContain('ISA06 must be 15 characters');
    expect(err.message).toContain('ISA06 is 7 characters');
  });

  it('an ISA cut short by the end of the file', async () => {
    const err = await failure(ISA_A.slice(0, 60));
    expect(err.problem).toMatchObject({ code: 'ISA_TRUNCATED', ack: { ta1: '023' } });
  });

  it('delimiters that are letters, or the same twice', async () => {
    const sameAsComponent = ISA_A.slice(0, 104) + '~~';
    expect((await failure(sameAsComponent)).message).toContain(
      'the component separator and the segment terminator are both',
    );
    const letterComponent = ISA_A.slice(0, 104) + 'A~';
    expect((await failure(letterComponent)).message).toContain(
      "the component separator 'A' must not be a letter or digit",
    );
    const isaElement = ISA_A.replace(/\*/g, 'X');
    expect((await failure(isaElement)).message).toContain('the element separator (character 4)');
  });

  it('an invalid ISA13', async () => {
    const err = await failure(ISA_A.replace('000000101', '00000010A'));
    expect(err.problem).toMatchObject({ code: 'ISA13_INVALID', element: 13, ack: { ta1: '018' } });
  });

  it('text after the last IEA is a warning naming its byte offset; the interchange before it is read', async () => {
    const body = `${ISA_A}GS*PO*A*B*20260115*0930*1*X*004010~ST*850*0001~SE*2*0001~GE*1*1~IEA*1*000000101~`;
    for (const [tail, shown] of [
      ['\nTHIS IS A FOOTER', 'THIS IS A FOOTER'],
      ['JUNK*1~', 'JUNK*1~'],
    ] as const) {
      for (const size of [1, 7, 1 << 16]) {
        const events = await collect(body + tail, size);
        expect(events.map((e) => e.kind)).toEqual(['isa', 'gs', 'transaction', 'ge', 'iea', 'warning']);
        const offset = Buffer.byteLength(body) + (tail.startsWith('\n') ? 1 : 0);
        const w = events[5]!;
        expect(w.kind === 'warning' && w.problem.message).toBe(
          `test.edi, end of file: text after the last IEA, from byte offset ${offset}: ${JSON.stringify(shown)}; ignored (the interchanges before it are read)`,
        );
        expect(sets(events)[0]!.problems).toEqual([]);
      }
    }
  });

  it('text after an IEA followed by another ISA is garbage between interchanges: fatal, as before', async () => {
    const one = `${ISA_A}GS*PO*A*B*20260115*0930*1*X*004010~ST*850*0001~SE*2*0001~GE*1*1~IEA*1*000000101~`;
    const err = await failure(`${one}JUNK*1~${one}`);
    expect(err.problem).toMatchObject({ code: 'OUTSIDE_INTERCHANGE', segment: 7 });
    expect(err.message).toMatch(
      /^bad\.edi, segment 7: expected an ISA segment or the end of the file after the IEA, found "JUNK\*1~ISA\*00\*.*" at byte offset 186, and then another ISA$/,
    );
  });

  it('spaces, tabs and line breaks after a terminator are not part of the next segment', async () => {
    const text = `${ISA_A} \nGS*PO*A*B*20260115*0930*1*X*004010~ \r\n\tST*850*0001~\n\t\tBEG*00*SA*PO-1**20260115~  \n\tSE*3*0001~\nGE*1*1~\nIEA*1*000000101~ \n`;
    for (const size of [1, 5, 1 << 16]) {
      const events = await collect(text, size);
      expect(events.map((e) => e.kind)).toEqual(['isa', 'gs', 'transaction', 'ge', 'iea']);
      const set = sets(events)[0]!;
      expect(set.segments.map((x) => x.tag)).toEqual(['ST', 'BEG', 'SE']);
      expect(set.problems).toEqual([]);
      for (const e of events) if (e.kind === 'ge' || e.kind === 'iea') expect(e.problems).toEqual([]);
    }
  });

  it('a declared terminator that never appears is said in those words', async () => {
    const text = `${ISA_A}\r\nGS*PO*A*B*20260115*0930*1*X*004010\r\nST*850*0001\r\nSE*2*0001\r\nGE*1*1\r\nIEA*1*000000101\r\n`;
    const err = await failure(text);
    expect(err.problem).toMatchObject({ code: 'TERMINATOR_NOT_FOUND', ack: { ta1: '004' } });
    expect(err.message).toBe(
      "bad.edi, segment 1 (ISA): the ISA declares the segment terminator '~' (its character 106), but '~' never appears after the ISA; the segments seem to end with CR LF line breaks instead; expected every segment to end with '~'",
    );
    // The same past the longest segment: not "no terminator within 64 characters".
    const big = await failure(text, { maxSegmentLength: 64 });
    expect(big.problem.code).toBe('TERMINATOR_NOT_FOUND');
  });
});

describe('splitX12 caps', () => {
  const body = (n: number): string =>
    `${ISA_A}GS*PO*A*B*20260115*0930*1*X*004010~ST*850*0001~${'REF*DP*1~'.repeat(n)}SE*${n + 2}*0001~GE*1*1~IEA*1*000000101~`;

  it('max segments per set', async () => {
    await expect(collect(body(10))).resolves.toHaveLength(5);
    const err = await failure(body(10), { maxSegmentsPerSet: 5 });
    expect(err.problem.code).toBe('SET_TOO_LONG');
    expect(err.message).toContain('has more than 5 segments');
  });

  it('max element length', async () => {
    const text = `${ISA_A}GS*PO*A*B*20260115*0930*1*X*004010~ST*850*0001~REF*DP*${'x'.repeat(50)}~SE*3*0001~GE*1*1~IEA*1*000000101~`;
    const err = await failure(text, { maxElementLength: 20 });
    expect(err.problem).toMatchObject({ code: 'ELEMENT_TOO_LONG', segment: 4, element: 2 });
    expect(err.message).toBe(
      'bad.edi, segment 4 (REF02): element 2 is 50 characters; at most 20 are accepted (maxElementLength)',
    );
  });

  it('max segment length: no terminator for too long stops reading instead of buffering', async () => {
    const text = `${ISA_A}GS*PO*A*B*20260115*0930*1*X*004010~ST*850*0001~REF*DP*${'x'.repeat(5000)}`;
    const err = await failure(text, { maxSegmentLength: 1000, maxElementLength: 100_000 });
    expect(err.problem.code).toBe('SEGMENT_TOO_LONG');
  });

  it('max file bytes', async () => {
    const err = await failure(body(100), { maxFileBytes: 500 });
    expect(err.problem.code).toBe('FILE_TOO_LARGE');
  });

  it('holds one transaction set at a time: memory stays flat over 20,000 sets', async () => {
    const set = (i: number): string =>
      `ST*850*${String(i).padStart(5, '0')}~BEG*00*SA*PO${i}**20260115~PO1*1*1*EA*1**BP*X~SE*4*${String(i).padStart(5, '0')}~`;
    async function* gen(): AsyncGenerator<string> {
      yield `${ISA_A}GS*PO*A*B*20260115*0930*1*X*004010~`;
      for (let i = 1; i <= 20_000; i++) yield set(i);
      yield 'GE*20000*1~IEA*1*000000101~';
    }
    let count = 0;
    let held = 0;
    let problems = 0;
    for await (const ev of splitX12(gen(), { file: 'big.edi' })) {
      if (ev.kind === 'transaction') {
        count++;
        held = Math.max(held, ev.set.segments.length);
        problems += ev.set.problems.length;
      }
    }
    expect([count, held, problems]).toEqual([20_000, 4, 0]);
  });
});
