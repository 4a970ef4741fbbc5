import pg from 'pg';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import type { ClaimGate } from '../jobs/claims.js';

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
  /** The worker's claim gate: closed before the hand-back, so no claim lands after it. */
  claims: ClaimGate;
  /** Exit code of the crashed process. */
  exitCode: number;
}): () => void {
  let handling = false;
  const onFatal = (err: unknown): void => {
    if (handling) return;
    handling = true;
    opts.log.fatal(
      {
        err: describeError(err),
        stack: err instanceof Error ? err.stack : undefined,
        runs: opts.runsInHand(),
      },
      'uncaught error: handing the runs in hand back and exiting',
    );
    // A process in an unknown state gets a few seconds to write these records, no more.
    const hard = setTimeout(() => process.exit(opts.exitCode), 10_000);
    hard.unref();
    void handBack(opts.databaseUrl, opts.claims, opts.runsInHand, describeError(err))
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

/**
 * Hands the runs in hand back: marks each (if still queued or running) as an attempt that failed
 * for a transient reason, on a connection of its own. First the claim gate closes and the claims
 * on their way land: a run in hand may still say 'queued' (a first SQL step claims its run only
 * once it outlasts a moment, runner.claim_run), and such a claim must not mark it running again
 * after this record. The gate makes that impossible rather than unlikely.
 */
export async function handBack(
  databaseUrl: string,
  claims: ClaimGate,
  runsInHand: () => number[],
  why: string,
): Promise<void> {
  // Those in hand now, and any taken while the claims on their way land (never claimed, but queued).
  const inHand = new Set(runsInHand());
  await claims.stop();
  for (const id of runsInHand()) inHand.add(id);
  const runs = [...inHand];
  if (runs.length === 0) return;
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const error = `attempt failed, will retry: the worker crashed (${why})`;
    await client.query(
      `WITH runs AS (
         UPDATE runner.runs SET status = 'queued', error = $2
         WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'running')
         RETURNING id)
       UPDATE runner.run_steps SET status = 'failed', finished_at = now(), error = $2
       WHERE status = 'running' AND run_id IN (SELECT id FROM runs)`,
      [runs, error],
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
