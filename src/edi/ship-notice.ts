import { UserError } from '../errors.js';
import type { Partner } from '../partners/profile.js';
import type { FieldValue, OutboundDocument, OutboundMapping } from '../x12/outbound.js';
import type { ShipNoticeRequirement } from '../x12/partner.js';

/**
 * A partner's 856 rules (`x12.ship_notice` of its profile) applied to the outbound mapping and to
 * each shipment before anything is numbered or sent:
 *
 *   mappings/x12/856-out.yaml  levels S, O, P, I ──hierarchy S-O-I────► S, O, I
 *                                                 ──hierarchy S-O-P-I──► S, O, P, I
 *   shipment ──require [bill_of_lading, carrier, …]──► the first thing missing, named with its column
 */

/** The mapping with only the partner's levels; a {@link UserError} names a level the mapping lacks. */
export function shipNoticeMapping(partner: Partner, mapping: OutboundMapping): OutboundMapping {
  if (!mapping.hierarchy) return mapping;
  const want = partner.x12.ship_notice.hierarchy.split('-');
  const levels = want.map((code) => mapping.hierarchy!.find((l) => l.level === code));
  const missing = want.filter((_, i) => levels[i] === undefined);
  if (missing.length > 0) {
    throw new UserError(
      `${partner.file}, x12.ship_notice.hierarchy ${partner.x12.ship_notice.hierarchy}: mapping ${mapping.name} has no HL level ${missing.join(', ')} (it has ${mapping.hierarchy.map((l) => l.level).join(', ')})`,
    );
  }
  return { ...mapping, hierarchy: levels.map((l) => l!) };
}

/** For each requirement: the document field that carries it, the column it comes from, the segment. */
const REQUIRED: Record<Exclude<ShipNoticeRequirement, 'sscc'>, [string, string, string]> = {
  bill_of_lading: ['bill_of_lading', 'sales.shipments.bill_of_lading', 'REF*BM'],
  carrier: ['carrier_scac', 'sales.shipments.carrier', 'TD5'],
  tracking_number: ['tracking_number', 'sales.shipments.tracking_no', 'REF*CN'],
  weight: ['gross_weight', "sales.shipments.gross_weight or its cartons' weights", 'TD1'],
  packages: ['package_count', 'sales.shipments.package_count or its cartons', 'TD1'],
};

const empty = (v: FieldValue): boolean => v === null || v === undefined || v === '';

/**
 * What the partner requires that shipment `label` lacks, as one message naming the shipment, the
 * field and where it comes from; null when it has everything. S-O-P-I needs every line packed.
 */
export function shipNoticeProblem(partner: Partner, doc: OutboundDocument, label: string): string | null {
  const rules = partner.x12.ship_notice;
  const why = `partner ${partner.name} requires it (x12.ship_notice)`;
  for (const need of rules.require) {
    if (need === 'sscc') continue;
    const [field, column, segment] = REQUIRED[need];
    if (empty(doc.header[field]))
      return `${label}: ${need} is missing (${column}) for the 856 ${segment}; ${why}`;
  }
  // Requiring sscc needs S-O-P-I (the profile schema says so), where every line must be in a carton.
  if (rules.hierarchy === 'S-O-P-I') {
    const i = doc.lines.findIndex((l) => empty(l.sscc));
    if (i !== -1) {
      return `${label}, line ${i + 1} (${String(doc.lines[i]!.sku ?? doc.lines[i]!.buyer_part)}): sscc is missing — the line is in no carton (sales.shipment_lines.package_no) for the 856 MAN*GM; partner ${partner.name}'s hierarchy is S-O-P-I`;
    }
  }
  return null;
}
