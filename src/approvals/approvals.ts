/**
 * Approvals (segregation of duties). A job with `approval: { required: true }` is not queued when
 * requested: its run is recorded as awaiting_approval with its dry run attached (runner.approvals,
 * sql/000191). A second person's `erp approve` queues it for the workers; `erp reject` cancels it;
 * an approval that waits past `expires_after` is cancelled (runner.expire_approvals).
 *
 *   erp run ─► dry run ─► run awaiting_approval + approvals row ─┬─ approve (other user) ─► queued ─► worker
 *                                                                ├─ reject ─► cancelled
 *                                                                └─ expires ─► cancelled
 * Every step is an audit row, written in the same transaction as the state it records.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { appendAudit } from '../audit/trail.js';
import { definitionHashes, type DefinitionHash } from '../audit/definitions.js';
import { withTransaction } from '../db/pool.js';
import { describeError, UserError } from '../errors.js';
import { lockKeyOf, paramStrings, resolveRunnable, typedParams, type Runnable } from '../jobs/definition.js';
import {
  awaitingApproval,
  cancelRejectedRun,
  expireApprovalRecords,
  insertApproval,
  lockRunForDecision,
  queueApprovedRun,
  recordDecision,
  type PendingApproval,
} from '../runs/store/approvals.js';
import { createRun } from '../runs/store/runs.js';
import { currentUser } from '../config/env.js';
import { SQLSTATE } from '../db/sqlstate.js';

/** The approver was refused: exit code 5. */
export class ApprovalRefusedError extends UserError {
  override name = 'ApprovalRefusedError';
  constructor(message: string) {
    super(message, 5);
  }
}

/** Records a run that waits for approval, with its dry run's report; returns its id and expiry. */
export async function requestApproval(
  pool: pg.Pool,
  home: string,
  runnable: Runnable,
  params: Record<string, string>,
  dryRun: string,
  opts: { force?: boolean; files?: string[]; requestedBy?: string } = {},
): Promise<{ runId: number; expiresAt: Date | null }> {
  const approval = runnable.job.config.approval!;
  const definitions = await definitionHashes(home, runnable);
  return withTransaction(pool, async (client) => {
    const runId = await createRun(client, {
      kind: runnable.kind,
      name: runnable.name,
      params: typedParams(runnable.job, params),
      status: 'awaiting_approval',
      requestedBy: opts.requestedBy ?? currentUser(),
      trigger: 'cli',
      lockKey: lockKeyOf(runnable.job, params),
      options: { ...(opts.force ? { force: true } : {}), ...(opts.files ? { files: opts.files } : {}) },
      definitions,
    });
    const expiresAt = await insertApproval(client, runId, {
      distinctFromRequester: approval.distinct_from_requester,
      expiresAfterMs: approval.expires_after ?? null,
      dryRun,
    });
    return { runId, expiresAt };
  });
}

/** Cancels every run whose approval expired; returns how many. */
export async function expireApprovals(pool: pg.Pool): Promise<number> {
  return expireApprovalRecords(pool, currentUser());
}

/**
 * The schedulers' timer: every `intervalMs`, the runs whose approval expired are cancelled (with
 * their audit rows), so an expiry happens on time even when nobody runs an approvals command.
 * Several schedulers may run it at once: runner.expire_approvals skips rows another has locked.
 */
export function startApprovalExpiry(
  pool: pg.Pool,
  log: Logger,
  intervalMs: number,
): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  let busy = false;
  const pass = (): void => {
    if (busy) return;
    busy = true;
    running = expireApprovals(pool)
      .then(
        (n) => {
          if (n > 0) log.info({ expired: n }, 'approvals expired: runs cancelled');
        },
        (err: unknown) => log.warn({ err: describeError(err) }, 'could not expire approvals; retrying later'),
      )
      .finally(() => (busy = false));
  };
  pass();
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/** A run approved: what the caller needs to put it on the queue. */
export interface ApprovedRun {
  runId: number;
  runnable: Runnable;
  params: Record<string, string>;
  force: boolean;
  files?: string[];
}

