/**
 * runner.approvals (sql/000191): a run awaiting a second person's decision, with its dry run, and
 * the decision; the run's own status moves with it.
 */
import { hostname } from 'node:os';
import type { DefinitionHash } from '../../audit/definitions.js';
import type { Db } from './db.js';

/** Attaches an approval request to a run awaiting approval; returns when it expires. */
export async function insertApproval(
  db: Db,
  runId: number,
  a: { distinctFromRequester: boolean; expiresAfterMs: number | null; dryRun: string },
): Promise<Date | null> {
  const { rows } = await db.query<{ expires_at: Date | null }>(
    `INSERT INTO runner.approvals (run_id, distinct_from_requester, expires_at, dry_run)
     VALUES ($1, $2, now() + $3 * interval '1 millisecond', $4) RETURNING expires_at`,
    [runId, a.distinctFromRequester, a.expiresAfterMs, a.dryRun],
  );
  return rows[0]!.expires_at;
}

/** Cancels every run whose approval expired (runner.expire_approvals), as `by`; returns how many. */
export async function expireApprovalRecords(db: Db, by: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT runner.expire_approvals($1, $2) AS n', [
    by,
    hostname(),
  ]);
  return rows[0]!.n;
}

/** A run and its approval, as a decision needs them. */
export interface PendingRow {
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

/** The run and its approval, locked for the decision (inside the caller's transaction). */
export async function lockRunForDecision(db: Db, runId: number): Promise<PendingRow | undefined> {
  const { rows } = await db.query<PendingRow>(
    `SELECT r.status, r.name, r.requested_by, r.params, r.options, r.definitions,
       a.distinct_from_requester, a.decision, a.expires_at <= now() AS expired
     FROM runner.runs r LEFT JOIN runner.approvals a ON a.run_id = r.id
     WHERE r.id = $1 FOR UPDATE OF r`,
    [runId],
  );
  return rows[0];
}

/** Records the decision on a run's approval. */
export async function recordDecision(
  db: Db,
  runId: number,
  decision: 'approved' | 'rejected',
  by: string,
  reason: string | null,
): Promise<void> {
  await db.query(
    `UPDATE runner.approvals SET decision = $4, decided_by = $2, decided_at = now(), reason = $3
     WHERE run_id = $1`,
    [runId, by, reason, decision],
  );
}

/** Cancels a rejected run. */
export async function cancelRejectedRun(db: Db, runId: number, error: string): Promise<void> {
  await db.query(
    `UPDATE runner.runs SET status = 'cancelled', finished_at = now(), error_kind = 'cancelled', error = $2
     WHERE id = $1`,
    [runId, error],
  );
}

/** Queues an approved run (refused by runs_lock_held while another run holds its lock). */
export async function queueApprovedRun(db: Db, runId: number): Promise<void> {
  await db.query(`UPDATE runner.runs SET status = 'queued' WHERE id = $1`, [runId]);
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

/** The runs awaiting approval, oldest first. */
export async function awaitingApproval(db: Db): Promise<PendingApproval[]> {
  const { rows } = await db.query<PendingApproval>(
    `SELECT a.run_id::int, r.name, r.params, r.requested_by, a.requested_at, a.expires_at,
       a.distinct_from_requester, a.dry_run
     FROM runner.approvals a JOIN runner.runs r ON r.id = a.run_id
     WHERE r.status = 'awaiting_approval' ORDER BY a.run_id`,
  );
  return rows;
}

/** What `erp runs show` adds for compliance: the definitions' hashes and the approval, if any. */
export interface ComplianceRow {
  definitions: DefinitionHash[];
  decision: string | null;
  decided_by: string | null;
  decided_at: Date | null;
  expires_at: Date | null;
  has_approval: boolean;
  reason: string | null;
}

export async function complianceOf(db: Db, runId: number): Promise<ComplianceRow | undefined> {
  const { rows } = await db.query<ComplianceRow>(
    `SELECT r.definitions, a.decision, a.decided_by, a.decided_at, a.expires_at, a.run_id IS NOT NULL AS has_approval,
       a.reason
     FROM runner.runs r LEFT JOIN runner.approvals a ON a.run_id = r.id WHERE r.id = $1`,
    [runId],
  );
  return rows[0];
}
