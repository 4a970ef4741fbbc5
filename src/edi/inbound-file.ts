import { createReadStream } from 'node:fs';
import type pg from 'pg';
import { CancelledError, describeError, UserError } from '../errors.js';
import type { Partner } from '../partners.js';
import type { AppContext } from '../pipeline/run.js';
import { buildAck, judgeGroup, type GroupVerdict } from '../x12/ack.js';
import { problem, X12Error, type X12Problem } from '../x12/errors.js';
import { receiveInterchange } from '../x12/interchanges.js';
import { describeField, loadInboundMapping, mapTransaction, type InboundMapping } from '../x12/mapping.js';
import { findPartner } from '../x12/partner.js';
import { applyFunctionalAck, readFunctionalAck } from '../x12/reconcile.js';
import { splitX12 } from '../x12/splitter.js';
import type { GeEvent, InterchangeHeader, TransactionSet } from '../x12/types.js';
import { checkPurchaseOrder, insertPurchaseOrder } from './orders.js';
import { ControlNumberSource } from './transport.js';

/**
 * One inbound file, in one transaction (see src/edi/inbound.ts for the whole run):
 *
 *   BEGIN ─ per ISA: findPartner ─ receive_interchange (duplicate?) ─ SAVEPOINT
 *             per GS: SAVEPOINT ─ per 850: map ─ check (items, PO once) ─ insert order + lines
 *                                per 997/999: applyFunctionalAck (our outbound interchanges)
 *             GE with problems: ROLLBACK TO the group;  IEA with problems: ROLLBACK TO the interchange
 *             record groups + sets as judged (judgeGroup)
 *   ack: one 997/999 interchange per inbound interchange, control numbers allocated, ISA13 recorded
 *   COMMIT (ROLLBACK in a dry run)
 *
 * The savepoints keep the database equal to the ack: exactly the sets it accepts are loaded.
 */

/** What happened to one inbound file. */
export type InboundFileStatus =
  /** Every transaction set accepted and loaded (or every ack applied): archived. */
  | 'loaded'
  /** Every interchange was received before: acknowledged again, nothing loaded, archived. */
  | 'duplicate'
  /** Some or all sets rejected (the ack says which): accepted ones loaded, file in the error dir. */
  | 'rejected'
  /** Unreadable (not X12, unknown partner, a cap exceeded…): nothing loaded, file in the error dir. */
  | 'failed'
  /** Not an acknowledgment file (`acks` runs only): left in the inbox for the inbound run. */
  | 'skipped';

/** An acknowledgment of ours that a partner's 997/999 reconciled. */
export interface AppliedAck {
  functionalId: string;
  gs06: string;
  code: string;
  /** Our outbound interchange it updated, or null when we never sent that group. */
  interchangeId: number | null;
}

/** The outcome of one inbound file. */
export interface InboundFileResult {
  file: string;
  size: number;
  sha256: string;
  status: InboundFileStatus;
  interchanges: { isa13: string; status: 'loaded' | 'rejected' | 'duplicate'; usage: string }[];
  setsAccepted: number;
  setsRejected: number;
  /** Sales orders created (order numbers, the first 100). */
  orders: string[];
  ordersLoaded: number;
  acksApplied: AppliedAck[];
  /** Our 997/999 for the file (null when it has no group to acknowledge). */
  ack: { type: '997' | '999'; name: string; text: string } | null;
  /** Problem messages, the first 200. */
  problems: string[];
  problemCount: number;
  /** Why the file failed (status `failed`). */
  error: string | null;
  /** Remote path of the uploaded ack. */
  ackPath: string | null;
  /** Where the file went: archive or error dir. */
  movedTo: string | null;
}

/** Options of an inbound run. */
export interface InboundOptions {
  /** Read, check and map everything in a transaction that is rolled back; upload and move nothing. */
  dryRun: boolean;
  signal?: AbortSignal;
  /** Reconcile partners' 997/999s only; leave files holding anything else in the inbox. */
  acksOnly?: boolean;
  /** Where `_env` settings of the partner are read. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Called with the number of transaction sets read so far. */
  onSets?: (sets: number) => void;
  /** ISA09/GS04 of the acks. @defaultValue now */
  now?: Date;
  /** The run, whose temporary directory (ERP_DATA_DIR/tmp/<run>) holds the downloads. */
  runId?: number | null;
}

