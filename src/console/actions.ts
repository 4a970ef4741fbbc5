/**
 * The record of console actions. Every state-changing thing the console does goes through
 * {@link recordAction}, the one place to redirect when the audit trail moves (a hash chain, say).
 */
import type pg from 'pg';

/** One console action: who did what, when, from which address, to which run. */
export interface ConsoleAction {
  actor: string;
  address: string;
  /** `cancel`, `rerun`, `reload`, `trigger`, `login`, `logout`, `login-refused`. */
  action: string;
  runId?: number | null;
  /** The run the action started, if any. */
  newRunId?: number | null;
  detail?: Record<string, unknown>;
}

/** A recorded action, as the run page lists it. */
export interface RecordedAction extends Required<Omit<ConsoleAction, 'detail'>> {
  id: number;
  at: Date;
  detail: Record<string, unknown>;
}

export async function recordAction(db: Pick<pg.Pool, 'query'>, a: ConsoleAction): Promise<void> {
  await db.query(
    `INSERT INTO console.actions (actor, address, action, run_id, new_run_id, detail) VALUES ($1, $2, $3, $4, $5, $6)`,
    [a.actor, a.address, a.action, a.runId ?? null, a.newRunId ?? null, JSON.stringify(a.detail ?? {})],
  );
}

/** The actions that touched a run or started it, oldest first. */
export async function actionsOfRun(db: Pick<pg.Pool, 'query'>, runId: number): Promise<RecordedAction[]> {
  const { rows } = await db.query<{
    id: string;
    at: Date;
    actor: string;
    address: string;
    action: string;
    run_id: string | null;
    new_run_id: string | null;
    detail: Record<string, unknown>;
  }>(
    `SELECT id, at, actor, address, action, run_id, new_run_id, detail FROM console.actions
      WHERE run_id = $1 OR new_run_id = $1 ORDER BY id LIMIT 200`,
    [runId],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    actor: r.actor,
    address: r.address,
    action: r.action,
    runId: r.run_id === null ? null : Number(r.run_id),
    newRunId: r.new_run_id === null ? null : Number(r.new_run_id),
    detail: r.detail,
  }));
}
