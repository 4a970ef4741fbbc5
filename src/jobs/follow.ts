import type { QueueEvents } from 'bullmq';
import type pg from 'pg';
import { whileUnreachable } from '../db/pool.js';
import { describeError, isConnectionError } from '../errors.js';
import { jobIdOf } from './job-id.js';
import type { RunStatus } from '../runs/history.js';
import type { RunProgress } from './execute.js';

const FINAL: RunStatus[] = ['succeeded', 'failed', 'cancelled'];

/** How long a finished run's last progress events may take to arrive after PostgreSQL says it ended. */
const SETTLE_MS = 2000;

/**
 * Follows a queued run until it ends: live progress from the worker through BullMQ's QueueEvents,
 * the outcome from runner.runs (polled, so a lost event never leaves the CLI waiting).
 *
 * The run is final in PostgreSQL before the worker completes (or fails) its BullMQ job, and the
 * worker sends its progress before that; the event stream keeps their order. So once the job's
 * own completed/failed event has come after its last progress, every live step line has been
 * shown. A worker sends no progress for a run that ends within its first moments
 * (PROGRESS_AFTER_MS): the steps no event told the end of are then told from runner.run_steps.
 */
export async function followRun(
  pool: pg.Pool,
  events: QueueEvents,
  runId: number,
  onProgress: (p: RunProgress) => void,
  signal: AbortSignal,
  /** The number of steps of the run's plan. */
  stepCount: number,
  /** Told when the database became unreachable (a line to show) and when it is back (null). */
  onWait?: (message: string | null) => void,
): Promise<RunStatus | 'detached'> {
  let waiting = false;
  const jobId = jobIdOf(runId);
  let settled = false;
  /** Positions of the steps whose end an event told. */
  const told = new Set<number>();
  const listener = ({ jobId: id, data }: { jobId: string; data: unknown }): void => {
    if (id !== jobId || !data || typeof data !== 'object') return;
    settled = false;
    const p = data as RunProgress;
    if (p.state !== 'running') told.add(p.step);
    onProgress(p);
  };
  /** Ends the current pause early. */
  let wake = (): void => undefined;
  const ended = ({ jobId: id }: { jobId: string }): void => {
    if (id !== jobId) return;
    settled = true;
    // The job's end is news: read the run's record now rather than at the next poll.
    wake();
  };
  events.on('progress', listener);
  events.on('completed', ended);
  events.on('failed', ended);
  const pause = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  try {
    for (;;) {
      if (signal.aborted) return 'detached';
      let rows: { status: RunStatus; attempts: number }[];
      try {
        rows = (
          await pool.query<{ status: RunStatus; attempts: number }>(
            'SELECT status, attempts FROM runner.runs WHERE id = $1',
            [runId],
          )
        ).rows;
      } catch (err) {
        // The run goes on without us (a worker executes it): a database restart is waited out.
        if (!isConnectionError(err)) throw err;
        if (!waiting) onWait?.(`waiting for the database (${describeError(err)})`);
        waiting = true;
        await pause(1000);
        continue;
      }
      if (waiting) onWait?.(null);
      waiting = false;
      const status = rows[0]?.status;
      if (status && FINAL.includes(status)) {
        // A run no worker started (cancelled while queued) sends no events.
        const deadline = Date.now() + SETTLE_MS;
        while (rows[0]!.attempts > 0 && !settled && Date.now() < deadline && !signal.aborted) await pause(20);
        await whileUnreachable(() => tellUntold(pool, runId, stepCount, told, onProgress));
        return status;
      }
      await pause(300);
    }
  } finally {
    events.off('progress', listener);
    events.off('completed', ended);
    events.off('failed', ended);
  }
}

/** Tells the end of each recorded step of the run that no progress event told. */
async function tellUntold(
  pool: pg.Pool,
  runId: number,
  steps: number,
  told: Set<number>,
  onProgress: (p: RunProgress) => void,
): Promise<void> {
  const { rows } = await pool.query<{
    position: number;
    kind: RunProgress['kind'];
    name: string;
    status: RunProgress['state'];
  }>(
    `SELECT position, kind, name, status FROM runner.run_steps
     WHERE run_id = $1 AND status IN ('succeeded', 'failed', 'skipped', 'cancelled') ORDER BY position`,
    [runId],
  );
  for (const r of rows) {
    if (!told.has(r.position))
      onProgress({ runId, step: r.position, steps, kind: r.kind, name: r.name, state: r.status });
  }
}
