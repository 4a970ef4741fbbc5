/**
 * One inbound file, in one transaction (see src/edi/inbound.ts for the whole run):
 *
 *   BEGIN ─ splitX12 events ──► InboundProcessor (inbound-processor.ts): one method per event
 *   acks: one 997/999 interchange per inbound interchange (with a TA1 when asked for or when the
 *         envelope is bad), 855s when the profile acknowledges business errors (inbound-acks.ts)
 *   unused segments counted per partner
 *   COMMIT (ROLLBACK in a dry run)
 */
import { createReadStream } from 'node:fs';
import { CancelledError, UserError } from '../errors.js';
import type { Partner } from '../partners/profile.js';
import type { AppContext } from '../app.js';
import { X12Error } from '../x12/errors.js';
import { loadInboundMapping } from '../x12/mapping.js';
import { splitX12 } from '../x12/splitter.js';
import { buildFileAcks, recordUnused } from './inbound-acks.js';
import { InboundProcessor, NotAnAckFile } from './inbound-processor.js';
import { ControlNumberSource } from './transport.js';
import type { InboundContext, InboundFileResult, InboundOptions } from './inbound-types.js';

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
      await p.settle();
    } catch (err) {
      // A batch may still be being stored: its outcome no longer matters, the file is undone.
      await p.abandon();
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
