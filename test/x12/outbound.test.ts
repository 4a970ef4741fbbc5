import { PassThrough } from 'node:stream';
import { X12Interchange, X12Parser, type X12Segment } from 'node-x12';
import { describe, expect, it } from 'vitest';
import { parseYaml } from '../../src/config/yaml.js';
import {
  buildOutbound,
  buildTransactionBody,
  loadOutboundMapping,
  outboundMappingSchema,
  writeOutbound,
  type OutboundDocument,
  type OutboundMapping,
} from '../../src/x12/outbound.js';
import { splitX12 } from '../../src/x12/splitter.js';
import { X12FormatError } from '../../src/x12/writer.js';
import { checkHierarchy, gs1CheckDigit } from '../helpers/hl-check.js';
import { HOME, profile } from '../helpers/x12.js';

const NOW = new Date('2026-02-01T14:45:00Z');

const invoice = (n: number): OutboundDocument => ({
  header: {
    invoice_number: `INV-${n}`,
    invoice_date: '2026-02-01',
    po_number: `PO-1000${n}`,
    po_date: new Date('2026-01-15T00:00:00Z'),
    currency: 'USD',
    bill_to_name: 'ACME CORP',
    bill_to_code: 'HQ',
    ship_to_name: 'ACME DISTRIBUTION CENTER',
    ship_to_code: 'DC01',
    terms_net_days: 30,
    total_amount: '142.10',
  },
  lines: [
    {
      quantity: 10,
      uom: 'EA',
      unit_price: '12.50',
      buyer_part: 'SKU-1001',
      vendor_part: 'V-9001',
      description: 'STEEL BOLT M8',
    },
    {
      quantity: '5.5',
      uom: 'CA',
      unit_price: 3.2,
      buyer_part: 'SKU-1002',
      vendor_part: null,
      description: null,
    },
  ],
});

const shipment: OutboundDocument = {
  header: {
    shipment_id: 'SHP-500',
    ship_date: '2026-02-01',
    ship_time: '14:30',
    package_count: 3,
    gross_weight: '120.5',
    carrier_scac: 'UPSN',
    bill_of_lading: 'BOL-77',
    ship_to_name: 'ACME DISTRIBUTION CENTER',
    ship_to_code: 'DC01',
  },
  lines: [
    {
      po_number: 'PO-10001',
      line_number: 1,
      buyer_part: 'SKU-1001',
      vendor_part: 'V-9001',
      quantity: 10,
      uom: 'EA',
      description: 'STEEL BOLT M8',
    },
    { po_number: 'PO-10002', line_number: 1, buyer_part: 'SKU-2001', quantity: 2, uom: 'PL' },
    { po_number: 'PO-10001', line_number: 2, buyer_part: 'SKU-1002', quantity: '5.5', uom: 'CA' },
  ],
};

function parseStrict(text: string): { x: X12Interchange; sets: string[][][] } {
  const parsed = new X12Parser(true).parse(text);
  expect(parsed).toBeInstanceOf(X12Interchange);
  const x = parsed as X12Interchange;
  const row = (s: X12Segment): string[] => [s.tag, ...s.elements.map((e) => e.value)];
  const sets = x.functionalGroups.flatMap((g) =>
    g.transactions.map((t) => [row(t.header), ...t.segments.map(row), row(t.trailer)]),
  );
  return { x, sets };
}

