/**
 * The compliance commands: a run that needs approval (`erp run` of such a job), `erp approve`,
 * `erp reject`, `erp approvals`, and `erp audit verify|export`. Thin: the work is in src/approvals/
 * and src/audit/.
 */
import { open } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { App } from '../app.js';
import {
  decideApproval,
  pendingApprovals,
  requestApproval,
  type ApprovedRun,
} from '../approvals/approvals.js';
import { exportAudit, parseBound, type AuditExportFormat } from '../audit/export.js';
import { verifyAudit } from '../audit/trail.js';
import { describeError, UserError } from '../errors.js';
import type { Runnable } from '../jobs/definition.js';
import { executeRun } from '../jobs/execute.js';
import { enqueueRun } from '../jobs/submit.js';
import { formatRunView, table, viewOfOutcome } from './report.js';
import { finishRun } from '../runs/store/runs.js';
import { EXIT, exitCodeOf } from './exit.js';

/**
 * `erp run` of a job that requires approval: its dry run, then the run recorded as awaiting
 * approval with the dry run attached. A dry run that fails is shown and nothing is recorded.
 */
export async function requestApprovalCommand(
  app: App,
  runnable: Runnable,
  params: Record<string, string>,
  opts: { force?: boolean; files?: string[]; inline?: boolean },
): Promise<number> {
  if (opts.inline) {
    throw new UserError(
      `${runnable.name} requires approval, so it cannot run --inline: run it without --inline to request approval`,
    );
  }
  const outcome = await executeRun(app, {
    runId: null,
    runnable,
    params,
    dryRun: true,
    ...(opts.force ? { force: true } : {}),
    ...(opts.files ? { files: opts.files } : {}),
    signal: new AbortController().signal,
  });
  const report = formatRunView(viewOfOutcome(runnable.name, params, outcome));
  process.stdout.write(report + '\n');
  if (outcome.status !== 'succeeded') {
    process.stderr.write(`erp: the dry run of ${runnable.name} failed, so no approval was requested\n`);
    return exitCodeOf(outcome.status, outcome.errorKind);
  }
  const { runId, expiresAt } = await requestApproval(app.pool, app.home, runnable, params, report, opts);
  const approval = runnable.job.config.approval!;
  process.stderr.write(
    `run ${runId} awaits approval${approval.distinct_from_requester ? ' by someone other than you' : ''}` +
      `${expiresAt ? ` until ${expiresAt.toISOString()}` : ''}: erp approve ${runId} (or erp reject ${runId})\n`,
  );
  process.stdout.write(`${runId}\n`);
  return EXIT.ok;
}

function runIdOf(command: string, id: string): number {
  if (!/^\d+$/.test(id)) throw new UserError(`usage: erp ${command} <run> (a run number)`);
  return Number(id);
}

/** `erp approve <run>`: releases the run to the workers. */
export async function approveCommand(app: App, id: string, reason?: string): Promise<number> {
  const runId = runIdOf('approve', id);
  const run = (await decideApproval(app.pool, app.home, runId, 'approve', undefined, reason))!;
  await enqueue(app, run);
  process.stdout.write(`run ${runId} approved and queued for the workers (erp runs show ${runId})\n`);
  return EXIT.ok;
}

async function enqueue(app: App, run: ApprovedRun): Promise<void> {
  const { connectRedis, createQueue, redisConnection } = await import('../runner/queue.js');
  const redis = redisConnection(app.config.REDIS_URL, 'producer');
  const queue = createQueue(redis, app.config.ERP_QUEUE_PREFIX);
  try {
    await connectRedis(redis, app.config.REDIS_URL);
    await enqueueRun(queue, run.runId, run.runnable, run.params, {
      force: run.force,
      ...(run.files ? { files: run.files } : {}),
    });
  } catch (err) {
    await finishRun(app.pool, run.runId, 'failed', `could not enqueue: ${describeError(err)}`, 'infra');
    throw err;
  } finally {
    await queue.close().catch(() => undefined);
    redis.disconnect();
  }
}

