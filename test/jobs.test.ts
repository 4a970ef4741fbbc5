import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { executeRun } from '../src/jobs/execute.js';
import { type RunOutcome } from '../src/jobs/types.js';
import { LIVENESS_LOCK_CLASS, openRunnerSession } from '../src/jobs/session.js';
import { abandon, createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import { jobIdOf, type RunJobData } from '../src/runner/queue.js';
import { startWorker, type RunningWorker } from '../src/runner/worker.js';
import {
  erp,
  freePort,
  keysOf,
  killChildren,
  REDIS_URL,
  startErp,
  startRedisServer,
  startWorkerProcess,
  waitFor,
} from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';

/**
 * Jobs through the real Redis and PostgreSQL, with a worker in this process: refusals before
 * anything is queued, retries of transient failures only, the PostgreSQL lock between two
 * `erp run`, cancellation of a running statement, and an unreachable Redis.
 */

let db: TestDatabase;
let home: TestHome;
let prefix: string;
let app: App;
let worker: RunningWorker;
let queue: Queue<RunJobData>;
let redis: Redis;
let env: Record<string, string>;

const FILES: Record<string, string> = {
  'jobs/flaky.yaml': `
description: Fails once with a serialization failure, then succeeds
retries: { attempts: 3, backoff: 100ms }
steps:
  - sql: t/first.sql
  - sql: t/flaky.sql
`,
  'sql/t/first.sql': `INSERT INTO first_done VALUES (clock_timestamp());\n`,
  'sql/t/flaky.sql': `INSERT INTO flaky_done (attempt) SELECT flaky();\n`,
  'jobs/always-busy.yaml': `
retries: { attempts: 2, backoff: 100ms }
steps:
  - sql: t/busy.sql
`,
  'sql/t/busy.sql': `SELECT always_busy();\n`,
  'jobs/close-period.yaml': `
description: Refuses a closed period
params:
  period: { type: period, description: the period to close }
retries: { attempts: 3, backoff: 100ms }
steps:
  - sql: t/close.sql
`,
  'sql/t/close.sql': `INSERT INTO closed_marks VALUES (:'period');\nSELECT assert_open(:'period');\n`,
  'jobs/payroll.yaml': `
params:
  period: { type: period }
  run_type: { type: enum, values: [regular, bonus], default: regular }
lock: [period]
steps:
  - sql: t/payroll.sql
`,
  'sql/t/payroll.sql': `SELECT pg_sleep(1.5);\nINSERT INTO payroll_done VALUES (:'period');\n`,
  'jobs/long.yaml': `
description: A statement that runs for half a minute unless cancelled
steps:
  - sql: t/long.sql
`,
  'sql/t/long.sql': `INSERT INTO cancel_marks VALUES (1);\nSELECT pg_sleep(30);\n`,
  'jobs/mark.yaml': `
description: Writes a row, then takes a moment before its commit
steps:
  - sql: t/mark.sql
`,
  'sql/t/mark.sql': `INSERT INTO step_marks VALUES (1);\nSELECT pg_sleep(0.6);\n`,
  'jobs/mark-quick.yaml': `
description: Writes a row at once
steps:
  - sql: t/mark-quick.sql
`,
  'sql/t/mark-quick.sql': `INSERT INTO step_marks VALUES (2);\n`,
};

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return (await db.pool.query<{ n: number }>(`SELECT (${sql})::int AS n`, params)).rows[0]!.n;
}

/** Statements of the `long` job (`pg_sleep(30)`) running in the server now. */
function longStatements(): Promise<number> {
  return count(
    `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()`,
  );
}

async function submit(name: string, given: Record<string, string> = {}): Promise<number> {
  const runnable = await resolveRunnable(home.dir, name);
  const params = resolveParams(runnable.job, given);
  const runId = (await createQueuedRun(db.pool, runnable, params, { requestedBy: 'jobs-test' }))!;
  await enqueueRun(queue, runId, runnable, params);
  return runId;
}

interface RunRecord {
  status: string;
  attempts: number;
  error: string | null;
  error_kind: string | null;
}

async function runRow(id: number): Promise<RunRecord> {
  return (
    await db.pool.query<RunRecord>(
      'SELECT status, attempts, error, error_kind FROM runner.runs WHERE id = $1',
      [id],
    )
  ).rows[0]!;
}

async function waitFinal(id: number, timeoutMs = 20_000): Promise<RunRecord> {
  return waitFor(
    async () => {
      const r = await runRow(id);
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : null;
    },
    timeoutMs,
    `run ${id} to finish`,
  );
}

