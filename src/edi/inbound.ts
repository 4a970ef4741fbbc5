import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { makeTempIn, runTempDir } from '../runs/temp.js';
import { CancelledError } from '../errors.js';
import { resolveEndpoint, type Partner } from '../partners/profile.js';
import type { AppContext } from '../pipeline/run.js';
import {
  downloadVerified,
  listReady,
  moveRemote,
  moveToError,
  uploadAtomic,
  type Sftp,
} from '../sftp/index.js';
import {
  prepareInbound,
  processInboundFile,
  type InboundFileResult,
  type InboundOptions,
} from './inbound-file.js';
import { previewSegments, withPartnerSftp } from './transport.js';

export * from './inbound-file.js';

/**
 * Inbound EDI for one partner: their 850s become sales orders, every functional group gets our
 * 997/999, and their 997/999s about what we sent are reconciled.
 *
 *   inbox/x ─listReady─► downloadVerified (size + sha256) ─► splitX12 (partner's caps)
 *     │                                                         │ one transaction set at a time
 *     │   BEGIN ─ per ISA: receive_interchange (duplicate?) ─ SAVEPOINT
 *     │             per GS: SAVEPOINT ─ per 850: map ─ check (items, PO once) ─ insert order + lines
 *     │                                per 997/999: applyFunctionalAck (our outbound interchanges)
 *     │             GE with problems: ROLLBACK TO the group;  IEA with problems: ROLLBACK TO the interchange
 *     │             record groups + sets as judged (judgeGroup), allocate the ack's control numbers
 *     │   COMMIT
 *     ├─► outbox/997-<ISA13>.edi (uploadAtomic)         the ack, after the commit
 *     └─► archive/x  (clean)  or  error/x + x.error.txt (rejections, or unreadable: nothing loaded)
 *
 * A file is all-or-nothing: every write happens in its one transaction, and the database always
 * agrees with the ack (exactly the sets it accepts are loaded). A re-delivered interchange (same
 * partner and ISA13) is acknowledged again but loads nothing. An infrastructure failure leaves the
 * file in the inbox for the next run.
 */

/** The `<name>.error.txt` placed beside a file moved to the error dir. */
export function errorReport(partner: Partner, r: InboundFileResult, now = new Date()): string {
  const lines = [
    `erp EDI inbound, partner ${partner.name}: ${r.file} (${r.size} bytes, sha256 ${r.sha256})`,
    `processed ${now.toISOString()}: ${r.status === 'failed' ? 'FAILED, nothing was loaded' : 'transaction sets rejected'}`,
  ];
  if (r.error) lines.push(`error: ${r.error}`);
  if (r.status !== 'failed') {
    lines.push(
      `transaction sets accepted: ${r.setsAccepted}, rejected: ${r.setsRejected}; orders loaded: ${r.ordersLoaded}${r.orders.length > 0 ? ` (${r.orders.join(', ')})` : ''}`,
    );
  }
  lines.push(
    r.ack
      ? `acknowledgment: ${r.ack.name}${r.ackPath ? ` (${r.ackPath})` : ''}`
      : 'acknowledgment: none (no functional group could be read)',
  );
  if (r.problemCount > 0) {
    lines.push(`problems (${r.problemCount}):`);
    for (const p of r.problems) lines.push(`  ${p}`);
    if (r.problemCount > r.problems.length) lines.push(`  … ${r.problemCount - r.problems.length} more`);
  }
  return lines.join('\n') + '\n';
}

/** The result of an inbound (or acks) run for one partner. */
export interface InboundRunResult {
  partner: string;
  files: InboundFileResult[];
  /** Another run was reading this partner's inbox: nothing was done. */
  busy: boolean;
}

/** Advisory lock class of "a run is reading this partner's inbox" (the object id is hashtext(partner)). */
export const INBOX_LOCK_CLASS = 0x45444931;

/**
 * Lists the partner's inbox (ready files only) and processes each file: download, load in one
 * transaction, commit, then upload the ack and archive the file (or move it to the error dir with
 * a report; an unreadable one is also recorded in edi.failed_files). Stops at the first
 * infrastructure error, leaving that file in the inbox for the next run.
 */
