import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { createApp } from '../src/app.js';
import { createPool, queryOnce } from '../src/db/pool.js';
import { executeRun } from '../src/jobs/execute.js';
import { loadStoredRun } from '../src/jobs/load-run.js';
import { resolveRunnable } from '../src/jobs/definition.js';
import { openRunnerSession } from '../src/jobs/session.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import { migrate } from '../src/db/migrate.js';
import { createQueue, redisConnection } from '../src/runner/queue.js';
import { startWorker } from '../src/runner/worker.js';

/**
 * Queue overhead: trivial jobs through erp's worker path against BullMQ's own Worker with a no-op
 * processor, on the same Redis, in the same run, at concurrency 1 and 16.
 *
 *   erp:        createQueuedRun (runner.runs) + enqueueRun ─► startWorker ─► executeRun: the run
 *               claimed, one SQL step `SELECT 1` in its own transaction, committed with its record ─► completed
 *   BullMQ:     Queue.addBulk ─► new Worker(no-op) ─► completed
 *   BullMQ+SQL: the same, its processor running the step's SQL in a transaction of its own
 *               (`BEGIN; SELECT 1; COMMIT`, one round trip) on a pg pool, and recording nothing
 *
 * erp / BullMQ is the figure. erp / BullMQ+SQL leaves the step's own work out of it: what
 * is left is the runner's cost, the recording of each run and step in PostgreSQL above all.
 *
 * Jobs are queued first, then a worker is started and timed until the last one completed, so the
 * figure is the worker's throughput (the erp submission rate is reported beside it). The issue's
 * target is erp / BullMQ > 0.5.
 *
 * Runs against DATABASE_URL's server (a database of its own, dropped afterwards) and REDIS_URL
 * (a queue prefix of its own, removed afterwards). `npx tsx benchmarks/queue.ts [jobs]`.
 */

export interface QueueFigures {
  concurrency: number;
  jobs: number;
  /** Runs per second through `startWorker`. */
  erpJobsPerSec: number;
  /** Runs recorded and queued per second by createQueuedRun + enqueueRun (16 submitters). */
  erpSubmitPerSec: number;
  /**
   * Runs per second through loadStoredRun + executeRun called directly, `concurrency` at a time, with
   * no queue: what the PostgreSQL side of a run costs on its own.
   */
  erpDirectPerSec: number;
  /** Jobs per second through BullMQ's Worker with a no-op processor. */
  bullmqJobsPerSec: number;
  /** Jobs per second through BullMQ's Worker whose processor runs the step's SQL in a transaction. */
  bullmqSqlJobsPerSec: number;
  /** erp / BullMQ. */
  ratio: number;
  /** erp / BullMQ+SQL. */
  sqlRatio: number;
}

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const JOB_OPTS = { removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 }, attempts: 1 };

/** Resolves once `worker` completed `n` jobs; the time from the call, in seconds. */
export function timeCompletions(worker: Worker, n: number): Promise<number> {
  const started = performance.now();
  let done = 0;
  return new Promise((resolve, reject) => {
    worker.on('completed', () => {
      if (++done === n) resolve((performance.now() - started) / 1000);
    });
    worker.on('failed', (job, err) => reject(new Error(`job ${job?.id} failed: ${err.message}`)));
  });
}

async function bullmqBaseline(
  prefix: string,
  jobs: number,
  concurrency: number,
  processor: () => Promise<unknown> = async () => undefined,
): Promise<number> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('noop', { connection, prefix });
  try {
    for (let i = 0; i < jobs; i += 1000) {
      const n = Math.min(1000, jobs - i);
      await queue.addBulk(
        Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { i: i + k }, opts: JOB_OPTS })),
      );
    }
    const worker = new Worker('noop', processor, {
      connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
      prefix,
      concurrency,
      autorun: false,
    });
    const done = timeCompletions(worker, jobs);
    void worker.run();
    const seconds = await done;
    await worker.close();
    await worker.disconnect();
    return jobs / seconds;
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
  }
}

