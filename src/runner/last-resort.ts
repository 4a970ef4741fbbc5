import pg from 'pg';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';

/**
 * The worker's last resort. Every client, pool, stream and socket has its own error path; an
 * exception that still escapes them is a bug. Rather than leave the process half-broken, it logs
 * the error, hands the runs in hand back (their records say the attempt failed and will be
 * retried; BullMQ delivers them again once their locks expire), and exits non-zero so that a
 * supervisor starts a fresh worker.
 */
export function installLastResort(opts: {
  log: Logger;
  databaseUrl: string;
  runsInHand: () => number[];
  /** Exit code of the crashed process. */
  exitCode: number;
}): () => void {
  let handling = false;
  const onFatal = (err: unknown): void => {
    if (handling) return;
    handling = true;
    const runs = opts.runsInHand();
    opts.log.fatal(
      { err: describeError(err), stack: err instanceof Error ? err.stack : undefined, runs },
      'uncaught error: handing the runs in hand back and exiting',
    );
    // A process in an unknown state gets a few seconds to write these records, no more.
    const hard = setTimeout(() => process.exit(opts.exitCode), 10_000);
    hard.unref();
    void markRunsRetryable(opts.databaseUrl, runs, describeError(err))
      .catch((e: unknown) => opts.log.error({ err: describeError(e) }, 'could not record the runs in hand'))
      .finally(() => {
        opts.log.flush?.();
        process.exit(opts.exitCode);
      });
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  return () => {
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
  };
}

/** Longer than a deferred claim can take to be sent (100 ms after its step starts) and to land. */
const LATE_CLAIM_MS = 1000;

/**
 * Marks `runs` (if still running) as an attempt that failed for a transient reason, on a connection
 * of its own. A run in hand may still say 'queued': a first SQL step claims its run only once it
 * outlasts a moment (runner.claim_run), so a crash before that finds it unclaimed.
 */
async function markRunsRetryable(databaseUrl: string, runs: number[], why: string): Promise<void> {
  if (runs.length === 0) return;
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const error = `attempt failed, will retry: the worker crashed (${why})`;
    const mark = (): Promise<unknown> =>
      client.query(
        `WITH runs AS (
         UPDATE runner.runs SET status = 'queued', error = $2
         WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'running')
         RETURNING id)
       UPDATE runner.run_steps SET status = 'failed', finished_at = now(), error = $2
       WHERE status = 'running' AND run_id IN (SELECT id FROM runs)`,
        [runs, error],
      );
    await mark();
    // That claim may still be on its way: its timer fires while this runs (the event loop goes on),
    // and a claim marks the run running again. Once it has landed, the mark is made again.
    await new Promise((resolve) => setTimeout(resolve, LATE_CLAIM_MS));
    await mark();
  } finally {
    await client.end().catch(() => undefined);
  }
}