/** What an inbound run needs about the partner, prepared once. */
export interface InboundContext {
  app: AppContext;
  partner: Partner;
  /** The 850 mapping, or null when the partner sends no 850. */
  mapping: InboundMapping | null;
  /** Control numbers of the acks, shared by the run's files (so a dry run shows the numbers each would get). */
  control: ControlNumberSource;
}

const MAX_PROBLEMS = 200;
const MAX_ORDERS = 100;

/** Thrown inside the file's transaction in an `acks` run when the file holds more than acks. */
class NotAnAckFile extends Error {}

/** Loads the 850 mapping and checks the partner's customer; a problem here fails the run, not a file. */
export async function prepareInbound(
  app: AppContext,
  partner: Partner,
  opts: { dryRun: boolean },
): Promise<InboundContext> {
  const p = partner.x12;
  const name = p.inbound.includes('850') ? p.mappings['850'] : undefined;
  const mapping = name !== undefined ? await loadInboundMapping(app.home, name) : null;
  const { rows } = await app.pool.query<{ x12_qualifier: string | null; x12_id: string | null }>(
    'SELECT x12_qualifier, x12_id FROM sales.customers WHERE customer_no = $1',
    [partner.customer_no],
  );
  const c = rows[0];
  if (!c) {
    throw new UserError(
      `${partner.file}, customer_no: customer ${partner.customer_no} is not in sales.customers; import the customers first (erp run customers)`,
    );
  }
  if (c.x12_id !== null && (c.x12_id !== p.theirs.isa_id || c.x12_qualifier !== p.theirs.isa_qualifier)) {
    throw new UserError(
      `${partner.file}: customer ${partner.customer_no} trades as ${c.x12_qualifier}:${c.x12_id} in sales.customers, but x12.theirs is ${p.theirs.isa_qualifier}:${p.theirs.isa_id}; make them agree`,
    );
  }
  return { app, partner, mapping, control: new ControlNumberSource(app.pool, partner.name, opts.dryRun) };
}

interface GroupState {
  ge: GeEvent | null;
  fa: boolean;
  /** Per ST02: the PO number and, when loaded, the order number. */
  docs: Map<string, { po: string | null; orderNo: string | null }>;
}

interface InterchangeState {
  header: InterchangeHeader;
  id: number;
  duplicate: boolean;
  /** Sets of this interchange may be loaded (not a duplicate, usage accepted). */
  loadable: boolean;
  /** Problems of ours about the interchange (usage not accepted), on top of the splitter's. */
  extra: X12Problem[];
  /** Every problem that rejects the whole interchange; known at its IEA. */
  problems: X12Problem[];
  groups: GroupState[];
  closed: boolean;
}

const usageName = (u: string): string => (u === 'P' ? 'production' : u === 'T' ? 'test' : 'information');

/** The mapping's product id fields as messages quote them. */
function productFieldsOf(mapping: InboundMapping): string {
  const fields = (mapping.lines?.fields ?? []).filter((f) => f.kind === 'product');
  return fields.map((f) => `${f.name} (${describeField(f)})`).join(' and ') || 'no product id field';
}

/** A database error about the data (class 22 data exception, 23 integrity): the set is rejected, not the file. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23)/.test(code);
}

/**
 * Processes one downloaded file in one transaction (rolled back in a dry run) and builds its
 * ack; uploads and moves nothing. Problems with the file's content never throw: they are in the
 * result (`failed` when unreadable). Infrastructure errors and cancellation throw, leaving the
 * database untouched.
 */
