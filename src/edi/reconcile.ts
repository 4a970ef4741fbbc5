import { problem, X12Error, type X12Problem } from '../x12/errors.js';
import type { Queryable } from './control-numbers.js';
import { splitX12, type SplitOptions } from '../x12/splitter.js';
import { component, el, type Segment, type TransactionSet } from '../x12/types.js';

/**
 * Reading a partner's 997/999 about what we sent.
 *
 *   997/999 set ──readFunctionalAck──► { group: our GS01 + GS06, code A|E|P|R, sets: ST02 → A|R … }
 *                                          │
 *                                          └─ applyFunctionalAck ──► edi.apply_functional_ack(…)  (status of our
 *                                                                     outbound interchange, groups and sets)
 */

/** One acknowledged transaction set of ours (an AK2 loop). */
export interface AckedSet {
  /** AK201: our ST01. */
  id: string;
  /** AK202: our ST02. */
  controlNumber: string;
  /** AK501 / IK501: A, E, M, R, W, X. */
  code: string;
  accepted: boolean;
  /** AK502–AK506 / IK502–IK506. */
  errorCodes: string[];
  /** AK3/IK3 loops with their AK4/IK4s. */
  segmentErrors: {
    segmentId: string;
    position: number;
    loopId: string;
    code: string;
    elements: {
      position: number;
      component: number | null;
      reference: string;
      code: string;
      value: string;
    }[];
  }[];
}

/** One acknowledged group of ours (AK1 … AK9). */
export interface AckedGroup {
  /** AK101: our GS01. */
  functionalId: string;
  /** AK102: our GS06. */
  controlNumber: string;
  /** AK103 (005010). */
  version: string | null;
  /** AK901. */
  code: string;
  status: 'accepted' | 'partially_accepted' | 'rejected';
  /** AK902–AK904. */
  included: number;
  received: number;
  accepted: number;
  /** AK905–AK909. */
  errorCodes: string[];
  /** The AK2 loops; a 997 may leave them out when the whole group is accepted. */
  sets: AckedSet[];
}

/** A partner's 997/999, read. */
export interface FunctionalAck {
  type: '997' | '999';
  /** ISA13 of the interchange that carried the ack. */
  interchangeControlNumber: string;
  /** ST02 of the ack. */
  controlNumber: string;
  group: AckedGroup;
}

const int = (s: string): number => (/^\d+$/.test(s) ? Number(s) : 0);

/**
 * Reads one 997 or 999 transaction set (from {@link splitX12}). Throws an {@link X12Error} naming
 * the segment when the ack is malformed (no AK1, AK2 without AK5, no AK9).
 */
