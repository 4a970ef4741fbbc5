import { describe, expect, it } from 'vitest';
import { parseIsa } from '../../src/x12/delimiters.js';
import {
  formatControlNumber,
  formatDate,
  formatDecimal,
  formatId,
  formatImplied,
  formatTime,
  InterchangeWriter,
  isaSegment,
  serializeSegment,
  X12FormatError,
  type OutputFormat,
} from '../../src/x12/writer.js';

const STAR: OutputFormat = {
  delimiters: { element: '*', component: ':', segment: '~', repetition: '^' },
  lineBreak: '',
};

describe('numeric formats', () => {
  it('N2 implied decimals', () => {
    expect(formatImplied(12.5, 2)).toBe('1250');
    expect(formatImplied('12.345', 2)).toBe('1235');
    expect(formatImplied('-12.345', 2)).toBe('-1235');
    expect(formatImplied('0.004', 2)).toBe('0');
    expect(formatImplied(7, 0)).toBe('7');
    expect(formatImplied('3', 2, { minLength: 6 })).toBe('000300');
    expect(formatImplied(0.1 + 0.2, 2)).toBe('30');
    expect(() => formatImplied('123456', 2, { maxLength: 6, name: 'TDS01' })).toThrow(
      'TDS01: 12345600 has 8 digits; at most 6 fit',
    );
    expect(() => formatImplied('1e3', 2)).toThrow(X12FormatError);
    expect(() => formatImplied('abc', 2)).toThrow('"abc" is not a decimal number');
  });

  it('R decimals without trailing zeros or exponents', () => {
    expect(formatDecimal('12.50')).toBe('12.5');
    expect(formatDecimal('12.00')).toBe('12');
    expect(formatDecimal(1e-7)).toBe('0.0000001');
    expect(formatDecimal(1e21)).toBe('1000000000000000000000');
    expect(formatDecimal('-0.000')).toBe('0');
    expect(formatDecimal('.5')).toBe('0.5');
    expect(formatDecimal('2.34567', { maxDecimals: 2 })).toBe('2.35');
    expect(formatDecimal(-2.005, { maxDecimals: 2 })).toBe('-2.01');
    expect(formatDecimal(42n)).toBe('42');
  });
});

describe('text, dates and times', () => {
  it('fixed-length ids are padded, and too long is an error', () => {
    expect(formatId('ZZ', 2)).toBe('ZZ');
    expect(formatId('ACME', 15)).toBe('ACME           ');
    expect(() => formatId('A'.repeat(16), 15, 'ISA06')).toThrow(
      'ISA06: "AAAAAAAAAAAAAAAA" is 16 characters; at most 15 fit',
    );
  });

  it('dates CCYYMMDD and YYMMDD, times HHMM', () => {
    const d = new Date('2026-03-04T05:06:07Z');
    expect(formatDate(d)).toBe('20260304');
    expect(formatDate(d, 'YYMMDD')).toBe('260304');
    expect(formatDate('2026-12-31')).toBe('20261231');
    expect(formatTime(d)).toBe('0506');
    expect(formatTime(d, 'HHMMSS')).toBe('050607');
    expect(formatTime('14:30')).toBe('1430');
    expect(() => formatDate('31/12/2026', 'CCYYMMDD', 'BIG01')).toThrow('BIG01: "31/12/2026" is not a date');
  });

  it('control numbers', () => {
    expect(formatControlNumber(42, 9)).toBe('000000042');
    expect(formatControlNumber(42, 4)).toBe('0042');
    expect(formatControlNumber(123456789, 4)).toBe('123456789');
    expect(() => formatControlNumber(1_000_000_000, 9)).toThrow('must be 1 to 999999999');
    expect(() => formatControlNumber(0, 9)).toThrow(X12FormatError);
  });
});

describe('segments and envelopes', () => {
  it('drops trailing empty elements and components; refuses delimiters in values', () => {
    expect(serializeSegment(['N1', 'ST', 'ACME', '', ''], STAR)).toBe('N1*ST*ACME~');
    expect(serializeSegment(['MEA', 'PD', 'WT', '4', ['LB', '', '']], STAR)).toBe('MEA*PD*WT*4*LB~');
    expect(serializeSegment(['REF', 'DP', ''], { ...STAR, lineBreak: '\r\n' })).toBe('REF*DP~\r\n');
    expect(() => serializeSegment(['N1', 'ST', 'A*B'], STAR)).toThrow(
      'N102: the value "A*B" contains the delimiter \'*\'',
    );
    expect(() => serializeSegment(['N1', 'ST', 'A~B'], STAR)).toThrow(X12FormatError);
  });

  it('ISA is 106 characters and reads back with its delimiters', () => {
    const isa = isaSegment(
      {
        senderQualifier: 'ZZ',
        senderId: 'ERPCO',
        receiverQualifier: '01',
        receiverId: '987654321',
        date: new Date('2026-01-02T03:04:00Z'),
        controlNumber: 7,
        version: '00501',
        ackRequested: true,
        usage: 'T',
      },
      STAR,
    );
    expect(isa).toBe(
      'ISA*00*          *00*          *ZZ*ERPCO          *01*987654321      *260102*0304*^*00501*000000007*1*T*:~',
    );
    expect(parseIsa(isa, 'x', 1).delimiters).toEqual(STAR.delimiters);
  });

  it('InterchangeWriter counts SE01, GE01 and IEA01', () => {
    const w = new InterchangeWriter(
      { ...STAR, lineBreak: '\n' },
      {
        senderQualifier: 'ZZ',
        senderId: 'ERPCO',
        receiverQualifier: 'ZZ',
        receiverId: 'ACME',
        date: new Date('2026-01-02T03:04:00Z'),
        controlNumber: 12,
        version: '00401',
        ackRequested: false,
        usage: 'P',
      },
    );
    let text = w.begin();
    text += w.beginGroup({
      functionalId: 'IN',
      senderId: 'ERPCO',
      receiverId: 'ACME',
      date: new Date('2026-01-02T03:04:00Z'),
      controlNumber: 5,
      version: '004010',
    });
    text += w.transaction('810', 1, [
      ['BIG', '20260102', 'INV1'],
      ['TDS', '100'],
    ]);
    text += w.transaction('810', 2, [['BIG', '20260102', 'INV2']]);
    text += w.endGroup();
    text += w.end();
    expect(text.split('\n').slice(1)).toEqual([
      'GS*IN*ERPCO*ACME*20260102*0304*5*X*004010~',
      'ST*810*0001~',
      'BIG*20260102*INV1~',
      'TDS*100~',
      'SE*4*0001~',
      'ST*810*0002~',
      'BIG*20260102*INV2~',
      'SE*3*0002~',
      'GE*2*5~',
      'IEA*1*000000012~',
      '',
    ]);
    expect(w.setSegmentCounts).toEqual([4, 3]);
    expect(() => w.end()).toThrow('called in state done');
  });
});
