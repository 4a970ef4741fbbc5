import { describe, expect, it } from 'vitest';
import { parseYaml } from '../../src/config/yaml.js';
import {
  compileInboundMapping,
  inboundMappingSchema,
  loadInboundMapping,
  mapTransaction,
  parsePath,
} from '../../src/x12/mapping.js';
import { parseSetWithNodeX12 } from '../helpers/node-x12.js';
import type { TransactionSet } from '../../src/x12/types.js';
import { fixtureEvents, HOME } from '../helpers/x12.js';

async function setsOf(name: string): Promise<TransactionSet[]> {
  return (await fixtureEvents(name)).flatMap((e) => (e.kind === 'transaction' ? [e.set] : []));
}

describe('element paths', () => {
  it('parses plain, qualified, all-occurrence and component paths', () => {
    expect(parsePath('BEG03')).toMatchObject({
      tag: 'BEG',
      element: 3,
      where: null,
      all: false,
      component: null,
    });
    expect(parsePath('N1[N101=ST].N102')).toMatchObject({
      tag: 'N1',
      element: 2,
      where: { element: 1, values: ['ST'] },
    });
    expect(parsePath('PO1[*].PO102')).toMatchObject({ tag: 'PO1', element: 2, all: true });
    expect(parsePath('MEA04-1')).toMatchObject({ tag: 'MEA', element: 4, component: 1 });
    expect(parsePath('N1[N101=ST|DA].N104')).toMatchObject({ where: { values: ['ST', 'DA'] } });
    expect(parsePath('N1[REF01=ST].N102')).toBe(
      'N1[REF01=ST].N102: the qualifier REF01 is not in segment N1',
    );
    expect(parsePath('beg03')).toMatch(/is not an element path/);
  });

  it('a bad path in a mapping file is reported with its line', () => {
    expect(() =>
      parseYaml('m.yaml', `transaction_set: '850'\nheader:\n  po: BEG3\n`, inboundMappingSchema),
    ).toThrow('m.yaml, line 3, header.po: "BEG3" is not an element path');
  });
});

describe('850 mapping', () => {
  it('maps partner A 850s to header and lines', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const [s1, s2] = await setsOf('partner-a-850.edi');
    const m1 = mapTransaction(mapping, s1!);
    expect(m1.problems).toEqual([]);
    expect(m1.header).toEqual({
      po_number: 'PO-10001',
      po_date: '2026-01-15',
      purpose: '00',
      po_type: 'SA',
      currency: 'USD',
      department: '042',
      requested_ship_date: '2026-02-01',
      ship_to_name: 'ACME DISTRIBUTION CENTER',
      ship_to_code: 'DC01',
      ship_to_qualifier: '92',
      bill_to_name: 'ACME CORP',
      bill_to_code: 'HQ',
      bill_to_qualifier: '92',
      line_count: '3',
    });
    expect(m1.lines).toEqual([
      {
        line_number: '1',
        quantity: '10',
        uom: 'EA',
        unit_price: '12.50',
        price_basis: null,
        buyer_part: 'SKU-1001',
        vendor_part: 'V-9001',
        description: 'STEEL BOLT M8',
        weight: null,
        weight_uom: null,
      },
      {
        line_number: '2',
        quantity: '5.5',
        uom: 'CA',
        unit_price: '3.2',
        price_basis: null,
        buyer_part: 'SKU-1002',
        vendor_part: null,
        description: 'HEX NUT ZINC',
        weight: null,
        weight_uom: null,
      },
      {
        line_number: '3',
        quantity: '100',
        uom: 'EA',
        unit_price: '0.15',
        price_basis: null,
        buyer_part: 'SKU-1003',
        vendor_part: 'V-9003',
        description: 'WASHER',
        weight: null,
        weight_uom: null,
      },
    ]);
    const m2 = mapTransaction(mapping, s2!);
    expect([m2.header.po_number, m2.header.po_date, m2.header.ship_to_name, m2.lines.length]).toEqual([
      'PO-10002',
      '2026-01-16',
      'ACME EAST',
      2,
    ]);
  });

  it('maps partner B 850s (other delimiters, composite MEA04)', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const [s1] = await setsOf('partner-b-850.edi');
    const m = mapTransaction(mapping, s1!);
    expect(m.problems).toEqual([]);
    expect(m.header.po_number).toBe('GX-7001');
    expect(m.lines[0]).toMatchObject({ buyer_part: 'SKU-1001', weight: '4.5', weight_uom: 'LB' });
    expect(m.lines[1]).toMatchObject({ buyer_part: 'SKU-1002', weight: null });
  });

  it('reports missing and invalid values with segment number, element and ack codes', async () => {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    const [s] = await setsOf('partner-a-850-missing-beg.edi');
    const m = mapTransaction(mapping, s!);
    expect(m.header.po_number).toBeNull();
    expect(
      m.problems.map((p) => [p.code, p.segment, p.segmentId, p.positionInSet, p.element ?? null, p.ack]),
    ).toEqual([
      // X12's own rule, from the 850 structure: BEG is mandatory (AK304 3), reported where CUR came instead.
      ['SEGMENT_MISSING', 4, 'BEG', 2, null, { ak3: '3' }],
      ['ELEMENT_SYNTAX', 6, 'DTM', 4, 2, { ak3: '8', ak4: '8' }],
    ]);
    expect(m.problems[0]!.message).toBe(
      'partner-a-850-missing-beg.edi, segment 4 (BEG): transaction set 850 0001: mandatory segment BEG is missing before CUR',
    );
    expect(m.problems[1]!.message).toBe(
      'partner-a-850-missing-beg.edi, segment 6 (DTM02): DTM02 is "20261341"; expected a date CCYYMMDD (DT)',
    );
  });

  it('types: N2 implied decimals, TM, YYMMDD dates, required empty element', () => {
    const mapping = compileInboundMapping(
      parseYaml(
        'm.yaml',
        `transaction_set: '810'\nheader:\n  total: { path: TDS01, type: N2 }\n  at: { path: 'DTM[DTM01=011].DTM03', type: TM }\n  d6: { path: 'DTM[DTM01=011].DTM02', type: DT }\n  inv: { path: BIG02, required: true }\n`,
        inboundMappingSchema,
      ),
      'm',
    );
    const seg = (ordinal: number, ...elements: string[]) => ({ tag: elements[0]!, elements, ordinal });
    const set = {
      id: '810',
      controlNumber: '0001',
      implementationRef: null,
      problems: [],
      group: { interchange: { file: 'f.edi', delimiters: { component: '>' } } },
      segments: [
        seg(3, 'ST', '810', '0001'),
        seg(4, 'BIG', '20260101', ''),
        seg(5, 'DTM', '011', '991231', '1405'),
        seg(6, 'TDS', '-5'),
        seg(7, 'SE', '5', '0001'),
      ],
    } as unknown as TransactionSet;
    const m = mapTransaction(mapping, set);
    expect(m.header).toEqual({ total: '-0.05', at: '14:05', d6: '1999-12-31', inv: null });
    // Required by the mapping only (810 has no declared structure): a business problem.
    expect(m.problems.map((p) => [p.code, p.segment, p.element, p.business])).toEqual([
      ['ELEMENT_MISSING', 4, 2, true],
    ]);
  });

  it('node-x12 parses a single set from the splitter in strict mode', async () => {
    const [s] = await setsOf('partner-b-850.edi');
    const t = parseSetWithNodeX12(s!);
    expect(t.header.valueOf(2)).toBe('0001');
    expect(t.segments.map((x) => x.tag)).toEqual(s!.segments.slice(1, -1).map((x) => x.tag));
  });
});