export function readFunctionalAck(set: TransactionSet): FunctionalAck {
  const file = set.group.interchange.file;
  const fail = (seg: Segment | null, text: string): never => {
    throw new X12Error(
      problem({
        code: 'ACK_MALFORMED',
        level: 'segment',
        file,
        segment: seg?.ordinal ?? set.segments[0]!.ordinal,
        segmentId: seg?.tag ?? 'ST',
        text,
        ack: { ak5: '5' },
      }),
    );
  };
  if (set.id !== '997' && set.id !== '999')
    fail(set.segments[0]!, `transaction set ${set.id} is not a 997 or 999`);
  const type = set.id as '997' | '999';
  const d = set.group.interchange.delimiters;
  let group: AckedGroup | null = null;
  let current: AckedSet | null = null;
  let sawAk9 = false;
  for (const seg of set.segments.slice(1, -1)) {
    switch (seg.tag) {
      case 'AK1':
        if (group) fail(seg, 'a second AK1; a 997/999 acknowledges one group');
        group = {
          functionalId: el(seg, 1),
          controlNumber: el(seg, 2),
          version: el(seg, 3) || null,
          code: '',
          status: 'rejected',
          included: 0,
          received: 0,
          accepted: 0,
          errorCodes: [],
          sets: [],
        };
        break;
      case 'AK2':
        if (!group) fail(seg, 'AK2 before AK1');
        if (current) fail(seg, `AK2 for ${current!.id} ${current!.controlNumber} has no AK5/IK5`);
        current = {
          id: el(seg, 1),
          controlNumber: el(seg, 2),
          code: '',
          accepted: false,
          errorCodes: [],
          segmentErrors: [],
        };
        break;
      case 'AK3':
      case 'IK3':
        if (!current) fail(seg, `${seg.tag} outside an AK2 loop`);
        current!.segmentErrors.push({
          segmentId: el(seg, 1),
          position: int(el(seg, 2)),
          loopId: el(seg, 3),
          code: el(seg, 4),
          elements: [],
        });
        break;
      case 'AK4':
      case 'IK4': {
        const last = current?.segmentErrors[current.segmentErrors.length - 1];
        if (!last) fail(seg, `${seg.tag} without a preceding AK3/IK3`);
        const comp = component(seg, 1, 2, d);
        last!.elements.push({
          position: int(component(seg, 1, 1, d)),
          component: comp === '' ? null : int(comp),
          reference: el(seg, 2),
          code: el(seg, 3),
          value: el(seg, 4),
        });
        break;
      }
      case 'AK5':
      case 'IK5':
        if (!current) fail(seg, `${seg.tag} without an AK2`);
        current!.code = el(seg, 1);
        current!.accepted = current!.code === 'A' || current!.code === 'E';
        current!.errorCodes = seg.elements.slice(2).filter((c) => c !== '');
        group!.sets.push(current!);
        current = null;
        break;
      case 'AK9':
        if (!group) fail(seg, 'AK9 before AK1');
        if (current) fail(seg, `AK2 for ${current!.id} ${current!.controlNumber} has no AK5/IK5`);
        group!.code = el(seg, 1);
        group!.status = ['A', 'E'].includes(group!.code)
          ? 'accepted'
          : group!.code === 'P'
            ? 'partially_accepted'
            : 'rejected';
        group!.included = int(el(seg, 2));
        group!.received = int(el(seg, 3));
        group!.accepted = int(el(seg, 4));
        group!.errorCodes = seg.elements.slice(5).filter((c) => c !== '');
        sawAk9 = true;
        break;
      default:
        // CTX (999) and other context segments carry nothing we reconcile on.
        break;
    }
  }
  if (!group) fail(null, `${type} ${set.controlNumber} has no AK1`);
  if (!sawAk9) fail(set.segments[set.segments.length - 1]!, `${type} ${set.controlNumber} has no AK9`);
  return {
    type,
    interchangeControlNumber: set.group.interchange.controlNumber,
    controlNumber: set.controlNumber,
    group: group!,
  };
}

/**
 * Reads every 997/999 in a file. Envelope problems of the ack file itself are returned (a
 * broken ack is reported, not applied); transaction sets other than 997/999 are reported too.
 */
export async function readFunctionalAcks(
  input: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>,
  options: SplitOptions = {},
): Promise<{
  acks: FunctionalAck[];
  problems: X12Problem[];
  sender: { qualifier: string; id: string } | null;
}> {
  const acks: FunctionalAck[] = [];
  const problems: X12Problem[] = [];
  let sender: { qualifier: string; id: string } | null = null;
  for await (const ev of splitX12(input, options)) {
    if (ev.kind === 'isa')
      sender ??= { qualifier: ev.interchange.senderQualifier, id: ev.interchange.senderId };
    else if (ev.kind === 'transaction') {
      if (ev.set.problems.length > 0) {
        problems.push(...ev.set.problems);
        continue;
      }
      try {
        acks.push(readFunctionalAck(ev.set));
      } catch (err) {
        if (err instanceof X12Error) problems.push(err.problem);
        else throw err;
      }
    } else if (ev.kind === 'ge' || ev.kind === 'iea') {
      problems.push(...ev.problems);
    }
  }
  return { acks, problems, sender };
}

/**
 * Applies a partner's ack to our outbound ledger with `edi.apply_functional_ack`. Returns the
 * interchange id it updated, or null when no outbound group of ours has that GS01/GS06.
 */
export async function applyFunctionalAck(
  db: Queryable,
  partner: string,
  ack: FunctionalAck,
): Promise<number | null> {
  if (!/^\d{1,9}$/.test(ack.group.controlNumber)) return null;
  const sets: Record<string, string> = {};
  for (const s of ack.group.sets) sets[s.controlNumber] = s.code;
  const { rows } = await db.query<{ id: string | null }>(
    'SELECT edi.apply_functional_ack($1, $2, $3, $4, $5, $6) AS id',
    [
      partner,
      ack.group.functionalId,
      ack.group.controlNumber,
      ack.group.code,
      JSON.stringify(sets),
      ack.interchangeControlNumber,
    ],
  );
  const id = rows[0]?.id;
  return id === null || id === undefined ? null : Number(id);
}

