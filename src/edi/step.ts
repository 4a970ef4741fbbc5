/**
 * The `edi` job step: `{ edi: inbound | outbound | acks, partner: NAME, transaction_set?: 810 | 856 }`.
 *
 *   inbound   read the partner's inbox: 850s → sales orders, 997/999 back; their 997/999s reconciled
 *   acks      only reconcile the partner's 997/999s (files holding anything else stay for inbound)
 *   outbound  send the unsent 810s and/or 856s of the partner's customer
 *
 * The worker and `erp run --inline` call {@link runEdiStep} through its step kind, src/jobs/steps/edi.ts.
 */
import { loadPartner } from '../partners/profile.js';
import type { AppContext } from '../app.js';
// The EDI machinery (X12 parsing, mapping, acknowledgments, SFTP) loads when an edi step runs: every
// run imports this module through src/jobs/execute.ts, and most runs have no edi step.
import type { InboundRunResult } from './inbound.js';
import type { OutboundRunResult, OutboundSet } from './outbound.js';

/** A flattened `edi` step. */
export interface EdiStepSpec {
  direction: 'inbound' | 'outbound' | 'acks';
  partner: string;
  /** Outbound only: one set instead of all the partner receives. */
  transactionSet?: OutboundSet;
}

/** The step's name in plans and run records: `PARTNERA inbound`, `PARTNERB outbound 810`. */
export function ediStepName(spec: EdiStepSpec): string {
  return [spec.partner, spec.direction, spec.transactionSet].filter(Boolean).join(' ');
}

/** What an `edi` step did. */
export interface EdiStepResult {
  direction: EdiStepSpec['direction'];
  partner: string;
  dryRun: boolean;
  /** One line, for progress output and the run record. */
  summary: string;
  /** A few lines per file (with the first segments in a dry run). */
  lines: string[];
  inbound?: InboundRunResult;
  outbound?: OutboundRunResult;
}

/** Options of {@link runEdiStep}. */
export interface EdiStepOptions {
  runId: number | null;
  dryRun: boolean;
  signal: AbortSignal;
  /** Called with the number of transaction sets read or documents written so far. */
  onRows?: (n: number) => void;
  /** Where the partner's `_env` settings are read. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** ISA09/GS04 of what is written. @defaultValue now */
  now?: Date;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/**
 * Runs one `edi` step. A partner's bad file does not fail the step (nor hold up the other
 * partners' steps): rejected transaction sets are told to the partner by the 997/999, and every
 * bad file is moved to the error dir with its report, logged at warn level, counted in the
 * summary, and listed by `erp edi status`. Configuration, database and network errors fail it.
 */
export async function runEdiStep(
  app: AppContext,
  spec: EdiStepSpec,
  opts: EdiStepOptions,
): Promise<EdiStepResult> {
  const partner = await loadPartner(app.home, spec.partner);
  const preview = opts.dryRun ? 12 : 0;
  const common = {
    dryRun: opts.dryRun,
    signal: opts.signal,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  };
  const base = { direction: spec.direction, partner: partner.name, dryRun: opts.dryRun };
  if (spec.direction === 'outbound') {
    const { describeOutboundFile, runOutbound } = await import('./outbound.js');
    const r = await runOutbound(app, partner, {
      ...common,
      ...(spec.transactionSet ? { transactionSets: [spec.transactionSet] } : {}),
      ...(opts.onRows ? { onDocuments: opts.onRows } : {}),
    });
    const docs = r.files.reduce((n, f) => n + f.documents.length, 0);
    const summary = [
      `${opts.dryRun ? 'would send' : 'sent'} ${plural(r.files.length, 'file')} with ${plural(docs, 'document')}`,
      r.redelivered.length > 0 ? `delivered ${r.redelivered.length} pending from earlier runs` : null,
      r.rejected.length > 0
        ? `${plural(r.rejected.length, 'document')} cannot be written (left unsent)`
        : null,
    ]
      .filter(Boolean)
      .join('; ');
    const lines = [
      ...r.files.flatMap((f) => describeOutboundFile(f, preview)),
      ...r.rejected.map((x) => `not sent: ${x.error}`),
    ];
    return { ...base, summary, lines, outbound: r };
  }
  const { describeInboundFile, runInbound } = await import('./inbound.js');
  const r = await runInbound(app, partner, {
    runId: opts.runId,
    ...common,
    acksOnly: spec.direction === 'acks',
    ...(opts.onRows ? { onSets: opts.onRows } : {}),
  });
  const count = (s: string): number => r.files.filter((f) => f.status === s).length;
  const orders = r.files.reduce((n, f) => n + f.ordersLoaded, 0);
  const acks = r.files.reduce((n, f) => n + f.acksApplied.length, 0);
  const summary = r.busy
    ? `another run is reading ${partner.name}'s inbox; skipped`
    : r.files.length === 0
      ? 'no files in the inbox'
      : [
          `${plural(r.files.length, 'file')}: ${['loaded', 'duplicate', 'rejected', 'failed']
            .filter((s) => count(s) > 0)
            .map((s) => `${count(s)} ${s}`)
            .join(', ')}`,
          `${plural(orders, 'order')} ${opts.dryRun ? 'would be loaded' : 'loaded'}`,
          acks > 0 ? `${plural(acks, 'acknowledgment')} reconciled` : null,
        ]
          .filter(Boolean)
          .join('; ');
  const lines = r.files.flatMap((f) => describeInboundFile(f, preview));
  return { ...base, summary, lines, inbound: r };
}

/** An EDI step's own counts, for its record: files, transaction sets and orders in; files and documents out. */
function ediCounts(r: EdiStepResult): Record<string, number> {
  if (r.outbound)
    return {
      files_sent: r.outbound.files.length,
      documents_sent: r.outbound.files.reduce((n, f) => n + f.documents.length, 0),
    };
  const files = r.inbound?.files ?? [];
  const sum = (k: 'setsAccepted' | 'setsRejected' | 'ordersLoaded'): number =>
    files.reduce((n, f) => n + f[k], 0);
  return {
    files_read: files.length,
    sets_accepted: sum('setsAccepted'),
    sets_rejected: sum('setsRejected'),
    orders_loaded: sum('ordersLoaded'),
  };
}

/** The run record of a step (runner.run_steps.detail): counts and file names, no file contents. */
export function ediStepDetail(r: EdiStepResult): Record<string, unknown> {
  return {
    direction: r.direction,
    partner: r.partner,
    summary: r.summary,
    // What erp run prints under the summary, so a worker's run is told as an inline one is.
    lines: r.lines,
    ...ediCounts(r),
    files: r.inbound
      ? r.inbound.files.map((f) => ({
          file: f.file,
          status: f.status,
          sets_accepted: f.setsAccepted,
          sets_rejected: f.setsRejected,
          orders: f.orders,
          ack: f.ack?.name ?? null,
          moved_to: f.movedTo,
          problems: f.problems.slice(0, 20),
        }))
      : (r.outbound?.files.map((f) => ({
          file: f.name,
          transaction_set: f.transactionSet,
          isa13: f.isa13,
          documents: f.documents,
          remote_path: f.remotePath,
        })) ?? []),
    ...(r.outbound ? { rejected: r.outbound.rejected, redelivered: r.outbound.redelivered } : {}),
  };
}
