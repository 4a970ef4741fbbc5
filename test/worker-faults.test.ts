import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { openRunnerSession } from '../src/jobs/session.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import { jobIdOf, QUEUE_NAME, type RunJobData } from '../src/runner/queue.js';
import { erp, killChildren, REDIS_URL, startWorkerProcess, waitFor, type Child } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome, type TestQueue } from './helpers/fixtures.js';

/**
 * What a worker says of a stalled run (picked up again, or given up on by BullMQ after too many
 * stalls), and the exit code of a run that timed out (124, not 130, which cancel and Ctrl-C have),
 * inline and through a worker; the temporary files of dead runs swept as a worker starts. Real PostgreSQL, Redis and `erp worker` processes.
 */

const FILES: Record<string, string> = {
  'jobs/quick.yaml': 'params:\n  tag: { type: string }\nlock: false\nsteps:\n  - sql: t/quick.sql\n',
  'sql/t/quick.sql': "INSERT INTO marks (tag) VALUES (:'tag');\n",
  'jobs/sleepy.yaml': 'timeout: 1s\nlock: false\nsteps:\n  - sql: t/sleepy.sql\n',
  'sql/t/sleepy.sql': "INSERT INTO marks (tag) VALUES ('sleepy');\nSELECT pg_sleep(30);\n",
};

let db: TestDatabase;
let home: TestHome;
let prefix: string;
let env: Record<string, string>;
let queue: TestQueue['queue'];
let redis: TestQueue['redis'];

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, { prefix, queue, redis }] = [d, h, q];
  await db.pool.query('CREATE TABLE marks (tag text NOT NULL)');
  await home.write(FILES);
  env = {
    DATABASE_URL: db.url,
    REDIS_URL,
    ERP_HOME: home.dir,
    ERP_QUEUE_PREFIX: prefix,
    // Stalls noticed in seconds; the reconciler looks every second.
    ERP_WORKER_LOCK_MS: '2000',
    ERP_WORKER_STALLED_MS: '1000',
    ERP_RECONCILE_MS: '1000',
  };
});

afterAll(killChildren);

const runRow = async (id: number) =>
  (await db.pool.query('SELECT status, error, error_kind FROM runner.runs WHERE id = $1', [id])).rows[0] as {
    status: string;
    error: string | null;
    error_kind: string | null;
  };

/**
 * A queued run of `quick` whose BullMQ job looks as if a worker took it, stalled `stalls` times
 * before, and died: active, its lock gone. (A worker SIGKILLed mid-run leaves exactly this.)
 */
async function stalledRun(tag: string, stalls: number): Promise<number> {
  const runnable = await resolveRunnable(home.dir, 'quick');
  const params = resolveParams(runnable.job, { tag });
  const id = (await createQueuedRun(db.pool, runnable, params, { requestedBy: 'test' }))!;
  await enqueueRun(queue, id, runnable, params);
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const taker = new Worker<RunJobData>(QUEUE_NAME, null, { connection, prefix, autorun: false });
  try {
    const job = await taker.getNextJob('dead-worker');
    expect(job?.id).toBe(jobIdOf(id));
  } finally {
    await taker.close();
    connection.disconnect();
  }
  await redis.del(`${prefix}:${QUEUE_NAME}:${jobIdOf(id)}:lock`);
  await redis.hset(`${prefix}:${QUEUE_NAME}:${jobIdOf(id)}`, 'stc', String(stalls));
  return id;
}

