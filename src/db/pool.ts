import pg from 'pg';
import { isConnectionError, UserError } from '../errors.js';

// A DATE is a calendar day, not an instant: keep it as the text PostgreSQL sends ('2026-11-30')
// instead of a JavaScript Date at local midnight, which shifts with the process's time zone.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

/** A PostgreSQL pool; one per process. `application_name` shows erp sessions in pg_stat_activity. */
export function createPool(databaseUrl: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, application_name: 'erp' });
  // An idle client losing its connection must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  // pg-pool listens for 'error' only on idle clients: a client checked out when the server restarts
  // would emit an unhandled 'error' and end the process. Its query (or COPY stream) fails with the
  // same error, which is where it is handled; the pool discards the broken client on release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  return pool;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** True when `name` is a plain SQL identifier: a letter or _, then letters, digits or _, ≤ 63 chars. */
export function isIdentifier(name: string): boolean {
  return IDENT.test(name);
}

/**
 * Quotes an identifier taken from configuration. Only plain identifiers are accepted, so a config
 * can never smuggle SQL in a table or column name.
 */
export function quoteIdent(name: string): string {
  if (!IDENT.test(name)) {
    throw new UserError(
      `'${name}' is not a valid SQL identifier (letters, digits and _, starting with a letter or _, at most 63 characters)`,
    );
  }
  return `"${name}"`;
}

/** Quotes `schema.table` or `table`. */
export function quoteQualified(name: string): string {
  return name
    .split('.')
    .map((part) => quoteIdent(part))
    .join('.');
}

/** Splits `schema.table` (schema defaults to `public`). */
export function splitQualified(name: string): { schema: string; table: string } {
  const parts = name.split('.');
  if (parts.length === 1) return { schema: 'public', table: parts[0]! };
  if (parts.length === 2) return { schema: parts[0]!, table: parts[1]! };
  throw new UserError(`'${name}' is not a table name: expected table or schema.table`);
}

/**
 * Runs one statement on a connection of its own, outside any pool: for statements that cannot run
 * in a transaction block, such as CREATE DATABASE and DROP DATABASE.
 */
export async function queryOnce(connectionString: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  // A lost connection fails the query below; unheard, its 'error' event would end the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Runs `fn` in a transaction on its own client; rolls back on any error, including an abort.
 * With `rollback` (a dry run) it ends with ROLLBACK even when `fn` succeeds: all done, nothing kept.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  opts: { rollback?: boolean } = {},
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query(opts.rollback ? 'ROLLBACK' : 'COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true;
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

/** How long a runner's own bookkeeping waits for the database to come back (a restart, a failover). */
export const DB_WAIT_MS = 60_000;

/**
 * Runs `fn`, and again with a growing pause while it fails for a reason a retry can fix (the
 * connection was lost, the server is starting or shutting down), for up to `waitMs`. For the
 * records a runner writes after a failure, so a routine restart does not leave a run `running`.
 * `onWait` is told once, at the first failure.
 */
export async function whileUnreachable<T>(
  fn: () => Promise<T>,
  opts: { waitMs?: number; onWait?: (err: unknown) => void; signal?: AbortSignal } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.waitMs ?? DB_WAIT_MS);
  let pause = 200;
  for (let told = false; ;) {
    try {
      return await fn();
    } catch (err) {
      if (!isConnectionError(err) || Date.now() + pause > deadline || opts.signal?.aborted) throw err;
      if (!told) opts.onWait?.(err);
      told = true;
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 2000);
    }
  }
}