/**
 * `erp approve` / `erp reject`: decides a run awaiting approval, as `actor`. Refuses (exit 5) an
 * approver who requested the run when the job wants two people, an expired approval, and a run
 * whose definitions changed since its dry run was taken (the approver would approve something
 * they have not seen). A refused approval is audited too.
 */
export async function decideApproval(
  pool: pg.Pool,
  home: string,
  runId: number,
  decision: 'approve' | 'reject',
  actor: string = currentUser(),
  reason?: string,
): Promise<ApprovedRun | null> {
  await expireApprovals(pool);
  let refusal: string | null = null;
  const approved = await withTransaction(pool, async (client) => {
    const row = await lockRunForDecision(client, runId);
    if (!row) throw new UserError(`no run ${runId}`);
    if (row.distinct_from_requester === null)
      throw new UserError(`run ${runId} (${row.name}) does not need approval`);
    if (row.status !== 'awaiting_approval') {
      throw new ApprovalRefusedError(
        `run ${runId} is not awaiting approval: it is ${row.status}${row.decision ? ` (${row.decision})` : ''}`,
      );
    }
    const audit = (action: string, detail: Record<string, unknown> = {}): Promise<number> =>
      appendAudit(client, { actor, action, subject: `run:${runId}`, detail });
    if (decision === 'reject') {
      await recordDecision(client, runId, 'rejected', actor, reason ?? null);
      await cancelRejectedRun(client, runId, `rejected by ${actor}${reason ? `: ${reason}` : ''}`);
      await audit('run.rejected', reason ? { reason } : {});
      return null;
    }
    if (row.distinct_from_requester && row.requested_by === actor) {
      refusal = `run ${runId} was requested by ${actor}; ${row.name} must be approved by someone else`;
      await audit('run.approval_refused', { why: 'approver is the requester' });
      return null;
    }
    const runnable = await resolveRunnable(home, row.name);
    const now = await definitionHashes(home, runnable);
    const changed = changedDefinitions(row.definitions, now);
    if (changed.length > 0) {
      refusal = `run ${runId}: ${changed.join(', ')} changed since it was requested, so its dry run no longer shows what would run; reject it and request it again`;
      await audit('run.approval_refused', { why: 'definitions changed', changed });
      return null;
    }
    await recordDecision(client, runId, 'approved', actor, reason ?? null);
    try {
      await queueApprovedRun(client, runId);
    } catch (err) {
      const e = err as { code?: string; constraint?: string };
      if (e.code === SQLSTATE.UNIQUE_VIOLATION && e.constraint === 'runs_lock_held')
        throw new UserError(
          `run ${runId}: another run of ${row.name} with the same lock is queued or running; approve it when that one ends`,
          4,
        );
      throw err;
    }
    await audit('run.approved', reason ? { reason } : {});
    return {
      runId,
      runnable,
      params: paramStrings(row.params),
      force: row.options.force ?? false,
      ...(row.options.files ? { files: row.options.files } : {}),
    };
  });
  // Committed first, so the refusal stays in the audit trail.
  if (refusal !== null) throw new ApprovalRefusedError(refusal);
  return approved;
}

function changedDefinitions(then: DefinitionHash[], now: DefinitionHash[]): string[] {
  const before = new Map(then.map((d) => [d.path, d.sha256]));
  const after = new Map(now.map((d) => [d.path, d.sha256]));
  const out: string[] = [];
  for (const [p, h] of after) if (before.get(p) !== h) out.push(p);
  for (const p of before.keys()) if (!after.has(p)) out.push(p);
  return out;
}

/** The runs awaiting approval (expired ones are ended first), oldest first. */
export async function pendingApprovals(pool: pg.Pool): Promise<PendingApproval[]> {
  await expireApprovals(pool);
  return awaitingApproval(pool);
}