export async function runInbound(
  app: AppContext,
  partner: Partner,
  opts: InboundOptions,
): Promise<InboundRunResult> {
  const endpoint = resolveEndpoint(partner, opts.env);
  const ctx = await prepareInbound(app, partner, opts);
  const out: InboundRunResult = { partner: partner.name, files: [], busy: false };
  // One reader per inbox (the nightly job and a schedule may overlap): two would both fetch a file,
  // the second would only find it a duplicate, and then fail to move it.
  const lock = opts.dryRun ? null : await app.pool.connect();
  if (lock) {
    const { rows } = await lock.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok',
      [INBOX_LOCK_CLASS, partner.name],
    );
    if (!rows[0]!.ok) {
      lock.release();
      return { ...out, busy: true };
    }
  }
  const tmp = await makeTempIn(runTempDir(app.dataDir, opts.runId), 'edi-');
  try {
    await withPartnerSftp(
      partner,
      endpoint,
      {
        log: app.log,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.env ? { env: opts.env } : {}),
      },
      async (sftp) => {
        const files = await listReady(sftp, endpoint.inbox, partner.sftp.glob, endpoint.ready, {
          ...(opts.signal ? { signal: opts.signal } : {}),
          log: app.log,
        });
        let sets = 0;
        for (const remote of files) {
          if (opts.signal?.aborted) throw new CancelledError();
          const local = await downloadVerified(sftp, remote.path, tmp, remote.size, {
            ...(opts.signal ? { signal: opts.signal } : {}),
          });
          let r: InboundFileResult;
          const base = sets;
          try {
            r = await processInboundFile(
              ctx,
              { path: local.localPath, name: remote.name, size: local.size, sha256: local.sha256 },
              { ...opts, onSets: (n) => opts.onSets?.((sets = base + n)) },
            );
          } finally {
            await rm(local.localPath, { force: true });
          }
          if (r.status !== 'skipped') out.files.push(r);
          if (opts.dryRun || r.status === 'skipped') continue;
          await settle(sftp, partner, endpoint, remote, r);
          if (r.status === 'failed') {
            await app.pool.query(
              `INSERT INTO edi.failed_files (partner, file_name, sha256, size, error, moved_to)
               VALUES ($1, $2, $3, $4, $5, $6)`,
              [partner.name, r.file, r.sha256, r.size, r.error, r.movedTo],
            );
          }
          if (r.status === 'failed' || r.status === 'rejected') {
            app.log.warn(
              {
                partner: partner.name,
                file: r.file,
                status: r.status,
                movedTo: r.movedTo,
                problems: r.problemCount,
              },
              r.error ?? `EDI file ${r.file}: ${r.setsRejected} transaction sets rejected`,
            );
          }
        }
      },
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
    if (lock) {
      const unlocked = await lock
        .query('SELECT pg_advisory_unlock($1, hashtext($2))', [INBOX_LOCK_CLASS, partner.name])
        .then(
          () => true,
          () => false,
        );
      // A connection that could not unlock is closed, which drops the lock.
      lock.release(!unlocked);
    }
  }
  return out;
}

/** After the commit: the ack to the outbox, then the file (and its marker) to the archive or error dir. */
async function settle(
  sftp: Sftp,
  partner: Partner,
  endpoint: { outbox: string; archive: string; error: string },
  remote: { name: string; path: string; marker?: string },
  r: InboundFileResult,
): Promise<void> {
  // The 997/999, the TA1 and the 855, each uploaded atomically to the partner's outbox.
  const upload = (doc: { name: string; text: string }) =>
    uploadAtomic(sftp, Readable.from([Buffer.from(doc.text)]), endpoint.outbox, doc.name);
  if (r.ack) r.ackPath = await upload(r.ack);
  if (r.ta1) r.ta1Path = await upload(r.ta1);
  if (r.poAck) r.poAckPath = await upload(r.poAck);
  const bad = r.status === 'failed' || r.status === 'rejected';
  if (bad) {
    const moved = await moveToError(sftp, remote.path, endpoint.error, remote.name, errorReport(partner, r));
    r.movedTo = moved.path;
  } else {
    r.movedTo = await moveRemote(sftp, remote.path, endpoint.archive, remote.name);
  }
  if (remote.marker) {
    await moveRemote(
      sftp,
      remote.marker,
      bad ? endpoint.error : endpoint.archive,
      path.posix.basename(remote.marker),
    );
  }
}

/** One line per file, for step summaries and dry runs. */
export function describeInboundFile(r: InboundFileResult, previewLines = 0): string[] {
  const parts = [
    `${r.file}: ${r.status}`,
    r.setsAccepted + r.setsRejected > 0
      ? `${r.setsAccepted} sets accepted, ${r.setsRejected} rejected`
      : null,
    r.ordersLoaded > 0
      ? `orders ${r.orders.join(', ')}${r.ordersLoaded > r.orders.length ? ' …' : ''}`
      : null,
    r.acksApplied.length > 0
      ? `acks applied: ${r.acksApplied.map((a) => `${a.functionalId} ${a.gs06} ${a.code}`).join(', ')}`
      : null,
    r.ta1sApplied.length > 0
      ? `TA1s applied: ${r.ta1sApplied.map((t) => `${t.isa13} ${t.code} ${t.note}`).join(', ')}`
      : null,
    r.ack ? `ack ${r.ack.name}` : null,
    r.ta1 ? `TA1 ${r.ta1.name}` : null,
    r.poAck ? `855 ${r.poAck.name}` : null,
    r.movedTo ? `moved to ${r.movedTo}` : null,
  ].filter(Boolean);
  const out = [parts.join('; ')];
  if (r.error) out.push(`  error: ${r.error}`);
  else for (const p of r.problems.slice(0, 5)) out.push(`  ${p}`);
  for (const n of r.notices.slice(0, 5)) out.push(`  ${n}`);
  for (const u of r.unusedSegments) {
    out.push(
      u.first
        ? `  unused segment ${u.segment}: first time seen from this partner (in ${u.sets} set${u.sets === 1 ? '' : 's'}); the mapping does not read it`
        : `  unused segment ${u.segment}: in ${u.sets} set${u.sets === 1 ? '' : 's'}, ${u.timesSeen} in all; the mapping does not read it`,
    );
  }
  if (previewLines > 0 && r.ack)
    for (const s of previewSegments(r.ack.text, previewLines)) out.push(`  | ${s}`);
  return out;
}
