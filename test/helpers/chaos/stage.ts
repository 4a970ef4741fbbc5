import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { createPool } from '../../../src/db/pool.js';
import { migrate } from '../../../src/db/migrate.js';
import { QUEUE_NAME, type RunJobData } from '../../../src/runner/queue.js';
import { makeJobsHome, startErp, waitFor, type Child } from '../runner.js';
import { sqlOn, startPgCluster, startRedis, type PgCluster, type RedisServer } from './servers.js';

/**
 * What every chaos scenario stands on: the suite's own PostgreSQL cluster and Redis (started once,
 * killed and restarted by scenarios), and per scenario a fresh database cloned from a migrated
 * template, a project home, a queue prefix, and helpers to start `erp` processes on them and to
 * check what landed.
 */

export interface Servers {
  pg: PgCluster;
  redis: RedisServer;
  template: string;
}

/** Starts the suite's servers, or says why it cannot (the suite then skips). */
export async function startServers(): Promise<Servers | string> {
  let pgc: PgCluster | undefined;
  try {
    pgc = await startPgCluster();
    const redis = await startRedis();
    const template = 'erp_chaos_template';
    await sqlOn(pgc.url(), `CREATE DATABASE ${template}`);
    const pool = createPool(pgc.url(template), 1);
    try {
      await migrate(pool, 'sql');
    } finally {
      await pool.end();
    }
    return { pg: pgc, redis, template };
  } catch (err) {
    await pgc?.destroy().catch(() => undefined);
    return `the chaos suite cannot start its own servers (${(err as Error).message.split('\n')[0]})`;
  }
}

export interface Stage {
  url: string;
  pool: pg.Pool;
  home: string;
  env: Record<string, string>;
  queue: Queue<RunJobData>;
  /** `erp worker` on this stage; waits until it started. */
  worker(extra?: Record<string, string>, nodeArgs?: string[]): Promise<Child>;
  /** Starts `erp …` on this stage. */
  erp(args: string[], extra?: Record<string, string>): Child;
  one<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T>;
  /** Rows of `table`: how many, and how many distinct values of `key`. */
  rows(table: string, key: string): Promise<{ n: number; keys: number }>;
  /** runner.runs of one run. */
  run(
    id: number,
  ): Promise<{ status: string; attempts: number; error: string | null; error_kind: string | null }>;
  waitStatus(id: number, status: string, timeoutMs?: number): Promise<void>;
  /** Ledger entries of `pipeline`. */
  ledger(pipeline: string): Promise<number>;
  close(): Promise<void>;
}

const CLI = path.resolve('dist/cli.js');

export async function makeStage(
  servers: Servers,
  files: Record<string, string>,
  ddl: string,
): Promise<Stage> {
  const name = `chaos_${randomBytes(4).toString('hex')}`;
  await sqlOn(servers.pg.url(), `CREATE DATABASE ${name} TEMPLATE ${servers.template}`);
  const url = servers.pg.url(name);
  await sqlOn(url, ddl);
  const pool = createPool(url, 3);
  const home = await makeJobsHome(files);
  const prefix = `chaos-${randomBytes(4).toString('hex')}`;
  const env = {
    DATABASE_URL: url,
    REDIS_URL: servers.redis.url,
    ERP_HOME: home.dir,
    ERP_QUEUE_PREFIX: prefix,
    ERP_RECONCILE_MS: '1000',
    ERP_WORKER_LOCK_MS: '2000',
    ERP_WORKER_STALLED_MS: '1000',
    ERP_SHUTDOWN_GRACE_MS: '30000',
  };
  const redis = new Redis(servers.redis.url, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  const queue = new Queue<RunJobData>(QUEUE_NAME, { connection: redis, prefix });
  queue.on('error', () => undefined);
  const spawned = new Set<ChildProcess>();
  const one = async <T>(sql: string, params: unknown[] = []): Promise<T> =>
    (await pool.query(sql, params)).rows[0] as T;
  const stage: Stage = {
    url,
    pool,
    home: home.dir,
    env,
    queue,
    async worker(extra = {}, nodeArgs = []) {
      // Like startWorkerProcess, with node options (a preload) and a longer wait: on a loaded machine
      // a worker takes seconds to start.
      const child = spawn(process.execPath, [...nodeArgs, CLI, 'worker'], {
        cwd: home.dir,
        env: { ...process.env, ...env, LOG_LEVEL: 'info', ...extra },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      spawned.add(child);
      child.on('close', () => spawned.delete(child));
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const w: Child = {
        process: child,
        stdout: () => out,
        stderr: () => err,
        exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
      };
      await waitFor(
        () => err.includes('"msg":"worker started"'),
        60_000,
        () => `worker start (${err})`,
      );
      return w;
    },
    erp: (args, extra = {}) => startErp(args, { ...env, ...extra }),
    one,
    rows: (table, key) => one(`SELECT count(*)::int AS n, count(DISTINCT ${key})::int AS keys FROM ${table}`),
    run: (id) => one('SELECT status, attempts, error, error_kind FROM runner.runs WHERE id = $1', [id]),
    async waitStatus(id, status, timeoutMs = 60_000) {
      await waitFor(
        async () => (await stage.run(id).catch(() => null))?.status === status,
        timeoutMs,
        () => `run ${id} to be ${status}`,
        100,
      );
    },
    ledger: async (pipeline) =>
      (
        await one<{ n: number }>('SELECT count(*)::int AS n FROM runner.ingested_files WHERE pipeline = $1', [
          pipeline,
        ])
      ).n,
    async close() {
      for (const c of spawned) c.kill('SIGKILL');
      await queue.close().catch(() => undefined);
      redis.disconnect();
      await pool.end().catch(() => undefined);
      await home.remove();
      await sqlOn(servers.pg.url(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    },
  };
  return stage;
}

/** Resolves once a COPY into `table` runs in the server of `stage`. */
export async function untilCopying(stage: Stage, table: string): Promise<void> {
  await waitFor(
    async () =>
      (
        await stage.one<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()
             AND query LIKE $1 AND state = 'active'`,
          [`COPY "public"."${table}"%`],
        )
      ).n > 0,
    60_000,
    `the COPY into ${table} to start`,
    20,
  );
}

/** Resolves once a statement containing `text` runs in the server of `stage`. */
export async function untilRunning(stage: Stage, text: string): Promise<void> {
  await waitFor(
    async () =>
      (
        await stage.one<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()
             AND query LIKE $1 AND state = 'active' AND pid <> pg_backend_pid()`,
          [`%${text}%`],
        )
      ).n > 0,
    60_000,
    `a statement with ${text} to run`,
    20,
  );
}

/** The id of the run `erp run` said it queued. */
export async function queuedRunId(child: Child): Promise<number> {
  const m = await waitFor(
    () => /run (\d+) queued/.exec(child.stderr()),
    30_000,
    () => `erp run to queue its run (stderr: ${child.stderr()})`,
  );
  return Number(m[1]);
}

/** No stack trace, no unhandled error in a process's output. */
export function clean(text: string): boolean {
  return !/\n\s+at |Unhandled|uncaught|MaxListenersExceeded/i.test(text);
}
