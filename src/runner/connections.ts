/**
 * The PostgreSQL connections a worker opens, and ERP_PG_MAX_CONNECTIONS. Kept apart from the worker
 * so the CLI can size the process's pool before it loads BullMQ.
 *
 * A run in hand holds up to two connections at once: its step's transaction and a short query beside
 * it (a record, a cancel). With fewer than two per run, every connection can end up held by a run
 * waiting for one more: a deadlock. One more serves the worker's own records (reconciler, health);
 * the runner session (liveness lock, LISTEN for cancels) is a connection of its own, outside the pool.
 */

import { UserError } from '../errors.js';

/** PostgreSQL connections one run in hand may hold at once. */
const CONNECTIONS_PER_RUN = 2;

/** The connections a worker needs at `concurrency`: its runs' pool, plus its runner session. */
export function workerConnections(concurrency: number): { pool: number; total: number } {
  const pool = concurrency * CONNECTIONS_PER_RUN + 1;
  return { pool, total: pool + 1 };
}

/**
 * The pool size of `erp worker --concurrency <n>` under ERP_PG_MAX_CONNECTIONS: the whole budget
 * less the runner session, or refused (exit 2) when the runs would not fit in it.
 */
export function workerPoolSize(concurrency: number, budget: number | undefined): number {
  const need = workerConnections(concurrency);
  if (budget === undefined) return need.pool;
  if (need.total > budget) {
    const fits = Math.floor((budget - 2) / CONNECTIONS_PER_RUN);
    throw new UserError(
      `--concurrency ${concurrency} needs ${need.total} PostgreSQL connections (${CONNECTIONS_PER_RUN} per run in hand, 1 for the worker's own records, 1 for its runner session) but ERP_PG_MAX_CONNECTIONS is ${budget}: ` +
        (fits >= 1
          ? `lower --concurrency to ${fits} or raise ERP_PG_MAX_CONNECTIONS`
          : 'raise ERP_PG_MAX_CONNECTIONS'),
      2,
    );
  }
  return budget - 1;
}
