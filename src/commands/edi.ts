/**
 * `erp edi status`: outbound interchanges waiting for their 997/999 longer than the partner's
 * `ack_overdue_hours`, files committed but not yet delivered, and the recent interchanges.
 *
 * `erp edi preview <partner> [--direction inbound|outbound|acks] [--transaction-set 810|856]`:
 * a dry run of an `edi` job step — what would be loaded or sent, with the first segments of each
 * file; nothing is written, uploaded or moved. Real runs go through `erp run edi-inbound` /
 * `erp run edi-outbound`, which record them.
 */
import type { App } from '../app.js';
import { ediStatus, type EdiStatus } from '../edi/status.js';
import { runEdiStep, type EdiStepSpec } from '../edi/step.js';
import { UserError } from '../errors.js';
import { listPartnerNames, loadPartner, loadPartners } from '../partners/profile.js';
import { table } from './report.js';
import { EXIT } from './exit.js';
import { first, type EdiCommandOptions } from './edi-options.js';

const when = (d: Date): string => d.toISOString().replace('T', ' ').slice(0, 16);

/** The status as text. */
export function formatEdiStatus(s: EdiStatus): string {
  const out: string[] = [];
  out.push(
    `partners: ${s.partners.map((p) => `${p.name} (ack overdue after ${p.ackOverdueHours} h)`).join(', ') || '(none declared in partners/)'}`,
  );
  out.push('');
  if (s.overdue.length === 0) out.push('no outbound interchange is overdue for acknowledgment');
  else {
    out.push(`OVERDUE: ${s.overdue.length} outbound interchange(s) without the partner's 997/999:`);
    out.push(
      table(
        ['PARTNER', 'ISA13', 'FILE', 'SENT (UTC)', 'WAITING'],
        s.overdue.map((o) => [o.partner, o.isa13, o.fileName, when(o.sentAt), `${o.hoursWaiting} h`]),
      ),
    );
  }
  if (s.undelivered.length > 0) {
    out.push('');
    out.push(`NOT YET DELIVERED (the next outbound run uploads them):`);
    out.push(
      table(
        ['PARTNER', 'FILE', 'SINCE (UTC)'],
        s.undelivered.map((u) => [u.partner, u.fileName, when(u.since)]),
      ),
    );
  }
  if (s.failedFiles.length > 0) {
    out.push('');
    out.push(`UNREADABLE FILES (last 7 days; nothing loaded, moved to the error dir with a .error.txt):`);
    out.push(
      table(
        ['PARTNER', 'FILE', 'AT (UTC)', 'ERROR'],
        s.failedFiles.map((f) => [
          f.partner,
          f.fileName,
          when(f.at),
          f.error.length > 100 ? `${f.error.slice(0, 97)}...` : f.error,
        ]),
      ),
    );
  }
  out.push('');
  if (s.recent.length === 0) out.push('no interchanges yet');
  else {
    out.push('recent interchanges:');
    out.push(
      table(
        [
          'ID',
          'DIR',
          'PARTNER',
          'ISA13',
          'STATUS',
          'SETS',
          'FILE',
          'AT (UTC)',
          'ACK ISA13',
          'TA1',
          'MESSAGE',
        ],
        s.recent.map((r) => [
          r.id,
          r.direction,
          r.partner,
          r.isa13,
          r.status,
          r.sets,
          r.fileName,
          when(r.at),
          r.ackIsa13,
          r.ta1,
          r.message && r.message.length > 80 ? `${r.message.slice(0, 77)}...` : r.message,
        ]),
      ),
    );
  }
  return out.join('\n');
}

/** `erp edi <action> [partner]`. */
export async function ediCommand(
  app: App,
  action: string | undefined,
  partnerArg: string | undefined,
  opts: EdiCommandOptions,
): Promise<number> {
  if (action === undefined || action === 'status') {
    const limit = Number(first(opts.limit) ?? '20');
    if (!Number.isInteger(limit) || limit < 1) throw new UserError('--limit expects a positive whole number');
    const only = partnerArg ?? first(opts.partner);
    const partners = only ? [await loadPartner(app.home, only)] : await loadPartners(app.home);
    process.stdout.write(formatEdiStatus(await ediStatus(app.pool, partners, { limit })) + '\n');
    return EXIT.ok;
  }
  if (action === 'test' || action === 'exceptions' || action === 'reprocess' || action === 'replay') {
    return (await import('./edi-harness.js')).ediHarnessCommand(
      app,
      action,
      partnerArg ?? first(opts.partner),
      opts,
    );
  }
  if (action !== 'preview') {
    throw new UserError(
      `unknown action '${action}'; use: erp edi status, erp edi preview <partner> [--direction inbound|outbound|acks], erp edi test <partner> [--update], erp edi replay <partner> --since 30d [--mapping FILE], erp edi exceptions [partner], erp edi reprocess <partner>`,
    );
  }
  const name = partnerArg ?? first(opts.partner);
  if (!name) {
    throw new UserError(
      `usage: erp edi preview <partner>; partners are: ${(await listPartnerNames(app.home)).join(', ') || '(none)'}`,
    );
  }
  const direction = first(opts.direction) ?? 'outbound';
  if (direction !== 'inbound' && direction !== 'outbound' && direction !== 'acks') {
    throw new UserError(`--direction expects inbound, outbound or acks, got '${direction}'`);
  }
  const set = first(opts.transactionSet);
  if (set !== undefined && set !== '810' && set !== '856') {
    throw new UserError(`--transaction-set expects 810 or 856, got '${set}'`);
  }
  if (set !== undefined && direction !== 'outbound') {
    throw new UserError('--transaction-set is for --direction outbound');
  }
  const spec: EdiStepSpec = { direction, partner: name, ...(set ? { transactionSet: set } : {}) };
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const r = await runEdiStep(app, spec, { runId: null, dryRun: true, signal: controller.signal });
    process.stdout.write(
      [
        `edi ${direction} ${name} (dry run: nothing written, uploaded or moved)`,
        ...r.lines.map((l) => `  ${l}`),
        r.summary,
      ].join('\n') + '\n',
    );
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