/** `erp reject <run>`: ends a run awaiting approval. */
export async function rejectCommand(app: App, id: string, reason?: string): Promise<number> {
  const runId = runIdOf('reject', id);
  await decideApproval(app.pool, app.home, runId, 'reject', undefined, reason);
  process.stdout.write(`run ${runId} rejected; it will not run\n`);
  return EXIT.ok;
}

/** `erp approvals [--show]`: the runs awaiting approval, with their dry runs on request. */
export async function approvalsCommand(app: App, show: boolean): Promise<number> {
  const rows = await pendingApprovals(app.pool);
  if (rows.length === 0) {
    process.stdout.write('no runs await approval\n');
    return EXIT.ok;
  }
  const when = (d: Date | null): string => (d ? d.toISOString().slice(0, 16).replace('T', ' ') : 'never');
  process.stdout.write(
    table(
      ['RUN', 'JOB', 'PARAMS', 'REQUESTED BY', 'REQUESTED (UTC)', 'EXPIRES (UTC)'],
      rows.map((r) => [
        r.run_id,
        r.name,
        Object.entries(r.params)
          .map(([k, v]) => `${k}=${v}`)
          .join(' '),
        r.requested_by,
        when(r.requested_at),
        when(r.expires_at),
      ]),
    ) + '\n',
  );
  if (show) {
    for (const r of rows) process.stdout.write(`\nrun ${r.run_id}: dry run\n${r.dry_run}\n`);
  }
  return EXIT.ok;
}

/** Options of `erp audit`. */
export interface AuditCommandOptions {
  from?: string;
  to?: string;
  format?: string;
  out?: string;
}

/** `erp audit verify` and `erp audit export --from --to [--format csv|jsonl] [--out F]`. */
export async function auditCommand(
  app: App,
  action: string | undefined,
  opts: AuditCommandOptions,
): Promise<number> {
  if (action === 'verify') {
    const r = await verifyAudit(app.pool);
    for (const p of r.problems) process.stderr.write(`erp audit: ${p}\n`);
    const head = r.head ? `; head seq ${r.head.seq} hash ${r.head.hash}` : '';
    if (r.problems.length > 0) {
      process.stderr.write(`erp audit: the trail is NOT intact (${r.rows} rows checked${head})\n`);
      return EXIT.failed;
    }
    process.stdout.write(`audit trail intact: ${r.rows} rows${head}\n`);
    return EXIT.ok;
  }
  if (action === 'export') {
    const format = (opts.format ?? 'csv') as AuditExportFormat;
    if (format !== 'csv' && format !== 'jsonl')
      throw new UserError(`--format '${opts.format}' is not known; use csv or jsonl`);
    const from = parseBound('--from', opts.from, false);
    const to = parseBound('--to', opts.to, true);
    if (opts.out) {
      // Never overwrites: an export handed to an auditor is not silently replaced.
      const fh = await open(opts.out, 'wx').catch((err: NodeJS.ErrnoException) => {
        throw new UserError(`--out ${opts.out}: cannot create it (${err.code ?? err.message})`);
      });
      const out = fh.createWriteStream();
      const n = await exportAudit(app.pool, out, { from, to, format });
      out.end();
      await finished(out);
      process.stderr.write(`wrote ${n} audit rows to ${opts.out}\n`);
    } else {
      await exportAudit(app.pool, process.stdout, { from, to, format });
    }
    return EXIT.ok;
  }
  throw new UserError(
    `unknown action '${action ?? ''}'; use: erp audit verify, or erp audit export --from D --to D`,
  );
}

