import { createReadStream } from 'node:fs';
import { CancelledError, UserError } from '../errors.js';
import type { Partner } from '../partners/profile.js';
import type { AppContext } from '../pipeline/run.js';
import { X12Error } from '../x12/errors.js';
import { loadInboundMapping, type InboundMapping } from '../x12/mapping.js';
import { splitX12 } from '../x12/splitter.js';
import { buildFileAcks, recordUnused } from './inbound-acks.js';
import { InboundProcessor, NotAnAckFile } from './inbound-processor.js';
import { ControlNumberSource } from './transport.js';

/**
 * One inbound file, in one transaction (see src/edi/inbound.ts for the whole run):
 *
 *   BEGIN ─ splitX12 events ──► InboundProcessor (inbound-processor.ts): one method per event
 *   acks: one 997/999 interchange per inbound interchange (with a TA1 when asked for or when the
 *         envelope is bad), 855s when the profile acknowledges business errors (inbound-acks.ts)
 *   unused segments counted per partner
 *   COMMIT (ROLLBACK in a dry run)
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

/** A partner's TA1 that was reconciled with our outbound interchange. */
export interface AppliedPartnerTa1 {
  /** TA101: our ISA13. */
  isa13: string;
  code: 'A' | 'E' | 'R';
  note: string;
  /** Our outbound interchange it updated, or null when we never sent that ISA13. */
  interchangeId: number | null;
}

/** The outcome of one inbound file. */
export interface InboundFileResult {
  file: string;
  size: number;
  sha256: string;
  status: InboundFileStatus;
  interchanges: { isa13: string; status: 'loaded' | 'rejected' | 'duplicate' | 'held'; usage: string }[];
  setsAccepted: number;
  setsRejected: number;
  /** Sales orders created (order numbers, the first 100). */
  orders: string[];
  ordersLoaded: number;
  acksApplied: AppliedAck[];
  /** The partner's TA1s about our interchanges, as reconciled. */
  ta1sApplied: AppliedPartnerTa1[];
  /** Our 997/999 for the file (null when it has no group to acknowledge). */
  ack: { type: '997' | '999'; name: string; text: string } | null;
  /** Our TA1s (ISA14 = 1, or a bad envelope), apart from the 997/999, or null. */
  ta1: { name: string; text: string } | null;
  /** Remote path of the uploaded TA1s. */
  ta1Path: string | null;
  /** Our 855s (business_errors: acknowledge), or null. */
  poAck: { name: string; text: string } | null;
  /** Segments present that the mapping does not read: `first` when never seen from this partner before. */
  unusedSegments: { segment: string; sets: number; first: boolean; timesSeen: number }[];
  /** Remote path of the uploaded 855s. */
  poAckPath: string | null;
  /** Business problems held or acknowledged as the profile says (not errors of the file), the first 200. */
  notices: string[];
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
  /**
   * Judge the file as if nothing had been received before: no interchange is a duplicate and no
   * PO number was loaded (the partner test harness and replays).
   */
  fresh?: boolean;
  /**
   * Store the orders (default); false: map and check them, call `onOrder` with outcome `loaded`,
   * insert nothing (a replay of files whose orders exist already).
   */
  storeOrders?: boolean;
  /** Called with each purchase order as it would be stored (the partner test harness collects them). */
  onOrder?: (order: MappedOrder) => void;
}

/** A purchase order as mapped and checked, for {@link InboundOptions.onOrder}. */
export interface MappedOrder {
  st02: string;
  header: Record<string, string | null>;
  lines: { sku: string; quantity: string; uom: string; unitPrice: string; customerLineRef: string | null }[];
  /** What happened to it: loaded, held, or rejected (its problems are in the file's result). */
  outcome: 'loaded' | 'held' | 'rejected';
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

/**
 * Processes one downloaded file in one transaction (rolled back in a dry run) and builds its
 * acks; uploads and moves nothing. Problems with the file's content never throw: they are in the
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
    ta1sApplied: [],
    ack: null,
    poAck: null,
    ta1: null,
    ta1Path: null,
    unusedSegments: [],
    notices: [],
    problems: [],
    problemCount: 0,
    error: null,
    ackPath: null,
    poAckPath: null,
    movedTo: null,
  };
  const client = await app.pool.connect();
  let broken = false;
  const p = new InboundProcessor(ctx, client, result, opts);
  try {
    await client.query('BEGIN');
    try {
      const caps = partner.limits;
      for await (const ev of splitX12(createReadStream(input.path), {
        file: input.name,
        maxFileBytes: caps.max_file_bytes,
        maxSegmentsPerSet: caps.max_segments_per_set,
        maxElementLength: caps.max_element_length,
      })) {
        if (opts.signal?.aborted) throw new CancelledError();
        if (ev.kind === 'isa') await p.isa(ev.interchange);
        else if (ev.kind === 'gs') await p.gs(ev.group);
        else if (ev.kind === 'transaction') await p.transaction(ev.set);
        else if (ev.kind === 'ge') await p.ge(ev);
        else if (ev.kind === 'iea') await p.iea(ev);
        else if (ev.kind === 'ta1') await p.ta1(ev);
        else p.notice(`warning: ${ev.problem.message}`);
      }
    } catch (err) {
      if (err instanceof NotAnAckFile) {
        await client.query('ROLLBACK');
        result.status = 'skipped';
        return result;
      }
      if (!(err instanceof X12Error)) throw err;
      // Unreadable: nothing of the file is loaded. Interchanges read so far are acknowledged as rejected.
      await client.query('ROLLBACK');
      Object.assign(result, {
        status: 'failed',
        error: err.message,
        interchanges: [],
        setsAccepted: 0,
        setsRejected: 0,
        orders: [],
        ordersLoaded: 0,
        acksApplied: [],
        ta1sApplied: [],
      });
      p.note(err.message);
      const acks = await buildFileAcks(ctx, p, opts, [err.problem]);
      result.ack = acks.ack;
      result.ta1 = acks.ta1;
      return result;
    }
    const acks = await buildFileAcks(ctx, p, opts, [], client);
    result.ack = acks.ack;
    result.poAck = acks.poAck;
    result.ta1 = acks.ta1;
    result.unusedSegments = await recordUnused(client, partner.name, input.name, p.unused);
    await client.query(opts.dryRun ? 'ROLLBACK' : 'COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
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
