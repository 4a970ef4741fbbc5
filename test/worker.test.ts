import { hostname } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BENCH_DDL, generateCsv } from '../benchmarks/generate.js';
import { createApp, type App } from '../src/app.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import { jobIdOf, type RunJobData } from '../src/runner/queue.js';
import { startWorker } from '../src/runner/worker.js';
import { erp, killChildren, REDIS_URL, startWorkerProcess, waitFor, type Child } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';

/**
 * `erp worker` on the real Redis and PostgreSQL: a job runs end to end and `erp run` follows it;
 * a worker killed with SIGKILL mid-load hands the run to another with every row loaded once;
 * SIGTERM lets the run in hand finish; a large load never starves the event loop that renews
 * BullMQ's job locks.
 */

let db: TestDatabase;
let home: TestHome;
let prefix: string;
let queue: Queue<RunJobData>;
let redis: Redis;
let env: Record<string, string>;

const KILL_ROWS = 300_000;
const BIG_ROWS = 1_000_000;

const FILES: Record<string, string> = {
  'pipelines/items.yaml': `
source: { kind: file, path: 'in/items*.csv' }
format: { kind: csv }
validate:
  fields:
    sku: { type: string, required: true }
    price: { type: decimal, precision: 10, scale: 2 }
sink: { kind: postgres, table: public.items, mode: upsert, key: [sku] }
`,
  'in/items.csv': 'sku,price\nA,1.00\nB,2.50\n',
  'jobs/month-end.yaml': `
description: Stamps the period, then imports the item master
params:
  period: { type: period }
steps:
  - sql: t/stamp.sql
  - pipeline: items
`,
  // Long enough for live progress (PROGRESS_AFTER_MS).
  'sql/t/stamp.sql': `DO $$ BEGIN PERFORM pg_sleep(0.5); END $$;\nINSERT INTO month_log (period) VALUES (:'period');\n`,
  'pipelines/bench.yaml': `
source: { kind: file, path: 'in/bench.csv' }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
    price: { type: decimal, precision: 12, scale: 2 }
sink: { kind: postgres, table: public.bench }
`,
  'pipelines/big.yaml': `
source: { kind: file, path: 'in/big.csv' }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
    price: { type: decimal, precision: 12, scale: 2 }
sink: { kind: postgres, table: public.big }
`,
  'pipelines/big-copy.yaml': `
source: { kind: file, path: 'in/big.csv' }
format: { kind: csv }
sink: { kind: postgres, table: public.big_copy }
`,
  'jobs/slow.yaml': `
steps:
  - sql: t/slow.sql
`,
  'sql/t/slow.sql': `SELECT pg_sleep(2);\nINSERT INTO slow_done VALUES (1);\n`,
  'jobs/no-retry.yaml': `
description: A run that must not be retried after a failure, but may be handed back
retries: { attempts: 1 }
steps:
  - sql: t/slower.sql
`,
  'sql/t/slower.sql': `INSERT INTO slow_done VALUES (2);\nSELECT pg_sleep(3);\n`,
  'jobs/quick.yaml': `
steps:
  - sql: t/quick.sql
`,
  'sql/t/quick.sql': `SELECT 1;\n`,
  'jobs/quick-then-slow.yaml': `
steps:
  - sql: t/quick.sql
  - sql: t/pause.sql
`,
  'sql/t/pause.sql': `DO $$ BEGIN PERFORM pg_sleep(0.5); END $$;\n`,
};

async function one<T>(sql: string, params: unknown[] = []): Promise<T> {
  return (await db.pool.query(sql, params)).rows[0] as T;
}