describe('810 invoices', () => {
  it('partner A: formats N2/R/DT/ID, counts SE01/GE01/IEA01, parses back strictly', async () => {
    const mapping = await loadOutboundMapping(HOME, 'x12/810-out');
    const out = buildOutbound(
      {
        profile: await profile('partner-a'),
        mapping,
        control: { isa13: 1001, gs06: 1001, st02: [1, 2] },
        now: NOW,
      },
      [invoice(1), invoice(2)],
    );
    const { x, sets } = parseStrict(out.text);
    expect(x.header.valueOf(6)).toBe('ERPCO          ');
    expect(x.header.valueOf(8)).toBe('ACMEBUY        ');
    expect(x.header.valueOf(15)).toBe('P');
    expect(x.functionalGroups[0]!.header.valueOf(1)).toBe('IN');
    expect(x.functionalGroups[0]!.trailer.valueOf(1)).toBe('2');
    expect(sets[0]).toEqual([
      ['ST', '810', '0001'],
      ['BIG', '20260201', 'INV-1', '20260115', 'PO-10001'],
      ['CUR', 'SE', 'USD'],
      ['N1', 'BT', 'ACME CORP', '92', 'HQ'],
      ['N1', 'ST', 'ACME DISTRIBUTION CENTER', '92', 'DC01'],
      ['ITD', '01', '3', '', '', '', '', '30'],
      ['IT1', '1', '10', 'EA', '12.5', 'PE', 'BP', 'SKU-1001', 'VP', 'V-9001'],
      ['PID', 'F', '', '', '', 'STEEL BOLT M8'],
      ['IT1', '2', '5.5', 'CA', '3.2', 'PE', 'BP', 'SKU-1002'],
      ['TDS', '14210'],
      ['CTT', '2', '15.5'],
      ['SE', '12', '0001'],
    ]);
    expect(out.sets).toEqual([
      { st02: '0001', segments: 12 },
      { st02: '0002', segments: 12 },
    ]);
    expect(out.isa13).toBe('000001001');
    expect(out.text.split('\n')).toHaveLength(2 + 24 + 2 + 1);
  });

  it('partner B: 005010 delimiters, no line breaks, test usage, repetition separator in ISA11', async () => {
    const mapping = await loadOutboundMapping(HOME, 'x12/810-out');
    const out = buildOutbound(
      { profile: await profile('partner-b'), mapping, control: { isa13: 5, gs06: 6, st02: [7] }, now: NOW },
      [invoice(3)],
    );
    expect(out.text).not.toContain('\n');
    expect(out.text.slice(0, 106)).toBe(
      'ISA|00|          |00|          |ZZ|ERPCO          |01|987654321      |260201|1445|{|00501|000000005|0|T|^!',
    );
    const { x, sets } = parseStrict(out.text);
    expect(x.functionalGroups[0]!.header.valueOf(8)).toBe('005010');
    expect(sets[0]![1]).toEqual(['BIG', '20260201', 'INV-3', '20260115', 'PO-10003']);
  });

  it('streams the same text as it builds, honouring back-pressure', async () => {
    const mapping = await loadOutboundMapping(HOME, 'x12/810-out');
    const input = {
      profile: await profile('partner-a'),
      mapping,
      control: { isa13: 1, gs06: 1, st02: [1, 2, 3] },
      now: NOW,
    };
    const docs = [invoice(1), invoice(2), invoice(3)];
    const sink = new PassThrough({ highWaterMark: 64 });
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const result = await writeOutbound(input, docs, sink);
    sink.end();
    expect(Buffer.concat(chunks).toString()).toBe(buildOutbound(input, docs).text);
    expect(result.sets.map((s) => s.st02)).toEqual(['0001', '0002', '0003']);
  });

  it('errors name the document, the line, the field and the element', async () => {
    const mapping = await loadOutboundMapping(HOME, 'x12/810-out');
    const bad = invoice(1);
    bad.lines[1]!.uom = 'CASE';
    expect(() => buildTransactionBody(mapping, bad, 'invoice INV-1')).toThrow(
      'invoice INV-1, line 2, field uom: IT103: "CASE" is 4 characters; at most 2 fit',
    );
    const missing = invoice(1);
    missing.header.total_amount = null;
    expect(() => buildTransactionBody(mapping, missing, 'invoice INV-1')).toThrow(
      new X12FormatError('invoice INV-1: TDS01 (field total_amount) is required but empty'),
    );
    const delim = invoice(1);
    delim.header.bill_to_name = 'ACME*CORP';
    const profileA = await profile('partner-a');
    expect(() =>
      buildOutbound({ profile: profileA, mapping, control: { isa13: 1, gs06: 1, st02: [1] } }, [delim]),
    ).toThrow('N102: the value "ACME*CORP" contains the delimiter \'*\'');
  });
});

/** The shipped 856 mapping with only the given HL levels (as a partner's ship_notice.hierarchy picks). */
async function ship856(levels: string): Promise<OutboundMapping> {
  const m = await loadOutboundMapping(HOME, 'x12/856-out');
  return { ...m, hierarchy: m.hierarchy!.filter((l) => levels.includes(l.level)) };
}

