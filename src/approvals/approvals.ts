import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';
import { appendAudit } from '../audit/trail.js';
import { definitionHashes, type DefinitionHash } from '../audit/definitions.js';
import { withTransaction } from '../db/pool.js';
import { describeError, UserError } from '../errors.js';
import { lockKeyOf, paramStrings, resolveRunnable, typedParams, type Runnable } from '../jobs/definition.js';
import { createRun, currentUser } from '../runs/history.js';

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
    const { rows } = await client.query<{ expires_at: Date | null }>(
      `INSERT INTO runner.approvals (run_id, distinct_from_requester, expires_at, dry_run)
       VALUES ($1, $2, now() + $3 * interval '1 millisecond', $4) RETURNING expires_at`,
      [runId, approval.distinct_from_requester, approval.expires_after ?? null, dryRun],
    );
    return { runId, expiresAt: rows[0]!.expires_at };
  });
}

/** Cancels every run whose approval expired; returns how many. */
export async function expireApprovals(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT runner.expire_approvals($1, $2) AS n', [
    currentUser(),
    hostname(),
  ]);
  return rows[0]!.n;
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

interface PendingRow {
  status: string;
  name: string;
  requested_by: string;
  params: Record<string, unknown>;
  options: { force?: boolean; files?: string[] };
  definitions: DefinitionHash[];
  distinct_from_requester: boolean | null;
  decision: string | null;
  expired: boolean | null;
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
    const { rows } = await client.query<PendingRow>(
      `SELECT r.status, r.name, r.requested_by, r.params, r.options, r.definitions,
         a.distinct_from_requester, a.decision, a.expires_at <= now() AS expired
       FROM runner.runs r LEFT JOIN runner.approvals a ON a.run_id = r.id
       WHERE r.id = $1 FOR UPDATE OF r`,
      [runId],
    );
    const row = rows[0];
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
      await client.query(
        `UPDATE runner.approvals SET decision = 'rejected', decided_by = $2, decided_at = now(), reason = $3
         WHERE run_id = $1`,
        [runId, actor, reason ?? null],
      );
      await client.query(
        `UPDATE runner.runs SET status = 'cancelled', finished_at = now(), error_kind = 'cancelled', error = $2
         WHERE id = $1`,
        [runId, `rejected by ${actor}${reason ? `: ${reason}` : ''}`],
      );
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
    await client.query(
      `UPDATE runner.approvals SET decision = 'approved', decided_by = $2, decided_at = now(), reason = $3
       WHERE run_id = $1`,
      [runId, actor, reason ?? null],
    );
    try {
      await client.query(`UPDATE runner.runs SET status = 'queued' WHERE id = $1`, [runId]);
    } catch (err) {
      const e = err as { code?: string; constraint?: string };
      if (e.code === '23505' && e.constraint === 'runs_lock_held')
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

/** A run awaiting approval, for `erp approvals`. */
export interface PendingApproval {
  run_id: number;
  name: string;
  params: Record<string, unknown>;
  requested_by: string;
  requested_at: Date;
  expires_at: Date | null;
  distinct_from_requester: boolean;
  dry_run: string;
}

/** The runs awaiting approval (expired ones are ended first), oldest first. */
export async function pendingApprovals(pool: pg.Pool): Promise<PendingApproval[]> {
  await expireApprovals(pool);
  const { rows } = await pool.query<PendingApproval>(
    `SELECT a.run_id::int, r.name, r.params, r.requested_by, a.requested_at, a.expires_at,
       a.distinct_from_requester, a.dry_run
     FROM runner.approvals a JOIN runner.runs r ON r.id = a.run_id
     WHERE r.status = 'awaiting_approval' ORDER BY a.run_id`,
  );
  return rows;
}