/** `erp keys status`, `erp keys rotate [--batch N]`, `erp keys new <id>`. */
export async function keysCommand(
  app: App,
  action: string | undefined,
  arg: string | undefined,
  opts: { batch?: string },
): Promise<number> {
  const { newKeyLine, requireKeyring } = await import('../compliance/keys.js');
  const { keyUsage, rotateKeys } = await import('../compliance/rotate.js');
  if (action === 'new') {
    if (!arg) throw new UserError('usage: erp keys new <key id> >> keyfile (prints a new key line)');
    process.stdout.write(newKeyLine(arg) + '\n');
    return EXIT.ok;
  }
  if (action === 'status') {
    const ring = requireKeyring('erp keys status: bank account numbers and tax ids');
    const rows = await keyUsage(app.pool);
    process.stdout.write(
      (rows.length === 0
        ? 'no encrypted values'
        : table(
            ['COLUMN', 'KEY', 'VALUES'],
            rows.map((r) => [
              r.column,
              r.key === null
                ? 'clear text (erp keys rotate encrypts it)'
                : `${r.key}${r.key === ring.current ? ' (current)' : ring.keys.has(r.key) ? '' : ' (NOT in the configured keys)'}`,
              String(r.values),
            ]),
          )) + '\n',
    );
    return EXIT.ok;
  }
  if (action === 'rotate') {
    const batch = Number(opts.batch ?? '1000');
    if (!Number.isInteger(batch) || batch < 1) throw new UserError('--batch expects a positive whole number');
    const ring = requireKeyring('erp keys rotate: bank account numbers and tax ids');
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let shown = 0;
    try {
      const r = await rotateKeys(app.pool, ring, {
        batch,
        signal: ac.signal,
        onProgress(p) {
          // A line per second at most, and the last one of each column.
          const now = Date.now();
          if (p.done !== 0 && p.done !== p.total && now - shown < 1000) return;
          shown = now;
          process.stderr.write(
            `${p.column}: ${p.done} of ${p.total} re-encrypted under key ${ring.current}\n`,
          );
        },
      });
      const total = r.columns.reduce((n, c) => n + c.rotated, 0);
      if (ac.signal.aborted) {
        process.stderr.write(`erp keys rotate: stopped after ${total} values; run it again to finish\n`);
        return EXIT.failed;
      }
      process.stdout.write(`${total} values re-encrypted; every encrypted column is under key ${r.key}\n`);
      return EXIT.ok;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }
  throw new UserError(
    `unknown action '${action ?? ''}'; use: erp keys status, erp keys rotate [--batch N], erp keys new <id>`,
  );
}

/** `erp purge [--dry-run]`: retention.yaml applied now, as the retention-purge job does nightly. */
export async function purgeCommand(app: App, dryRun: boolean): Promise<number> {
  const { loadRetention } = await import('../compliance/retention.js');
  const { describePurge, purge } = await import('../compliance/purge.js');
  const policy = await loadRetention(app.home);
  const result = await purge(app, policy, { dryRun, log: app.log });
  process.stdout.write(describePurge(result, dryRun) + '\n');
  if (dryRun) process.stdout.write('dry run: nothing was removed\n');
  return EXIT.ok;
}

/** `erp erase person <employee or customer>`: pseudonymised everywhere erp keeps it, audited. */
export async function eraseCommand(
  app: App,
  what: string | undefined,
  ref: string | undefined,
): Promise<number> {
  if (what !== 'person' || !ref) {
    throw new UserError(
      'usage: erp erase person <employee_no or customer_no> (or employee:<no>, customer:<no>)',
    );
  }
  const { erasePerson } = await import('../compliance/erase.js');
  const r = await erasePerson(app, ref);
  const rows = Object.entries(r.rows).map(([t, n]) => `${t} ${n}`);
  process.stdout.write(
    `${r.kind} ${ref} erased: now ${r.pseudonym}; rewritten: ${rows.join(', ') || 'no rows'}, ${r.files} file${r.files === 1 ? '' : 's'}\n`,
  );
  return EXIT.ok;
}
