import type { QueueEvents } from 'bullmq';
import type pg from 'pg';
import { jobIdOf } from './job-id.js';
import type { RunStatus } from '../runs.js';
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
 * own completed/failed event has come after its last progress, every step line has been shown.
 */
export async function followRun(
  pool: pg.Pool,
  events: QueueEvents,
  runId: number,
  onProgress: (p: RunProgress) => void,
  signal: AbortSignal,
): Promise<RunStatus | 'detached'> {
  const jobId = jobIdOf(runId);
  let settled = false;
  const listener = ({ jobId: id, data }: { jobId: string; data: unknown }): void => {
    if (id !== jobId || !data || typeof data !== 'object') return;
    settled = false;
    onProgress(data as RunProgress);
  };
  const ended = ({ jobId: id }: { jobId: string }): void => {
    if (id === jobId) settled = true;
  };
  events.on('progress', listener);
  events.on('completed', ended);
  events.on('failed', ended);
  const pause = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  try {
    for (;;) {
      if (signal.aborted) return 'detached';
      const { rows } = await pool.query<{ status: RunStatus; attempts: number }>(
        'SELECT status, attempts FROM runner.runs WHERE id = $1',
        [runId],
      );
      const status = rows[0]?.status;
      if (status && FINAL.includes(status)) {
        // A run no worker started (cancelled while queued) sends no events.
        const deadline = Date.now() + SETTLE_MS;
        while (rows[0]!.attempts > 0 && !settled && Date.now() < deadline && !signal.aborted) await pause(20);
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