describe('a stalled run', () => {
  let worker: Child;

  afterAll(async () => {
    worker?.process.kill('SIGTERM');
    await worker?.exited;
  });

  it('is picked up again after a first stall, and BullMQ’s giving up after the third is said as such', async () => {
    const again = await stalledRun('again', 0);
    const given = await stalledRun('given-up', 2);
    worker = await startWorkerProcess(env);
    // The first stall: back to the queue, run once.
    await waitFor(
      async () => (await runRow(again)).status === 'succeeded',
      30_000,
      'the stalled run to succeed',
    );
    // The third: BullMQ fails the job instead of running it; the worker says so, naming the run and the count.
    await waitFor(
      () =>
        worker.stderr().includes(`run ${given} stalled 3 times; BullMQ gives up on it (it is marked failed)`),
      30_000,
      () => `the give-up line (${worker.stderr()})`,
    );
    const lines = worker.stderr().split('\n');
    expect(lines.filter((l) => l.includes('run stalled; it will be picked up again'))).toHaveLength(1);
    // And the run's record follows BullMQ's: failed, not left queued holding its lock.
    await waitFor(
      async () => (await runRow(given)).status === 'failed',
      30_000,
      'the given-up run to be failed',
    );
    expect(await runRow(given)).toEqual({
      status: 'failed',
      error: 'BullMQ gave up on it: job stalled more than allowable limit',
      error_kind: 'infra',
    });
    expect((await db.pool.query('SELECT tag FROM marks ORDER BY tag')).rows).toEqual([{ tag: 'again' }]);
    expect(worker.process.exitCode).toBeNull();
  });
});

describe('a worker starting', () => {
  it('removes the temporary files of runs no process executes, and keeps those of live runs', async () => {
    const runnable = await resolveRunnable(home.dir, 'quick');
    const params = resolveParams(runnable.job, { tag: 'temp' });
    const newRun = async (): Promise<number> =>
      (await createQueuedRun(db.pool, runnable, params, { requestedBy: 'test' }))!;
    // A run that failed (its worker was killed mid-download, and the run was given up on), and
    // one still running in a live process (this test's runner session holds its liveness lock).
    const dead = await newRun();
    await db.pool.query(`UPDATE runner.runs SET status = 'failed', finished_at = now() WHERE id = $1`, [
      dead,
    ]);
    const live = await newRun();
    const session = await openRunnerSession(db.url);
    try {
      await db.pool.query(`UPDATE runner.runs SET status = 'running', liveness_key = $2 WHERE id = $1`, [
        live,
        session.key,
      ]);
      const tmp = path.join(home.dir, 'var', 'tmp');
      for (const name of [String(dead), String(live), 'pid-999999999', `pid-${process.pid}`]) {
        await mkdir(path.join(tmp, name, 'sftp-x'), { recursive: true });
        await writeFile(path.join(tmp, name, 'sftp-x', 'partial.csv'), 'x'.repeat(4096));
      }
      const worker = await startWorkerProcess(env);
      try {
        // Swept before the worker takes any run.
        expect((await readdir(tmp)).sort()).toEqual([String(live), `pid-${process.pid}`].sort());
      } finally {
        worker.process.kill('SIGTERM');
        expect(await worker.exited).toBe(0);
      }
    } finally {
      await db.pool.query(`UPDATE runner.runs SET status = 'failed', finished_at = now() WHERE id = $1`, [
        live,
      ]);
      await session.close();
    }
  });
});

describe('a run that times out', () => {
  it('exits 124 inline and through a worker, rolled back and recorded as a timeout', async () => {
    const inline = await erp(['run', 'sleepy', '--inline'], env);
    expect(inline.code, inline.stderr + inline.stdout).toBe(124);
    expect(inline.stdout + inline.stderr).toContain("timed out after 1 s (the job's timeout)");
    const worker = await startWorkerProcess(env);
    try {
      const followed = await erp(['run', 'sleepy'], env);
      expect(followed.code, followed.stderr).toBe(124);
      expect(followed.stdout + followed.stderr).toContain("timed out after 1 s (the job's timeout)");
    } finally {
      worker.process.kill('SIGTERM');
      await worker.exited;
    }
    const { rows } = await db.pool.query(
      `SELECT status, error_kind, error FROM runner.runs WHERE name = 'sleepy' ORDER BY id`,
    );
    expect(rows).toHaveLength(2);
    for (const r of rows)
      expect(r).toMatchObject({
        status: 'failed',
        error_kind: 'timeout',
        error: expect.stringContaining('timed out'),
      });
    // Each attempt's INSERT was rolled back with its step.
    expect(
      (await db.pool.query(`SELECT count(*)::int AS n FROM marks WHERE tag = 'sleepy'`)).rows[0],
    ).toEqual({
      n: 0,
    });
  });
});