async function erpPath(
  databaseUrl: string,
  home: string,
  prefix: string,
  jobs: number,
  concurrency: number,
): Promise<{ perSec: number; submitPerSec: number; directPerSec: number }> {
  const app = createApp(
    { DATABASE_URL: databaseUrl, ERP_HOME: home, ERP_QUEUE_PREFIX: prefix, REDIS_URL, LOG_LEVEL: 'silent' },
    pino({ level: 'silent' }),
  );
  const redis = redisConnection(REDIS_URL, 'worker');
  const queue = createQueue(redis, prefix);
  try {
    const runnable = await resolveRunnable(home, 'trivial');
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < jobs) {
          next++;
          const runId = (await createQueuedRun(app.pool, runnable, {}, { requestedBy: 'bench' }))!;
          await enqueueRun(queue, runId, runnable, {});
        }
      }),
    );
    const submitPerSec = jobs / ((performance.now() - t0) / 1000);
    const worker = await startWorker(app, { concurrency });
    const seconds = await timeCompletions(worker.worker, jobs);
    await worker.close();
    const { rows } = await app.pool.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM runner.runs GROUP BY status`,
    );
    if (rows.length !== 1 || rows[0]!.status !== 'succeeded' || rows[0]!.n !== jobs) {
      throw new Error(`expected ${jobs} succeeded runs, found ${JSON.stringify(rows)}`);
    }
    await app.pool.query('TRUNCATE runner.runs CASCADE');

    // The same runs without the queue: read the stored run, execute it.
    const ids: number[] = [];
    for (let i = 0; i < jobs; i++) ids.push((await createQueuedRun(app.pool, runnable, {}))!);
    const pool = createPool(databaseUrl, concurrency * 2 + 1);
    const direct = { ...app, pool };
    const session = await openRunnerSession(databaseUrl);
    const t1 = performance.now();
    let at = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (at < ids.length) {
          const stored = await loadStoredRun(pool, home, ids[at++]!);
          const outcome = await executeRun(direct, {
            runId: stored.runId,
            runnable: stored.runnable,
            params: stored.params,
            dryRun: false,
            signal: new AbortController().signal,
            liveness: session.key,
            firstDelivery: true,
          });
          if (outcome.status !== 'succeeded') throw new Error(`run ${stored.runId}: ${outcome.error}`);
        }
      }),
    );
    const directPerSec = jobs / ((performance.now() - t1) / 1000);
    await session.close();
    await pool.end();
    await app.pool.query('TRUNCATE runner.runs CASCADE');
    return { perSec: jobs / seconds, submitPerSec, directPerSec };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    redis.disconnect();
    await app.close();
  }
}

export async function benchQueue(jobs = 5000): Promise<QueueFigures[]> {
  const tag = randomBytes(4).toString('hex');
  const dbName = `erp_bench_queue_${tag}`;
  const prefix = `bench-queue-${tag}`;
  const url = new URL(DATABASE_URL);
  url.pathname = `/${dbName}`;
  const home = await mkdtemp(path.join(tmpdir(), 'erp-bench-queue-'));
  await queryOnce(DATABASE_URL, `CREATE DATABASE ${dbName}`);
  try {
    const pool = new pg.Pool({ connectionString: url.toString(), max: 1 });
    try {
      await migrate(pool, path.resolve('sql'));
    } finally {
      await pool.end();
    }
    await mkdir(path.join(home, 'jobs'));
    await mkdir(path.join(home, 'sql'));
    await writeFile(
      path.join(home, 'jobs/trivial.yaml'),
      'lock: false\nretries: { attempts: 1 }\nsteps:\n  - sql: one.sql\n',
    );
    await writeFile(path.join(home, 'sql/one.sql'), 'SELECT 1;\n');
    const out: QueueFigures[] = [];
    for (const concurrency of [1, 16]) {
      const bullmqJobsPerSec = await bullmqBaseline(`${prefix}-bullmq`, jobs, concurrency);
      const pool = new pg.Pool({ connectionString: url.toString(), max: concurrency });
      let bullmqSqlJobsPerSec: number;
      try {
        bullmqSqlJobsPerSec = await bullmqBaseline(`${prefix}-bullmq-sql`, jobs, concurrency, () =>
          pool.query('BEGIN; SELECT 1; COMMIT'),
        );
      } finally {
        await pool.end();
      }
      const erp = await erpPath(url.toString(), home, `${prefix}-erp`, jobs, concurrency);
      out.push({
        concurrency,
        jobs,
        erpJobsPerSec: erp.perSec,
        erpSubmitPerSec: erp.submitPerSec,
        erpDirectPerSec: erp.directPerSec,
        bullmqJobsPerSec,
        bullmqSqlJobsPerSec,
        ratio: erp.perSec / bullmqJobsPerSec,
        sqlRatio: erp.perSec / bullmqSqlJobsPerSec,
      });
    }
    return out;
  } finally {
    await queryOnce(DATABASE_URL, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await rm(home, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const jobs = Number(process.argv[2] ?? 5000);
  const figures = await benchQueue(jobs);
  for (const f of figures) {
    console.log(
      `concurrency ${String(f.concurrency).padStart(2)}: erp ${f.erpJobsPerSec.toFixed(0)} runs/s ` +
        `(submitted at ${f.erpSubmitPerSec.toFixed(0)}/s; ${f.erpDirectPerSec.toFixed(0)}/s executed without the queue), BullMQ no-op ${f.bullmqJobsPerSec.toFixed(0)} jobs/s, ` +
        `ratio ${f.ratio.toFixed(3)} (target > 0.5); BullMQ running the same SQL ${f.bullmqSqlJobsPerSec.toFixed(0)} jobs/s, ratio ${f.sqlRatio.toFixed(3)}`,
    );
  }
}