/** The BullMQ job's state once it left the active list. */
async function settledJob(runId: number): Promise<{ state: string; attemptsMade: number }> {
  return waitFor(
    async () => {
      const job = await queue.getJob(jobIdOf(runId));
      if (!job) return null;
      const state = await job.getState();
      if (state !== 'completed' && state !== 'failed') return null;
      // The job was read before it settled: read it again, so attemptsMade is the settled count.
      const settled = await queue.getJob(jobIdOf(runId));
      return settled ? { state, attemptsMade: settled.attemptsMade } : null;
    },
    10_000,
    `BullMQ job of run ${runId} to settle`,
  );
}

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, { prefix, queue, redis }] = [d, h, q];
  await db.pool.query(`
    CREATE TABLE flaky_done (attempt bigint);
    CREATE TABLE first_done (at timestamptz);
    CREATE SEQUENCE flaky_calls;
    -- A sequence survives the rolled-back attempt, so the second call knows it is the second.
    CREATE FUNCTION flaky() RETURNS bigint LANGUAGE plpgsql AS $$
    DECLARE n bigint := nextval('flaky_calls');
    BEGIN
      IF n = 1 THEN RAISE EXCEPTION 'could not serialize access (simulated)' USING ERRCODE = '40001'; END IF;
      RETURN n;
    END $$;
    CREATE SEQUENCE busy_calls;
    CREATE FUNCTION always_busy() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM nextval('busy_calls');
      RAISE EXCEPTION 'lock not available (simulated)' USING ERRCODE = '55P03';
    END $$;
    CREATE TABLE closed_marks (period text);
    CREATE FUNCTION assert_open(p text) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'period % is closed', p USING ERRCODE = 'ERP01'; END $$;
    CREATE TABLE payroll_done (period text);
    CREATE TABLE cancel_marks (n int);
    CREATE TABLE step_marks (n int);
  `);
  await home.write(FILES);
  env = { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_QUEUE_PREFIX: prefix, REDIS_URL };
  app = createApp({ ...env, LOG_LEVEL: 'silent' }, pino({ level: 'silent' }));
});

// A test that failed half-way leaves no process behind to disturb the next one.
afterEach(() => killChildren());

afterAll(async () => {
  await killChildren();
  await worker?.close();
  await app?.close();
});