export async function processInboundFile(
  ctx: InboundContext,
  input: { path: string; name: string; size: number; sha256: string },
  opts: InboundOptions,
): Promise<InboundFileResult> {
  const { app, partner } = ctx;
  const result: InboundFileResult = {
    file: input.name,
    size: input.size,
    sha256: input.sha256,
    status: 'loaded',
    interchanges: [],
    setsAccepted: 0,
    setsRejected: 0,
    orders: [],
    ordersLoaded: 0,
    acksApplied: [],
    ack: null,
    problems: [],
    problemCount: 0,
    error: null,
    ackPath: null,
    movedTo: null,
  };
  const note = (message: string): void => {
    result.problemCount++;
    if (result.problems.length < MAX_PROBLEMS) result.problems.push(message);
  };
  const interchanges: InterchangeState[] = [];
  let ix: InterchangeState | null = null;
  let group: GroupState | null = null;
  let sets = 0;
  const client = await app.pool.connect();
  let broken = false;
  const q = (sql: string): Promise<pg.QueryResult> => client.query(sql);

  const onSet = async (set: TransactionSet): Promise<void> => {
    const x = ix!;
    const g = group!;
    if (g.fa) {
      if (set.problems.length > 0) return;
      if (set.id !== '997' && set.id !== '999') {
        set.problems.push(
          problem({
            code: 'SET_NOT_SUPPORTED',
            level: 'transaction',
            file: input.name,
            segment: set.segments[0]!.ordinal,
            segmentId: 'ST',
            text: `transaction set ${set.id} in a functional group FA; expected 997 or 999`,
            ack: { ak5: '6' },
          }),
        );
        return;
      }
      if (!x.loadable) return;
      try {
        const ack = readFunctionalAck(set);
        const interchangeId = await applyFunctionalAck(client, partner.name, ack);
        result.acksApplied.push({
          functionalId: ack.group.functionalId,
          gs06: ack.group.controlNumber,
          code: ack.group.code,
          interchangeId,
        });
        if (interchangeId === null) {
          note(
            `${input.name}, ${set.id} ${set.controlNumber}: acknowledges our group ${ack.group.functionalId} ${ack.group.controlNumber}, which we never sent to ${partner.name}; ignored`,
          );
        }
      } catch (err) {
        if (!(err instanceof X12Error)) throw err;
        set.problems.push(err.problem);
      }
      return;
    }
    const doc = { po: null as string | null, orderNo: null as string | null };
    g.docs.set(set.controlNumber, doc);
    const mapping = ctx.mapping;
    if (set.id !== '850' || mapping === null || !partner.x12.inbound.includes(set.id)) {
      set.problems.push(
        problem({
          code: 'SET_NOT_SUPPORTED',
          level: 'transaction',
          file: input.name,
          segment: set.segments[0]!.ordinal,
          segmentId: 'ST',
          positionInSet: 1,
          element: 1,
          value: set.id,
          text: `transaction set ${set.id} is not loaded from ${partner.name}; ${partner.file} lists inbound ${partner.x12.inbound.join(', ') || '(none)'} and erp loads 850 purchase orders`,
          ack: { ak5: '1' },
        }),
      );
      return;
    }
    // A set the envelope already rejects is not mapped: its codes say why.
    if (set.problems.length > 0) return;
    const mapped = mapTransaction(mapping, set);
    doc.po = mapped.header.po_number ?? null;
    set.problems.push(...mapped.problems);
    if (set.problems.length > 0) return;
    const checked = await checkPurchaseOrder(client, partner.customer_no, set, mapped, {
      // A re-delivered interchange already loaded its POs; it is judged as it was the first time.
      checkDuplicatePo: x.loadable,
      productFields: productFieldsOf(mapping),
    });
    set.problems.push(...checked.problems);
    if (set.problems.length > 0 || !x.loadable) return;
    await q('SAVEPOINT edi_set');
    try {
      doc.orderNo = await insertPurchaseOrder(
        client,
        { partner: partner.name, customerNo: partner.customer_no, interchangeId: x.id, fileName: input.name },
        set,
        mapped,
        checked.lines,
      );
      await q('RELEASE SAVEPOINT edi_set');
    } catch (err) {
      if (!isDataError(err)) throw err;
      await q('ROLLBACK TO SAVEPOINT edi_set');
      await q('RELEASE SAVEPOINT edi_set');
      set.problems.push(
        problem({
          code: 'STORE_FAILED',
          level: 'transaction',
          file: input.name,
          segment: set.segments[0]!.ordinal,
          segmentId: 'ST',
          text: `transaction set 850 ${set.controlNumber} (PO ${doc.po ?? '?'}) could not be stored: ${describeError(err)}`,
          ack: { ak5: '5' },
        }),
      );
    }
  };

  /** At IEA: roll back what the interchange's problems reject, record groups and sets as judged. */
  const closeInterchange = async (problems: X12Problem[]): Promise<void> => {
    const x = ix!;
    x.problems = [...problems, ...x.extra];
    if (x.problems.length > 0) await q('ROLLBACK TO SAVEPOINT edi_interchange');
    await q('RELEASE SAVEPOINT edi_interchange');
    for (const p of x.problems) note(p.message);
    let accepted = 0;
    let received = 0;
    let setCount = 0;
    let fa = 0;
    for (const g of x.groups) {
      const verdict: GroupVerdict = judgeGroup(g.ge!, x.problems);
      for (const p of g.ge!.problems) note(p.message);
      for (const sv of verdict.sets) for (const p of sv.set.problems) note(p.message);
      setCount += verdict.received;
      if (g.fa) {
        fa += verdict.accepted;
      } else {
        accepted += verdict.accepted;
        received += verdict.received;
        if (!x.duplicate) {
          result.setsAccepted += verdict.accepted;
          result.setsRejected += verdict.received - verdict.accepted;
        }
        if (x.loadable) {
          for (const sv of verdict.sets) {
            const orderNo = sv.accepted ? g.docs.get(sv.set.controlNumber)?.orderNo : null;
            if (!orderNo) continue;
            result.ordersLoaded++;
            if (result.orders.length < MAX_ORDERS) result.orders.push(orderNo);
          }
        }
      }
      if (!x.duplicate) await recordGroup(client, partner.name, x.id, g, verdict);
    }
    const status = x.duplicate ? 'duplicate' : accepted > 0 || fa > 0 ? 'loaded' : 'rejected';
    const message = x.duplicate
      ? undefined
      : x.problems.length > 0
        ? x.problems[0]!.message
        : received > accepted
          ? `${received - accepted} of ${received} transaction sets rejected`
          : null;
    await client.query(
      `UPDATE edi.interchanges SET status = $2, group_count = $3, set_count = $4,
              message = CASE WHEN $5::boolean THEN message ELSE $6 END, updated_at = now()
        WHERE id = $1`,
      [x.id, status, x.groups.length, setCount, message === undefined, message ?? null],
    );
    result.interchanges.push({ isa13: x.header.controlNumber, status, usage: x.header.usage });
    x.closed = true;
    ix = null;
  };

  try {
    await q('BEGIN');
    try {
      const caps = partner.limits;
      for await (const ev of splitX12(createReadStream(input.path), {
        file: input.name,
        maxFileBytes: caps.max_file_bytes,
        maxSegmentsPerSet: caps.max_segments_per_set,
        maxElementLength: caps.max_element_length,
      })) {
        if (opts.signal?.aborted) throw new CancelledError();
        switch (ev.kind) {
          case 'isa': {
            const h = ev.interchange;
            // Throws UNKNOWN_PARTNER: a file from anyone else, or not addressed to us, is not read.
            findPartner({ [partner.name]: partner.x12 }, h);
            const usageOk = (partner.accept_usage as string[]).includes(usageName(h.usage));
            const receipt = await receiveInterchange(client, {
              partner: partner.name,
              isa13: h.controlNumber,
              fileName: input.name,
              sha256: input.sha256,
              usage: h.usage,
              groupCount: 0,
              setCount: 0,
            });
            const extra: X12Problem[] = usageOk
              ? []
              : [
                  problem({
                    code: 'USAGE_NOT_ACCEPTED',
                    level: 'interchange',
                    file: input.name,
                    segment: h.segment.ordinal,
                    segmentId: 'ISA',
                    element: 15,
                    value: h.usage,
                    text: `ISA15 is "${h.usage}" (${usageName(h.usage)}), but ${partner.file} accepts ${partner.accept_usage.join(' and ')} interchanges only (accept_usage)`,
                    ack: { ta1: '020' },
                  }),
                ];
            ix = {
              header: h,
              id: receipt.id,
              duplicate: receipt.duplicate,
              loadable: !receipt.duplicate && usageOk,
              extra,
              problems: [],
              groups: [],
              closed: false,
            };
            interchanges.push(ix);
            await q('SAVEPOINT edi_interchange');
            break;
          }
          case 'gs': {
            const fa = ev.group.functionalId === 'FA';
            if (opts.acksOnly && !fa) throw new NotAnAckFile();
            group = { ge: null, fa, docs: new Map() };
            ix!.groups.push(group);
            await q('SAVEPOINT edi_group');
            break;
          }
          case 'transaction':
            await onSet(ev.set);
            opts.onSets?.(++sets);
            break;
          case 'ge':
            group!.ge = ev;
            if (ev.problems.length > 0) await q('ROLLBACK TO SAVEPOINT edi_group');
            await q('RELEASE SAVEPOINT edi_group');
            group = null;
            break;
          case 'iea':
            await closeInterchange(ev.problems);
            break;
        }
      }
    } catch (err) {
      if (err instanceof NotAnAckFile) {
        await q('ROLLBACK');
        result.status = 'skipped';
        return result;
      }
      if (!(err instanceof X12Error)) throw err;
      // Unreadable: nothing of the file is loaded. Interchanges read so far are acknowledged as rejected.
      await q('ROLLBACK');
      result.status = 'failed';
      result.error = err.message;
      result.interchanges = [];
      result.setsAccepted = 0;
      result.setsRejected = 0;
      result.orders = [];
      result.ordersLoaded = 0;
      result.acksApplied = [];
      note(err.message);
      result.ack = await buildAcks(ctx, interchanges, opts, [err.problem]);
      return result;
    }
    result.ack = await buildAcks(ctx, interchanges, opts, [], client);
    await q(opts.dryRun ? 'ROLLBACK' : 'COMMIT');
  } catch (err) {
    await q('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.release(broken);
  }
  result.status =
    result.problemCount > 0 || result.setsRejected > 0
      ? 'rejected'
      : result.interchanges.length > 0 && result.interchanges.every((i) => i.status === 'duplicate')
        ? 'duplicate'
        : 'loaded';
  return result;
}

/** Records an inbound group and its sets as the ack judges them. */
async function recordGroup(
  client: pg.ClientBase,
  partner: string,
  interchangeId: number,
  g: GroupState,
  verdict: GroupVerdict,
): Promise<void> {
  const h = g.ge!.group;
  // A group whose GS06 is unusable or repeated cannot be keyed; its problems are on the interchange.
  if (!/^\d{1,9}$/.test(h.controlNumber)) return;
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO edi.groups (interchange_id, partner, direction, functional_id, gs06, version, set_count, status, ack_code)
     VALUES ($1, $2, 'in', $3, $4, $5, $6, $7, $8)
     ON CONFLICT (interchange_id, gs06) DO NOTHING RETURNING id`,
    [
      interchangeId,
      partner,
      h.functionalId,
      Number(h.controlNumber),
      h.version,
      verdict.received,
      verdict.accepted > 0 ? 'loaded' : 'rejected',
      g.fa ? null : verdict.code,
    ],
  );
  if (rows.length === 0) return;
  await client.query(
    `INSERT INTO edi.transaction_sets (group_id, st01, st02, document_key, status, ack_codes)
     SELECT $1, s.st01, s.st02, s.key, s.status, string_to_array(s.codes, ',')
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS s (st01, st02, key, status, codes)
     ON CONFLICT (group_id, st02) DO NOTHING`,
    [
      rows[0]!.id,
      verdict.sets.map((s) => s.set.id),
      verdict.sets.map((s) => s.set.controlNumber),
      verdict.sets.map((s) => g.docs.get(s.set.controlNumber)?.po ?? null),
      verdict.sets.map((s) => (s.accepted ? 'loaded' : 'rejected')),
      verdict.sets.map((s) => s.codes.join(',')),
    ],
  );
}

/**
 * One ack file for the whole inbound file: an interchange per inbound interchange that has
 * groups other than FA. `forced` problems (a fatal error) reject every group. With `client`, the
 * ack's ISA13 is recorded on each inbound interchange.
 */
async function buildAcks(
  ctx: InboundContext,
  interchanges: readonly InterchangeState[],
  opts: InboundOptions,
  forced: X12Problem[],
  client?: pg.ClientBase,
): Promise<InboundFileResult['ack']> {
  const { partner } = ctx;
  let text = '';
  let first: number | null = null;
  for (const x of interchanges) {
    const groups = x.groups.filter((g) => !g.fa && g.ge !== null).map((g) => g.ge!);
    if (groups.length === 0) continue;
    const control = await ctx.control.next({ groups: groups.length, sets: groups.length });
    first ??= control.isa13;
    const ack = buildAck({
      interchange: x.header,
      groups,
      interchangeProblems: [...x.problems, ...(x.closed ? [] : x.extra), ...forced],
      profile: partner.x12,
      control,
      ...(opts.now ? { now: opts.now } : {}),
    });
    text += ack.text;
    if (client) {
      await client.query('UPDATE edi.interchanges SET ack_isa13 = $2 WHERE id = $1', [x.id, control.isa13]);
    }
  }
  if (first === null) return null;
  const type = partner.x12.ack;
  return { type, name: `${type}-${String(first).padStart(9, '0')}.edi`, text };
}