/** TA105 interchange note codes (I18), as a partner's TA1 gives them. */
export const TA1_NOTES: Readonly<Record<string, string>> = {
  '000': 'no error',
  '001': 'the interchange control number in the header and trailer do not match',
  '002': 'the standard in the control standards identifier is not supported',
  '003': 'this version of the controls is not supported',
  '004': 'the segment terminator is invalid',
  '005': 'invalid interchange id qualifier for the sender',
  '006': 'invalid interchange sender id',
  '007': 'invalid interchange id qualifier for the receiver',
  '008': 'invalid interchange receiver id',
  '009': 'unknown interchange receiver id',
  '010': 'invalid authorization information qualifier value',
  '011': 'invalid authorization information value',
  '012': 'invalid security information qualifier value',
  '013': 'invalid security information value',
  '014': 'invalid interchange date value',
  '015': 'invalid interchange time value',
  '016': 'invalid interchange standards identifier value',
  '017': 'invalid interchange version id value',
  '018': 'invalid interchange control number value',
  '019': 'invalid acknowledgment requested value',
  '020': 'invalid test indicator value',
  '021': 'invalid number of included groups value',
  '022': 'invalid control structure',
  '023': 'improper (premature) end of file',
  '024': 'invalid interchange content',
  '025': 'duplicate interchange control number',
  '026': 'invalid data element separator',
  '027': 'invalid component element separator',
  '028': 'invalid delivery date in deferred delivery request',
  '029': 'invalid delivery time in deferred delivery request',
  '030': 'invalid delivery time code in deferred delivery request',
  '031': 'invalid grade of service code',
};

/** What a partner's TA1 did to our outbound interchange. */
export interface AppliedTa1 {
  /** Our interchange it acknowledges, or null when we never sent that ISA13 to this partner. */
  interchangeId: number | null;
  /** Its status after the TA1: `rejected_by_partner` on TA104 R, else unchanged. */
  status: string | null;
}

/**
 * Reconciles a partner's TA1 with our outbound interchange of that ISA13: records TA104/TA105 on
 * it; a TA1 R marks it (and its groups still waiting) `rejected_by_partner`, with the note code's
 * meaning as its message. An accepted TA1 leaves the 997/999 still expected.
 */
export async function applyTa1(
  db: Queryable,
  partner: string,
  ta1: { controlNumber: string; code: 'A' | 'E' | 'R'; note: string },
): Promise<AppliedTa1> {
  const meaning = TA1_NOTES[ta1.note] ?? `note code ${ta1.note}`;
  const { rows } = await db.query<{ id: string; status: string }>(
    `UPDATE edi.interchanges
        SET ta1_code = $3, ta1_note = $4, ta1_at = now(), updated_at = now(),
            status = CASE WHEN $3 = 'R' AND status = 'sent' THEN 'rejected_by_partner' ELSE status END,
            message = CASE WHEN $3 = 'R' THEN $5 ELSE message END
      WHERE id = (SELECT id FROM edi.interchanges
                   WHERE partner = $1 AND direction = 'out' AND isa13 = $2
                   ORDER BY id DESC LIMIT 1)
      RETURNING id, status`,
    [partner, Number(ta1.controlNumber), ta1.code, ta1.note, `TA1 R ${ta1.note}: ${meaning}`],
  );
  const row = rows[0];
  if (!row) return { interchangeId: null, status: null };
  if (ta1.code === 'R') {
    await db.query(
      `UPDATE edi.groups SET status = 'rejected_by_partner', ack_code = 'R', acknowledged_at = now()
        WHERE interchange_id = $1 AND status = 'sent'`,
      [row.id],
    );
    await db.query(
      `UPDATE edi.transaction_sets SET status = 'rejected_by_partner'
        WHERE status = 'sent' AND group_id IN (SELECT id FROM edi.groups WHERE interchange_id = $1)`,
      [row.id],
    );
  }
  return { interchangeId: Number(row.id), status: row.status };
}