describe('refusals before anything is queued', () => {
  it('refuses an unknown job and bad parameters with what is valid, queueing nothing', async () => {
    // Run side by side: each is a separate `erp` process, refused on its own.
    const [unknown, badPeriod, badEnum, unknownParam, missing] = await Promise.all([
      erp(['run', 'payrol', '--period', '2026-11'], env),
      erp(['run', 'payroll', '--period', '2026-13'], env),
      erp(['run', 'payroll', '--period', '2026-11', '--param', 'run_type=extra'], env),
      erp(['run', 'payroll', '--period', '2026-11', '--param', 'colour=red'], env),
      erp(['run', 'payroll'], env),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      "erp: unknown job or pipeline 'payrol'; jobs: always-busy, close-period, flaky, long, mark, mark-quick, payroll; pipelines: (none)\n",
    );

    expect(badPeriod.code).toBe(2);
    expect(badPeriod.stderr).toBe(
      "erp: payroll: parameter period = '2026-13' is not valid; expected a period YYYY-MM, e.g. 2026-11\n",
    );

    expect(badEnum.code).toBe(2);
    expect(badEnum.stderr).toBe(
      "erp: payroll: parameter run_type = 'extra' is not valid; expected one of regular, bonus\n",
    );

    expect(unknownParam.code).toBe(2);
    expect(unknownParam.stderr).toBe(
      "erp: payroll has no parameter 'colour'; its parameters are: period (period), run_type (enum: regular|bonus, default regular)\n",
    );

    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^erp: payroll needs parameter 'period' \(period\); its parameters are: period/,
    );

    // Nothing recorded, nothing queued: no key under the prefix but the queue's meta.
    expect(await count('SELECT count(*) FROM runner.runs')).toBe(0);
    expect((await keysOf(redis, prefix)).filter((k) => !k.endsWith(':meta'))).toEqual([]);
  });

  it('says in one line, without a stack, that Redis is unreachable, and records no run', async () => {
    const port = await freePort();
    const url = `redis://:hunter2@127.0.0.1:${port}`;
    const started = Date.now();
    const [r, w] = await Promise.all([
      erp(['run', 'payroll', '--period', '2026-11'], { ...env, REDIS_URL: url }),
      // A worker that cannot reach Redis says so and exits, rather than retrying for ever.
      erp(['worker'], { ...env, REDIS_URL: url }),
    ]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toEqual([
      'plan: 1. sql t/payroll.sql',
      `erp: cannot reach Redis at redis://:***@127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}); start it or set REDIS_URL (or use --inline to run without Redis)`,
    ]);
    expect(r.stdout).toBe('');
    expect(await count('SELECT count(*) FROM runner.runs')).toBe(0);

    expect(w.code).toBe(1);
    expect(w.stderr).toBe(
      `erp: cannot reach Redis at redis://:***@127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}); start it or set REDIS_URL (or use --inline to run without Redis)\n`,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('warns loudly at worker start when Redis may evict keys', async () => {
    const evicting = await startRedisServer(['--maxmemory-policy', 'allkeys-lru']);
    try {
      const child = await startWorkerProcess({ ...env, REDIS_URL: evicting.url });
      expect(child.stderr()).toContain(
        `"policy":"allkeys-lru","msg":"Redis maxmemory-policy is 'allkeys-lru', not 'noeviction': under memory pressure Redis may evict job keys and lose runs. Set maxmemory-policy noeviction."`,
      );
      expect(child.stderr()).toMatch(/^\{"level":40,.*"msg":"Redis maxmemory-policy is 'allkeys-lru'/m);
      child.process.kill('SIGTERM');
      expect(await child.exited, child.stderr()).toBe(0);
    } finally {
      await evicting.stop();
    }
    // The shared server evicts nothing, and its worker says nothing about it.
    const ok = await startWorkerProcess(env);
    expect(ok.stderr()).not.toContain('maxmemory-policy');
    ok.process.kill('SIGTERM');
    expect(await ok.exited).toBe(0);
  });
});

describe('through a worker', () => {
  beforeAll(async () => {
    worker = await startWorker(app, { concurrency: 2, graceMs: 2000 });
  });

  it('retries a transient failure and succeeds on the second attempt, skipping the steps done', async () => {
    const id = await submit('flaky');
    const run = await waitFinal(id);
    expect(run).toEqual({ status: 'succeeded', attempts: 2, error: null, error_kind: null });
    // The failed step's insert was rolled back and made again; the step before it ran once.
    expect((await db.pool.query('SELECT attempt::int FROM flaky_done')).rows).toEqual([{ attempt: 2 }]);
    expect(await count('SELECT count(*) FROM first_done')).toBe(1);
    const steps = await db.pool.query(
      'SELECT position, status, error FROM runner.run_steps WHERE run_id = $1 ORDER BY position',
      [id],
    );
    expect(steps.rows).toEqual([
      { position: 1, status: 'succeeded', error: null },
      { position: 2, status: 'succeeded', error: null },
    ]);
    expect((await settledJob(id)).state).toBe('completed');
  });

  it('gives up on a transient failure after the last attempt', async () => {
    const id = await submit('always-busy');
    const run = await waitFinal(id);
    expect(run).toMatchObject({ status: 'failed', attempts: 2, error_kind: 'infra' });
    expect(run.error).toBe('sql/t/busy.sql: lock not available (simulated)');
    expect(await count(`SELECT last_value FROM busy_calls`)).toBe(2);
    expect(await settledJob(id)).toEqual({ state: 'failed', attemptsMade: 2 });
  });

  it('does not retry a permanent failure (a closed period)', async () => {
    const id = await submit('close-period', { period: '2026-10' });
    const run = await waitFinal(id);
    expect(run).toEqual({
      status: 'failed',
      attempts: 1,
      error: 'sql/t/close.sql: period 2026-10 is closed',
      error_kind: 'user',
    });
    expect(await count('SELECT count(*) FROM closed_marks')).toBe(0);
    expect(await settledJob(id)).toEqual({ state: 'failed', attemptsMade: 1 });
    const steps = await db.pool.query('SELECT status, error FROM runner.run_steps WHERE run_id = $1', [id]);
    expect(steps.rows).toEqual([{ status: 'failed', error: 'sql/t/close.sql: period 2026-10 is closed' }]);
  });

  it('refuses a second erp run of a locked job, naming the run that holds it', async () => {
    const a = startErp(['run', 'payroll', '--period', '2026-11'], { ...env, ERP_USER: 'alice' });
    const b = startErp(['run', 'payroll', '--period', '2026-11'], { ...env, ERP_USER: 'bob' });
    const [codeA, codeB] = await Promise.all([a.exited, b.exited]);
    expect([codeA, codeB].sort()).toEqual([0, 4]);
    const [winner, loser] = codeA === 0 ? [a, b] : [b, a];
    const held = /^run (\d+) queued: job payroll period=2026-11 run_type=regular$/m.exec(winner.stderr());
    expect(held, winner.stderr()).not.toBeNull();
    const holder = Number(held![1]);
    const who = winner === a ? 'alice' : 'bob';
    expect(loser.stderr()).toMatch(
      new RegExp(
        `^plan: 1\\. sql t/payroll\\.sql\\nerp: payroll \\(period=2026-11, run_type=regular\\) is already (queued|running) as run ${holder}, started by ${who} on \\S+ at \\S+; wait for it, or cancel it with erp cancel ${holder}\\n$`,
      ),
    );
    expect(loser.stdout()).toBe('');
    expect(winner.stdout()).toMatch(
      new RegExp(`^payroll period=2026-11 run_type=regular \\(run ${holder}\\)\\n`),
    );
    // One run recorded and executed; the refused one left no row and no BullMQ job.
    const runs = await db.pool.query(
      `SELECT id::int, status, requested_by FROM runner.runs WHERE name = 'payroll'`,
    );
    expect(runs.rows).toEqual([{ id: holder, status: 'succeeded', requested_by: who }]);
    expect(await count('SELECT count(*) FROM payroll_done')).toBe(1);
    expect(await queue.getJobCountByTypes('completed', 'failed', 'waiting', 'active', 'delayed')).toBe(
      await count(`SELECT count(*) FROM runner.runs`),
    );
    // The lock's scope is the period: another period is not refused.
    const other = await erp(['run', 'payroll', '--period', '2026-12', '--detach'], env);
    expect(other.code).toBe(0);
    expect((await waitFinal(Number(other.stdout.trim()))).status).toBe('succeeded');
  });

  it('takes its liveness lock and cancel listener again after its session connection is cut', async () => {
    const sessions = async (): Promise<number[]> =>
      (
        await db.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'erp-runner-session'`,
        )
      ).rows.map((r) => r.pid);
    const [cut] = await sessions();
    expect(cut).toBeDefined();
    await db.pool.query('SELECT pg_terminate_backend($1)', [cut]);
    await waitFor(
      async () => {
        const now = await sessions();
        return now.length === 1 && now[0] !== cut;
      },
      10_000,
      'the runner session to connect again',
    );
    // A run claimed now records a key a live session holds: it is not taken for abandoned.
    const id = await submit('long');
    await waitFor(longStatements, 10_000, 'the long statement to start');
    // Claimed once its step outlasted CLAIM_AFTER_MS.
    await waitFor(async () => (await runRow(id)).status === 'running', 5000, `run ${id} to be claimed`);
    expect(
      await count(
        `SELECT count(*) FROM runner.runs r JOIN pg_locks l ON l.locktype = 'advisory' AND l.granted
           AND l.classid = $2::int::oid AND l.objid = r.liveness_key::oid AND l.objsubid = 2
         WHERE r.id = $1`,
        [id, LIVENESS_LOCK_CLASS],
      ),
    ).toBe(1);
    // So a second run of the job is refused rather than taking over.
    await expect(submit('long')).rejects.toThrow(new RegExp(`^long is already running as run ${id},`));
    // And erp cancel still reaches the worker.
    const started = Date.now();
    expect((await erp(['cancel', String(id)], env)).code).toBe(0);
    expect((await waitFinal(id, 10_000)).status).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('erp cancel stops a running statement and rolls its transaction back', async () => {
    const id = await submit('long');
    await waitFor(longStatements, 10_000, 'the long statement to start');
    const started = Date.now();
    const r = await erp(['cancel', String(id)], env);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(`run ${id}: cancel requested; its worker stops it and rolls back\n`);
    const run = await waitFinal(id, 10_000);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(run).toEqual({
      status: 'cancelled',
      attempts: 1,
      error: 'run cancelled',
      error_kind: 'cancelled',
    });
    // Nothing the step wrote is visible, and its statement is gone from the server.
    expect(await count('SELECT count(*) FROM cancel_marks')).toBe(0);
    expect(await longStatements()).toBe(0);
    const steps = await db.pool.query('SELECT status FROM runner.run_steps WHERE run_id = $1', [id]);
    expect(steps.rows).toEqual([{ status: 'cancelled' }]);
    // A cancelled run is not retried.
    expect(await settledJob(id)).toEqual({ state: 'failed', attemptsMade: 1 });
    const again = await erp(['cancel', String(id)], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`erp: run ${id} is cancelled; only queued or running runs can be cancelled\n`);
  });
});

describe('erp run --inline', () => {
  it('is stopped by erp cancel from another terminal, its transaction rolled back', async () => {
    await db.pool.query('TRUNCATE cancel_marks');
    const inline = startErp(['run', 'long', '--inline'], env);
    const id = await waitFor(
      async () => {
        if ((await longStatements()) === 0) return null;
        const { rows } = await db.pool.query<{ id: number }>(
          `SELECT id::int FROM runner.runs WHERE name = 'long' AND status = 'running'`,
        );
        return rows[0]?.id ?? null;
      },
      15_000,
      () => `the inline run's long statement to start (stderr: ${inline.stderr()})`,
    );
    const started = Date.now();
    const r = await erp(['cancel', String(id)], env);
    expect(r.code, r.stderr).toBe(0);
    expect(await inline.exited).toBe(130);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(inline.stdout()).toMatch(/cancelled/);
    expect(await runRow(id)).toMatchObject({ status: 'cancelled', error_kind: 'cancelled' });
    expect(await count('SELECT count(*) FROM cancel_marks')).toBe(0);
  });

  it('killed mid-step: the abandoned run and its running step are recorded failed, not left running', async () => {
    const inline = startErp(['run', 'long', '--inline'], env);
    const id = await waitFor(
      async () => {
        if ((await longStatements()) === 0) return null;
        const { rows } = await db.pool.query<{ id: number }>(
          `SELECT id::int FROM runner.runs WHERE name = 'long' AND status = 'running'`,
        );
        return rows[0]?.id ?? null;
      },
      15_000,
      () => `the inline run's long statement to start (stderr: ${inline.stderr()})`,
    );
    inline.process.kill('SIGKILL');
    await inline.exited;
    // Its liveness lock went with its session's connection: the run is found abandoned (as the next
    // submission, a resume or the reconciler find it).
    await waitFor(() => abandon(db.pool, id), 10_000, `run ${id} to be found abandoned`, 100);
    const { rows: steps } = await db.pool.query<{ status: string; error: string }>(
      'SELECT status, error FROM runner.run_steps WHERE run_id = $1',
      [id],
    );
    expect(steps).toEqual([
      { status: 'failed', error: expect.stringMatching(/^abandoned: the process running it stopped/) },
    ]);
    const show = await erp(['runs', 'show', String(id)], env);
    expect(show.stdout).toContain('  1. sql t/long.sql: failed — abandoned: the process running it stopped');
    // The orphaned statement cannot commit; it is stopped rather than left sleeping.
    await db.pool.query(
      `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()`,
    );
    await waitFor(async () => (await longStatements()) === 0, 10_000, 'the orphaned statement to stop');
    expect(await count('SELECT count(*) FROM cancel_marks')).toBe(0);
  });
});

describe('a SQL step commits with the record of its success', () => {
  /** Executes a queued run of `mark` here, doing `meanwhile` once its step is under way. */
  async function markRun(
    meanwhile: (runId: number) => Promise<unknown>,
    opts: { firstDelivery?: boolean; before?: (runId: number) => Promise<unknown>; job?: string } = {},
  ): Promise<{ runId: number; outcome: RunOutcome; liveness: number }> {
    const runnable = await resolveRunnable(home.dir, opts.job ?? 'mark');
    const runId = (await createQueuedRun(db.pool, runnable, {}, { requestedBy: 'jobs-test' }))!;
    await opts.before?.(runId);
    const session = await openRunnerSession(db.url);
    try {
      const running = executeRun(app, {
        runId,
        runnable,
        params: {},
        dryRun: false,
        signal: new AbortController().signal,
        liveness: session.key,
        firstDelivery: opts.firstDelivery ?? false,
      });
      await new Promise((r) => setTimeout(r, 250));
      await meanwhile(runId);
      return { runId, outcome: await running, liveness: session.key };
    } finally {
      await session.close();
    }
  }

  it("records the step, the run and the step's work in one commit", async () => {
    await db.pool.query('TRUNCATE step_marks');
    const { runId, outcome } = await markRun(async (id) => {
      // While the step runs, neither its row nor its success is visible; the run is running.
      expect(await count('SELECT count(*) FROM step_marks')).toBe(0);
      expect((await runRow(id)).status).toBe('running');
      const step = await db.pool.query('SELECT status FROM runner.run_steps WHERE run_id = $1', [id]);
      expect(step.rows).toEqual([{ status: 'running' }]);
    });
    expect([outcome.status, outcome.error]).toEqual(['succeeded', null]);
    expect(await runRow(runId)).toEqual({ status: 'succeeded', attempts: 1, error: null, error_kind: null });
    expect(await count('SELECT count(*) FROM step_marks')).toBe(1);
    const { rows } = await db.pool.query(
      `SELECT s.status, s.detail ->> 'command' AS command, s.finished_at = r.finished_at AS one_commit
       FROM runner.run_steps s JOIN runner.runs r ON r.id = s.run_id WHERE s.run_id = $1`,
      [runId],
    );
    // Both records take the one instant runner.step_succeeded read as the step's commit began.
    expect(rows).toEqual([{ status: 'succeeded', command: 'SELECT', one_commit: true }]);
  });

  it('rolls the step back when its run was finished elsewhere while it ran', async () => {
    await db.pool.query('TRUNCATE step_marks');
    const { runId, outcome } = await markRun((id) =>
      db.pool.query(
        `UPDATE runner.runs SET status = 'failed', finished_at = now(), error = 'finished by another worker' WHERE id = $1`,
        [id],
      ),
    );
    expect(outcome).toMatchObject({ status: 'failed', error: 'finished by another worker', permanent: true });
    // The other delivery's record stands, and the step's row did not stay.
    expect((await runRow(runId)).error).toBe('finished by another worker');
    expect(await count('SELECT count(*) FROM step_marks')).toBe(0);
  });

  it('rolls the step back when a cancel is recorded as it commits', async () => {
    await db.pool.query('TRUNCATE step_marks');
    // Recorded without the NOTIFY, so only the commit can see it.
    const { runId, outcome } = await markRun((id) =>
      db.pool.query('UPDATE runner.runs SET cancel_requested_at = now() WHERE id = $1', [id]),
    );
    expect(outcome.status).toBe('cancelled');
    expect(await runRow(runId)).toMatchObject({ status: 'cancelled', error_kind: 'cancelled' });
    expect(await count('SELECT count(*) FROM step_marks')).toBe(0);
  });

  it("claims a first delivery's run with the commit of a short first step", async () => {
    await db.pool.query('TRUNCATE step_marks');
    const { runId, outcome, liveness } = await markRun(async () => undefined, {
      firstDelivery: true,
      job: 'mark-quick',
    });
    expect([outcome.status, outcome.error]).toEqual(['succeeded', null]);
    const { rows } = await db.pool.query(
      `SELECT status, attempts, pid, host, liveness_key, started_at <= finished_at AS timed FROM runner.runs WHERE id = $1`,
      [runId],
    );
    expect(rows).toEqual([
      {
        status: 'succeeded',
        attempts: 1,
        pid: process.pid,
        host: hostname(),
        liveness_key: liveness,
        timed: true,
      },
    ]);
    expect(await count('SELECT count(*) FROM step_marks')).toBe(1);
  });

  it.each(['mark', 'mark-quick'])(
    'keeps nothing of a first delivery of %s whose run was cancelled while queued',
    async (job) => {
      await db.pool.query('TRUNCATE step_marks');
      // The step starts before the run is claimed; the claim (mark) or the step's commit (mark-quick)
      // finds the run cancelled.
      const { runId, outcome } = await markRun(async () => undefined, {
        job,
        firstDelivery: true,
        before: (id) =>
          db.pool.query(
            `UPDATE runner.runs SET status = 'cancelled', cancel_requested_at = now(), finished_at = now(),
             error = 'cancelled before it started' WHERE id = $1`,
            [id],
          ),
      });
      expect(outcome).toMatchObject({ status: 'cancelled', error: 'cancelled before it started' });
      expect(await runRow(runId)).toEqual({
        status: 'cancelled',
        attempts: 0,
        error: 'cancelled before it started',
        error_kind: null,
      });
      expect(await count('SELECT count(*) FROM step_marks')).toBe(0);
      expect(await count('SELECT count(*) FROM runner.run_steps WHERE run_id = $1', [runId])).toBe(0);
    },
  );
});