/** Resolves once a COPY into public.`table` is running in the server. */
async function untilCopying(table: string): Promise<void> {
  await waitFor(
    async () =>
      (
        await one<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()
             AND query LIKE $1 AND state = 'active'`,
          // The file's BEGIN (and its ledger row) travel in the same message, ahead of the COPY.
          [`%COPY "public"."${table}"%`],
        )
      ).n > 0,
    30_000,
    `the COPY into ${table} to start`,
    10,
  );
}

async function submit(name: string, given: Record<string, string> = {}): Promise<number> {
  const runnable = await resolveRunnable(home.dir, name);
  const params = resolveParams(runnable.job, given);
  const runId = (await createQueuedRun(db.pool, runnable, params))!;
  await enqueueRun(queue, runId, runnable, params);
  return runId;
}

async function status(id: number): Promise<string> {
  return (await one<{ status: string }>('SELECT status FROM runner.runs WHERE id = $1', [id])).status;
}

async function waitStatus(id: number, want: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => (await status(id)) === want, timeoutMs, `run ${id} to be ${want}`, 50);
}

/** The BullMQ job of a run once it left the active list (the run is final in PostgreSQL a moment before). */
async function settledJob(id: number): Promise<Job<RunJobData>> {
  return waitFor(
    async () => {
      const job = await queue.getJob(jobIdOf(id));
      const state = await job?.getState();
      return state === 'completed' || state === 'failed' ? job : null;
    },
    10_000,
    `BullMQ job of run ${id} to settle`,
  );
}

/** Stops a worker process politely and checks it exited cleanly. */
async function stopWorker(w: Child): Promise<void> {
  w.process.kill('SIGTERM');
  expect(await w.exited).toBe(0);
}

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, { prefix, queue, redis }] = [d, h, q];
  await db.pool.query(`
    CREATE TABLE items (sku text PRIMARY KEY, price numeric(10,2));
    CREATE TABLE month_log (period text NOT NULL);
    CREATE TABLE bench ${BENCH_DDL};
    CREATE TABLE big ${BENCH_DDL};
    CREATE TABLE big_copy ${BENCH_DDL};
    CREATE TABLE slow_done (n int);
  `);
  await home.write(FILES);
  await generateCsv(path.join(home.dir, 'in/bench.csv'), KILL_ROWS);
  await generateCsv(path.join(home.dir, 'in/big.csv'), BIG_ROWS);
  env = { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_QUEUE_PREFIX: prefix, REDIS_URL };
});

// A test that failed half-way leaves no worker behind to take the next test's runs.
afterEach(() => killChildren());

afterAll(killChildren);

describe('erp worker', () => {
  it('runs a SQL step and a pipeline step, and erp run follows it to the end', async () => {
    const worker = await startWorkerProcess(env);
    const r = await erp(['run', 'month-end', '--period', '2026-11'], { ...env, ERP_USER: 'operator-7' });
    expect(r.code, r.stderr).toBe(0);
    const id = Number(/^run (\d+) queued/m.exec(r.stderr)?.[1]);
    // Progress from the worker reaches the following CLI as plain lines (stderr is not a TTY).
    expect(r.stderr).toBe(
      [
        'plan: 1. sql t/stamp.sql; 2. pipeline items',
        `run ${id} queued: job month-end period=2026-11`,
        'step 1/2 sql t/stamp.sql: running',
        'step 1/2 sql t/stamp.sql: succeeded',
        'step 2/2 pipeline items: running',
        'step 2/2 pipeline items: succeeded',
        '',
      ].join('\n'),
    );
    // The outcome as the run's records tell it, as an inline run prints it.
    expect(r.stdout).toBe(
      [
        `month-end period=2026-11 (run ${id})`,
        '  sql t/stamp.sql: INSERT 1',
        '  in/items.csv: loaded — read 2, loaded 2, rejected 0',
        'succeeded: read 2, loaded 2, rejected 0',
        'succeeded',
        '',
      ].join('\n'),
    );
    const host = hostname();
    const show = await erp(['runs', 'show', String(id)], env);
    expect(show.stdout).toMatch(
      new RegExp(
        `^run ${id}: job month-end — succeeded\\n  requested by operator-7 on ${host} \\(cli\\) at .+\\n  parameters: \\{"period":"2026-11"\\}\\n`,
      ),
    );
    expect(show.stdout).toContain('  rows read 2, loaded 2, rejected 0; files loaded 1, skipped 0\n');
    expect(show.stdout).toContain('steps:\n  1. sql t/stamp.sql: succeeded\n');
    expect(show.stdout).toContain('files:\n  in/items.csv: loaded — read 2, loaded 2, rejected 0');

    // The audit record: who, from where, with what, executed by the worker process.
    const run = await one<Record<string, unknown>>(
      `SELECT kind, name, status, params, requested_by, host, pid, trigger, attempts, rows_read::int, rows_loaded::int,
         files_loaded, error, error_kind, started_at IS NOT NULL AND finished_at >= started_at AS timed
       FROM runner.runs WHERE id = $1`,
      [id],
    );
    expect(run).toEqual({
      kind: 'job',
      name: 'month-end',
      status: 'succeeded',
      params: { period: '2026-11' },
      requested_by: 'operator-7',
      host,
      pid: worker.process.pid,
      trigger: 'cli',
      attempts: 1,
      rows_read: 2,
      rows_loaded: 2,
      files_loaded: 1,
      error: null,
      error_kind: null,
      timed: true,
    });
    const steps = await db.pool.query(
      `SELECT position, kind, name, status, detail, finished_at >= started_at AS timed
       FROM runner.run_steps WHERE run_id = $1 ORDER BY position`,
      [id],
    );
    expect(steps.rows).toMatchObject([
      { position: 1, kind: 'sql', name: 't/stamp.sql', status: 'succeeded', timed: true },
      { position: 2, kind: 'pipeline', name: 'items', status: 'succeeded', timed: true },
    ]);
    expect(steps.rows[0].detail).toMatchObject({ command: 'INSERT', row_count: 1 });
    expect(steps.rows[1].detail).toMatchObject({
      rows_read: 2,
      rows_loaded: 2,
      rows_rejected: 0,
      files: [{ file: 'in/items.csv', status: 'loaded', rows_loaded: 2 }],
    });
    expect((await db.pool.query('SELECT period FROM month_log')).rows).toEqual([{ period: '2026-11' }]);
    expect((await db.pool.query('SELECT sku, price::text FROM items ORDER BY sku')).rows).toEqual([
      { sku: 'A', price: '1.00' },
      { sku: 'B', price: '2.50' },
    ]);
    await stopWorker(worker);
  });

  it('sends no live progress for a run that ends at once; the follower tells its steps from the record', async () => {
    const worker = await startWorkerProcess(env);
    const r = await erp(['run', 'quick'], env);
    expect(r.code, r.stderr).toBe(0);
    const id = Number(/^run (\d+) queued/m.exec(r.stderr)?.[1]);
    // No 'running' line: those come only from live events, and a run this short sends none.
    expect(r.stderr).toBe(
      [
        'plan: 1. sql t/quick.sql',
        `run ${id} queued: job quick`,
        'step 1/1 sql t/quick.sql: succeeded',
        '',
      ].join('\n'),
    );
    expect(await status(id)).toBe('succeeded');

    // A run that goes live after its first step ended tells that step first: the lines keep their order.
    const slow = await erp(['run', 'quick-then-slow'], env);
    expect(slow.code, slow.stderr).toBe(0);
    const slowId = Number(/^run (\d+) queued/m.exec(slow.stderr)?.[1]);
    expect(slow.stderr).toBe(
      [
        'plan: 1. sql t/quick.sql; 2. sql t/pause.sql',
        `run ${slowId} queued: job quick-then-slow`,
        'step 1/2 sql t/quick.sql: succeeded',
        'step 2/2 sql t/pause.sql: running',
        'step 2/2 sql t/pause.sql: succeeded',
        '',
      ].join('\n'),
    );
    await stopWorker(worker);
  });

  it('hands a run whose worker was killed with SIGKILL to another worker; each row is loaded once', async () => {
    // Short locks, so the stall is noticed in seconds rather than the default half minute.
    const short = { ...env, ERP_WORKER_LOCK_MS: '2000', ERP_WORKER_STALLED_MS: '1000' };
    // Workers of a queue share one stalled check, throttled by a key that lives as long as the
    // stalled interval of the worker that last ran it: the previous test's (default, 30 s) one.
    await redis.del(`${prefix}:runs:stalled-check`);
    const first = await startWorkerProcess(short);
    const id = await submit('bench');
    await untilCopying('bench');
    first.process.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    expect(await status(id)).toBe('running');
    const killedAt = Date.now();

    const second = await startWorkerProcess(short);
    await waitStatus(id, 'succeeded', 60_000);
    // The stall was noticed by the second worker (lock 2 s, checks every 1 s), not by luck.
    expect(second.stderr()).toContain('run stalled; it will be picked up again');
    expect(Date.now() - killedAt).toBeLessThan(45_000);

    expect(
      await one(
        `SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids, min(id)::int AS lo, max(id)::int AS hi FROM bench`,
      ),
    ).toEqual({ n: KILL_ROWS, ids: KILL_ROWS, lo: 1, hi: KILL_ROWS });
    expect(
      await one(
        `SELECT status, attempts, pid, rows_loaded::int, files_loaded, error FROM runner.runs WHERE id = $1`,
        [id],
      ),
    ).toEqual({
      status: 'succeeded',
      attempts: 2,
      pid: second.process.pid,
      rows_loaded: KILL_ROWS,
      files_loaded: 1,
      error: null,
    });
    // The killed attempt left nothing: no file record, no ledger row; the second has one of each.
    const files = await db.pool.query(
      'SELECT status, rows_loaded::int FROM runner.run_files WHERE run_id = $1',
      [id],
    );
    expect(files.rows).toEqual([{ status: 'loaded', rows_loaded: KILL_ROWS }]);
    expect(
      await one(`SELECT count(*)::int AS n FROM runner.ingested_files WHERE pipeline = 'bench'`),
    ).toEqual({ n: 1 });
    expect(await (await settledJob(id)).getState()).toBe('completed');
    await stopWorker(second);
  }, 90_000);

  it('on SIGTERM finishes the run in hand, takes no new one, and exits 0', async () => {
    const worker = await startWorkerProcess(env);
    const slow = await submit('slow');
    await waitFor(
      async () =>
        (
          await one<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()
               AND query LIKE '%pg_sleep(2)%' AND state = 'active' AND pid <> pg_backend_pid()`,
          )
        ).n > 0,
      10_000,
      'the slow statement to start',
    );
    worker.process.kill('SIGTERM');
    await waitFor(() => worker.stderr().includes('worker stopping'), 5000, 'the worker to say it stops');
    const later = await submit('quick');
    const code = await worker.exited;
    const exitedAt = new Date();
    expect(code).toBe(0);
    const run = await one<{ status: string; attempts: number; finished_at: Date }>(
      'SELECT status, attempts, finished_at FROM runner.runs WHERE id = $1',
      [slow],
    );
    expect(run).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(run.finished_at.getTime()).toBeLessThanOrEqual(exitedAt.getTime());
    expect(await one('SELECT count(*)::int AS n FROM slow_done')).toEqual({ n: 1 });
    expect(await (await queue.getJob(jobIdOf(slow)))!.getState()).toBe('completed');
    // The run queued after the signal was left for another worker.
    expect(await status(later)).toBe('queued');
    expect(await (await queue.getJob(jobIdOf(later)))!.getState()).toBe('waiting');
    const next = await startWorkerProcess(env);
    await waitStatus(later, 'succeeded', 10_000);
    await stopWorker(next);
  }, 30_000);

  it('on SIGTERM hands back a run that outlasts the grace period, and another worker finishes it', async () => {
    const worker = await startWorkerProcess({ ...env, ERP_SHUTDOWN_GRACE_MS: '300' });
    const id = await submit('no-retry');
    await waitFor(
      async () =>
        (
          await one<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()
               AND query LIKE '%pg_sleep(3)%' AND state = 'active' AND pid <> pg_backend_pid()`,
          )
        ).n > 0,
      10_000,
      'the statement to start',
    );
    const signalled = Date.now();
    worker.process.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(2500);
    // Back in the queue, not failed, although the job allows a single attempt; its write rolled back.
    expect(await one('SELECT status, attempts, error FROM runner.runs WHERE id = $1', [id])).toEqual({
      status: 'queued',
      attempts: 1,
      error: 'the worker running it shut down; the run went back to the queue',
    });
    expect(await one('SELECT count(*)::int AS n FROM slow_done WHERE n = 2')).toEqual({ n: 0 });
    expect(await (await queue.getJob(jobIdOf(id)))!.getState()).toBe('waiting');
    const next = await startWorkerProcess(env);
    await waitStatus(id, 'succeeded', 15_000);
    expect(await one('SELECT attempts, error FROM runner.runs WHERE id = $1', [id])).toEqual({
      attempts: 2,
      error: null,
    });
    expect(await one('SELECT count(*)::int AS n FROM slow_done WHERE n = 2')).toEqual({ n: 1 });
    await stopWorker(next);
  }, 30_000);

  it('erp cancel stops a pipeline in the middle of its COPY and rolls the file back', async () => {
    const worker = await startWorkerProcess(env);
    const id = await submit('big-copy');
    await untilCopying('big_copy');
    const asked = Date.now();
    const r = await erp(['cancel', String(id)], env);
    expect(r.code, r.stderr).toBe(0);
    await waitStatus(id, 'cancelled', 10_000);
    expect(Date.now() - asked).toBeLessThan(5000);
    expect(
      await one(`SELECT status, attempts, error, error_kind FROM runner.runs WHERE id = $1`, [id]),
    ).toEqual({ status: 'cancelled', attempts: 1, error: 'run cancelled', error_kind: 'cancelled' });
    // Not a row of the file is visible, the ledger does not hold it, and its record says why.
    expect(await one('SELECT count(*)::int AS n FROM big_copy')).toEqual({ n: 0 });
    expect(
      await one(`SELECT count(*)::int AS n FROM runner.ingested_files WHERE pipeline = 'big-copy'`),
    ).toEqual({ n: 0 });
    expect(
      (await db.pool.query('SELECT status, message FROM runner.run_files WHERE run_id = $1', [id])).rows,
    ).toEqual([{ status: 'failed', message: 'run cancelled' }]);
    expect(await (await settledJob(id)).getState()).toBe('failed');
    await stopWorker(worker);
  }, 60_000);

  it('keeps the event loop responsive during a 1M-row load, so the job never stalls', async () => {
    const app: App = createApp({ ...env, LOG_LEVEL: 'silent' }, pino({ level: 'silent' }));
    const worker = await startWorker(app, { lockDuration: 2000, stalledInterval: 1000, graceMs: 1000 });
    const stalled: string[] = [];
    worker.worker.on('stalled', (jobId) => stalled.push(jobId));
    const delay = monitorEventLoopDelay({ resolution: 10 });
    try {
      const started = Date.now();
      const id = await submit('big');
      delay.enable();
      await waitStatus(id, 'succeeded', 90_000);
      delay.disable();
      const seconds = (Date.now() - started) / 1000;
      const maxMs = delay.max / 1e6;
      const p99Ms = delay.percentile(99) / 1e6;
      console.log(
        `event loop during a ${BIG_ROWS}-row load through the worker (${seconds.toFixed(1)} s): max ${maxMs.toFixed(1)} ms, p99 ${p99Ms.toFixed(1)} ms, mean ${(delay.mean / 1e6).toFixed(1)} ms`,
      );
      // BullMQ renews the lock every lockDuration / 2 = 1000 ms; the loop must never be held near that.
      expect(maxMs).toBeLessThan(500);
      expect(stalled).toEqual([]);
      expect(
        await one(`SELECT status, attempts, rows_loaded::int FROM runner.runs WHERE id = $1`, [id]),
      ).toEqual({ status: 'succeeded', attempts: 1, rows_loaded: BIG_ROWS });
      expect(await one(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM big`)).toEqual({
        n: BIG_ROWS,
        ids: BIG_ROWS,
      });
      const job = await settledJob(id);
      expect(await job.getState()).toBe('completed');
      expect({ attemptsStarted: job.attemptsStarted, stalledCounter: job.stalledCounter }).toEqual({
        attemptsStarted: 1,
        stalledCounter: 0,
      });
    } finally {
      delay.disable();
      await worker.close();
      await app.close();
    }
  }, 120_000);
});
