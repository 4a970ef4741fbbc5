import { describe, expect, it } from 'vitest';
import { parseYaml } from '../../src/config/yaml.js';
import { X12Error } from '../../src/x12/errors.js';
import { findPartner, outputFormat, x12ProfileSchema } from '../../src/x12/partner.js';
import { fixtureEvents, profile } from '../helpers/x12.js';

const BASE = `ours: { isa_qualifier: ZZ, isa_id: ERPCO, gs_id: ERPCO }
theirs: { isa_qualifier: ZZ, isa_id: ACME, gs_id: ACME }
`;

describe('x12ProfileSchema', () => {
  it('reads the fixture profiles with their defaults', async () => {
    const a = await profile('partner-a');
    expect(a).toMatchObject({
      version: '004010',
      usage: 'production',
      ack: '997',
      ack_requested: false,
      ack_overdue_hours: 24,
    });
    expect(outputFormat(a)).toEqual({
      delimiters: { element: '*', component: '>', segment: '~', repetition: null },
      lineBreak: '\n',
    });
    const b = await profile('partner-b');
    expect(outputFormat(b)).toEqual({
      delimiters: { element: '|', component: '^', segment: '!', repetition: '{' },
      lineBreak: '',
    });
    const minimal = parseYaml('p.yaml', `${BASE}version: '005010'\n`, x12ProfileSchema);
    expect(minimal.delimiters).toEqual({
      element: '*',
      component: '>',
      segment: '~',
      repetition: '^',
      line_break: 'none',
    });
  });

  it('refuses delimiters that clash, letters, a 999 on 004010 and sets without mappings', () => {
    const bad = (extra: string): string => {
      try {
        parseYaml('p.yaml', BASE + extra, x12ProfileSchema);
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected a failure');
    };
    expect(bad(`version: '004010'\ndelimiters: { element: '*', component: '*' }\n`)).toContain(
      "delimiters: the element separator and the component separator are both '*'; they must differ",
    );
    expect(bad(`version: '004010'\ndelimiters: { segment: 'X' }\n`)).toContain(
      "the segment terminator 'X' must not be a letter or digit",
    );
    expect(bad(`version: '004010'\nack: '999'\n`)).toContain('ack: 999 acknowledgments need version 005010');
    expect(bad(`version: '004010'\ninbound: ['850']\n`)).toContain(
      'mappings: transaction set 850 needs a mapping',
    );
    expect(bad(`version: '004010'\nusage: staging\n`)).toContain('usage');
    expect(bad(`version: '004010'\nextra: 1\n`)).toContain("unknown key 'extra'");
    expect(bad(`version: '004010'\nship_notice: { hierarchy: S-O-T-I }\n`)).toContain(
      'ship_notice.hierarchy',
    );
    expect(bad(`version: '004010'\nship_notice: { require: [pallet_count] }\n`)).toContain(
      'ship_notice.require',
    );
    expect(bad(`version: '004010'\nship_notice: { hierarchy: S-O-I, require: [sscc] }\n`)).toContain(
      'ship_notice.require: sscc is sent on the pack level (MAN*GM): require it with hierarchy S-O-P-I',
    );
  });

  it('ship_notice: S-O-I and nothing required unless the partner says otherwise', () => {
    const p = (extra = ''): unknown =>
      parseYaml('p.yaml', `${BASE}version: '004010'\n${extra}`, x12ProfileSchema).ship_notice;
    expect(p()).toEqual({ hierarchy: 'S-O-I', require: [] });
    expect(p('ship_notice: { hierarchy: S-O-P-I, require: [bill_of_lading, sscc] }\n')).toEqual({
      hierarchy: 'S-O-P-I',
      require: ['bill_of_lading', 'sscc'],
    });
  });
});

describe('findPartner', () => {
  it('finds the partner of an inbound ISA, and names an unknown sender', async () => {
    const profiles = { acme: await profile('partner-a'), globex: await profile('partner-b') };
    const b = (await fixtureEvents('partner-b-850.edi'))[0]!;
    expect(b.kind === 'isa' && findPartner(profiles, b.interchange).name).toBe('globex');
    const unknown = (await fixtureEvents('unknown-partner.edi'))[0]!;
    if (unknown.kind !== 'isa') throw new Error('no isa');
    let err: unknown;
    try {
      findPartner(profiles, unknown.interchange);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(X12Error);
    expect((err as X12Error).message).toBe(
      'unknown-partner.edi, segment 1 (ISA06): no trading partner has ISA05/ISA06 ZZ:STRANGER; known senders: acme (ZZ:ACMEBUY), globex (01:987654321)',
    );
    expect((err as X12Error).problem.ack.ta1).toBe('006');
  });
});
