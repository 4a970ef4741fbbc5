/**
 * A run's records as the runner writes them while it executes: the claim, a step's running and
 * final states, a SQL step's success committed with its work, and a run that turned out not to be
 * ours. sql/000008 holds the two functions they call (runner.claim_run, runner.step_succeeded).
 */
import type pg from 'pg';
import type { AppContext } from '../app.js';
import { runState } from '../runs/store/runs.js';
import {
  claimRunRow,
  recordStepState,
  stepSucceededSql as stepSucceededStatement,
} from '../runs/store/steps.js';
import { reportOf } from './steps/registry.js';
import type { FlatStep, RunOutcome, StepOutcome } from './types.js';

/** What a step's record keeps of its outcome (runner.run_steps.detail), as its kind tells it. */
export function detailOf(s: StepOutcome): Record<string, unknown> {
  const r = reportOf(s);
  return r ? r.report.detail(r.result) : {};
}

export interface Claim {
  cancelRequested: boolean;
  /** Positions of the steps an earlier attempt finished. */
  done: number[];
  /** The first step was recorded as running with the claim (a first attempt). */
  firstStepRecorded: boolean;
}

/**
 * Marks a queued (or retried) run running in this process, in one round trip (runner.claim_run,
 * sql/000008): it records the attempt, host, pid and liveness key, returns the steps an earlier
 * attempt finished and whether a cancel is pending, and on a first attempt records the first step
 * as running. A run that is no longer queued or running (finished by another delivery, cancelled
 * while queued) gives its final outcome instead: its record is not ours.
 */
export async function claimRun(
  app: AppContext,
  runId: number,
  liveness: number,
  first: FlatStep | undefined,
): Promise<Claim | { final: Partial<RunOutcome> }> {
  const claimed = await claimRunRow(app.pool, runId, liveness, first);
  if (claimed)
    return { cancelRequested: claimed.cancel, done: claimed.done, firstStepRecorded: claimed.first_recorded };
  return {
    final: await finalOutcome(app, runId, `run ${runId} is no longer queued (cancelled or finished)`),
  };
}

/** The outcome of a run whose record is final and not ours (another delivery finished it, or it was cancelled). */
export async function finalOutcome(
  app: AppContext,
  runId: number,
  why: string,
): Promise<Partial<RunOutcome>> {
  const row = await runState(app.pool, runId);
  const status = row?.status === 'succeeded' || row?.status === 'failed' ? row.status : 'cancelled';
  return {
    status,
    error: status === 'succeeded' ? null : (row?.error ?? why),
    permanent: true,
    errorKind: row?.error_kind ?? (status === 'succeeded' ? null : 'cancelled'),
  };
}

/**
 * The statement that ends a SQL step's transaction (runner.step_succeeded, sql/000008): the step
 * succeeded, and the next step runs or the run succeeded. Sent in one message with COMMIT, so its
 * values are literals: integers checked as such, text and JSON escaped by the connection.
 */
export function stepSucceededSql(
  client: pg.PoolClient,
  runId: number,
  position: number,
  outcome: StepOutcome,
  next: { position: number; step: FlatStep } | null,
  /** Claim the run with this commit, for the process holding this liveness key. */
  by: { liveness: number } | null,
): string {
  return stepSucceededStatement(client, runId, position, outcome, detailOf(outcome), next, by);
}

export async function recordStep(
  app: AppContext,
  runId: number | null,
  position: number,
  step: FlatStep,
  status: string,
  detail?: Record<string, unknown>,
  error?: string,
): Promise<boolean> {
  if (runId === null) return false;
  // Returns whether the run's cancel was requested, in the same round trip.
  return recordStepState(app.pool, runId, position, step, status, detail, error);
}