describe('856 ship notices', () => {
  it('HL loops S → O → I with ids, parents, level codes and child flags; CTT01 counts HLs', async () => {
    const mapping = await ship856('SOI');
    const out = buildOutbound(
      {
        profile: await profile('partner-a'),
        mapping,
        control: { isa13: 20, gs06: 2001, st02: [1] },
        now: NOW,
      },
      [shipment],
    );
    const { x, sets } = parseStrict(out.text);
    expect(x.functionalGroups[0]!.header.valueOf(1)).toBe('SH');
    expect(sets[0]).toEqual([
      ['ST', '856', '0001'],
      ['BSN', '00', 'SHP-500', '20260201', '1430'],
      ['HL', '1', '', 'S', '1'],
      ['TD1', 'CTN25', '3', '', '', '', 'G', '120.5', 'LB'],
      ['TD5', 'B', '2', 'UPSN'],
      ['REF', 'BM', 'BOL-77'],
      ['DTM', '011', '20260201'],
      ['N1', 'ST', 'ACME DISTRIBUTION CENTER', '92', 'DC01'],
      ['HL', '2', '1', 'O', '1'],
      ['PRF', 'PO-10001'],
      ['HL', '3', '2', 'I', '0'],
      ['LIN', '1', 'BP', 'SKU-1001', 'VP', 'V-9001'],
      ['SN1', '', '10', 'EA'],
      ['PID', 'F', '', '', '', 'STEEL BOLT M8'],
      ['HL', '4', '2', 'I', '0'],
      ['LIN', '2', 'BP', 'SKU-1002'],
      ['SN1', '', '5.5', 'CA'],
      ['HL', '5', '1', 'O', '1'],
      ['PRF', 'PO-10002'],
      ['HL', '6', '5', 'I', '0'],
      ['LIN', '1', 'BP', 'SKU-2001'],
      ['SN1', '', '2', 'PL'],
      ['CTT', '6'],
      ['SE', '24', '0001'],
    ]);
  });

  it('S-O-P-I: one pack HL per carton under its order, MAN*GM with the SSCC-18, items under their pack', async () => {
    const body = '00614141000000001';
    const sscc = (n: number): string => {
      const b = body.slice(0, -1) + String(n);
      return b + String(gs1CheckDigit(b));
    };
    const packed: OutboundDocument = {
      header: { ...shipment.header, tracking_number: '1Z999AA10123456784', weight_uom: 'KG' },
      lines: [
        { ...shipment.lines[0]!, sscc: sscc(1) },
        { ...shipment.lines[1]!, sscc: sscc(2) },
        { ...shipment.lines[2]!, sscc: sscc(1) },
      ],
    };
    const out = buildOutbound(
      {
        profile: await profile('partner-a'),
        mapping: await ship856('SOPI'),
        control: { isa13: 22, gs06: 2003, st02: [1] },
        now: NOW,
      },
      [packed],
    );
    const set = parseStrict(out.text).sets[0]!;
    expect(set.filter((x) => x[0] === 'TD1' || x[0] === 'REF')).toEqual([
      ['TD1', 'CTN25', '3', '', '', '', 'G', '120.5', 'KG'],
      ['REF', 'BM', 'BOL-77'],
      ['REF', 'CN', '1Z999AA10123456784'],
    ]);
    const tree = checkHierarchy(set, ['S', 'O', 'P', 'I']);
    expect(
      tree.map((h) => [h.hl, ...h.segments.filter((x) => ['PRF', 'MAN', 'LIN'].includes(x[0]!))]),
    ).toEqual([
      ['S:1<'],
      ['O:2<1', ['PRF', 'PO-10001']],
      ['P:3<2', ['MAN', 'GM', sscc(1)]],
      ['I:4<3', ['LIN', '1', 'BP', 'SKU-1001', 'VP', 'V-9001']],
      ['I:5<3', ['LIN', '2', 'BP', 'SKU-1002']],
      ['O:6<1', ['PRF', 'PO-10002']],
      ['P:7<6', ['MAN', 'GM', sscc(2)]],
      ['I:8<7', ['LIN', '1', 'BP', 'SKU-2001']],
    ]);
    for (const h of tree.filter((x) => x.level === 'P')) {
      const code = h.segments[0]![2]!;
      expect(code).toMatch(/^\d{18}$/);
      expect(Number(code[17])).toBe(gs1CheckDigit(code.slice(0, 17)));
    }
  });

  it('reads back through our own splitter with no envelope problems', async () => {
    const mapping = await ship856('SOI');
    const out = buildOutbound(
      {
        profile: await profile('partner-b'),
        mapping,
        control: { isa13: 21, gs06: 2002, st02: [1, 2] },
        now: NOW,
      },
      [shipment, shipment],
    );
    const problems: string[] = [];
    let sets = 0;
    for await (const ev of splitX12([out.text], { file: 'out.edi' })) {
      if (ev.kind === 'transaction') {
        sets++;
        problems.push(...ev.set.problems.map((p) => p.message));
      }
      if (ev.kind === 'ge' || ev.kind === 'iea') problems.push(...ev.problems.map((p) => p.message));
    }
    expect([sets, problems]).toEqual([2, []]);
  });
});

describe('outbound mapping files', () => {
  it('reject an element that is not in its segment, with file and line', () => {
    const text = `transaction_set: '810'\nfunctional_id: IN\nheader:\n  - segment: BIG\n    elements:\n      REF02: invoice_number\n`;
    expect(() => parseYaml('mappings/x12/bad.yaml', text, outboundMappingSchema)).toThrow(
      'mappings/x12/bad.yaml, line 6, header.0.elements.REF02: REF02 is not an element of BIG',
    );
  });
});
