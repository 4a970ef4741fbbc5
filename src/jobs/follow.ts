import type { QueueEvents } from 'bullmq';
import type pg from 'pg';
import { jobIdOf } from '../queue.js';
import type { RunStatus } from '../runs.js';
import type { RunProgress } from './execute.js';

const FINAL: RunStatus[] = ['succeeded', 'failed', 'cancelled'];

/**
 * Follows a queued run until it ends: live progress from the worker through BullMQ's QueueEvents,
 * the outcome from runner.runs (polled, so a lost event never leaves the CLI waiting).
 */
export async function followRun(
  pool: pg.Pool,
  events: QueueEvents,
  runId: number,
  onProgress: (p: RunProgress) => void,
  signal: AbortSignal,
): Promise<RunStatus | 'detached'> {
  const jobId = jobIdOf(runId);
  const listener = ({ jobId: id, data }: { jobId: string; data: unknown }): void => {
    if (id === jobId && data && typeof data === 'object') onProgress(data as RunProgress);
  };
  events.on('progress', listener);
  try {
    for (;;) {
      if (signal.aborted) return 'detached';
      const { rows } = await pool.query<{ status: RunStatus }>(
        'SELECT status FROM runner.runs WHERE id = $1',
        [runId],
      );
      const status = rows[0]?.status;
      if (status && FINAL.includes(status)) return status;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 300);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  } finally {
    events.off('progress', listener);
  }
}
