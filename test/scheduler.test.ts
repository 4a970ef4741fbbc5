import type { Queue } from 'bullmq';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.js';
import { type RunJobData } from '../src/runner/queue.js';
import { fireTick, loadSchedules, startScheduler, type SchedulerContext } from '../src/runner/scheduler.js';
import { startWorker, type RunningWorker } from '../src/runner/worker.js';
import { killChildren, makeJobsHome, REDIS_URL, startErp, waitFor } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

/**
 * `erp scheduler` on the real Redis and PostgreSQL: several schedulers at once still make one run
 * per tick, and ticks missed while no scheduler ran are made up once each, in order.
 */

let db: TestDatabase;
let prefix: string;
let queue: Queue<RunJobData>;
const homes: { dir: string; remove(): Promise<void> }[] = [];

test.beforeAll(async ({ db: d, queue: q }) => {
  [db, { prefix, queue }] = [d, q];
  await db.pool.query(`
    CREATE TABLE nightly_seen (at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE TABLE report_days (as_of date NOT NULL);
  `);
});

afterEach(() => killChildren());

afterAll(async () => {
  await killChildren();
  for (const h of homes) await h.remove();
});

async function home(files: Record<string, string>): Promise<string> {
  const h = await makeJobsHome(files);
  homes.push(h);
  return h.dir;
}

describe('erp scheduler', () => {
  it('fires one run per tick with two schedulers running at once', async () => {
    const dir = await home({
      'jobs/every-second.yaml': `
lock: false
steps:
  - sql: t/noop.sql
schedules:
  - cron: '* * * * * *'
`,
      'sql/t/noop.sql': 'SELECT 1;\n',
    });
    const env = {
      DATABASE_URL: db.url,
      ERP_HOME: dir,
      ERP_QUEUE_PREFIX: prefix,
      REDIS_URL,
      LOG_LEVEL: 'info',
    };
    const a = startErp(['scheduler'], env);
    const b = startErp(['scheduler'], env);
    for (const s of [a, b]) {
      await waitFor(
        () => s.stderr().includes('"msg":"scheduler started"'),
        15_000,
        () => `start: ${s.stderr()}`,
      );
    }
    // Both are up: count the ticks fired from now on, while both run.
    const from = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    const ticks = (): Promise<number> =>
      db.pool
        .query<{ n: number }>(
          `SELECT count(*)::int AS n FROM runner.runs WHERE name = 'every-second' AND schedule_tick >= $1`,
          [`every-second#0@${new Date(from).toISOString()}`],
        )
        .then((r) => r.rows[0]!.n);
    await waitFor(async () => (await ticks()) >= 3, 15_000, 'three ticks with both schedulers up', 100);
    const to = Date.now() - 1500;
    a.process.kill('SIGTERM');
    b.process.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    // The scheduler that lost a tick says nothing: no warning, no error.
    for (const s of [a, b]) expect(s.stderr()).not.toMatch(/"level":(40|50)/);

    const { rows } = await db.pool.query<{ tick: string; runs: number; trigger: string }>(
      `SELECT schedule_tick AS tick, count(*)::int AS runs, min(trigger) AS trigger FROM runner.runs
       WHERE name = 'every-second' GROUP BY schedule_tick ORDER BY schedule_tick`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const r of rows) expect(r.runs).toBe(1);
    const at = rows.map((r) => Date.parse(r.tick.replace('every-second#0@', '')));
    // Every tick is a whole second; every second from when both ran until just before they stopped has its run.
    for (const t of at) expect(t % 1000).toBe(0);
    for (let t = from; t <= to; t += 1000) expect(at, new Date(t).toISOString()).toContain(t);
    expect(rows[0]!.trigger).toMatch(/^schedule 0 at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    // Each run was enqueued once, by the scheduler that created it.
    const runIds = await db.pool.query<{ id: number }>(
      `SELECT id::int FROM runner.runs WHERE name = 'every-second' ORDER BY id`,
    );
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.map((j) => j.data.runId).sort((x, y) => x - y)).toEqual(runIds.rows.map((r) => r.id));
    await queue.drain();
  }, 40_000);

  it('lets a tick due while it catches up wait its turn behind the missed ones', async () => {
    const dir = await home({
      // Locked as a whole: each run waits for the one before it.
      'jobs/every-two.yaml': `
steps:
  - sql: t/two.sql
schedules:
  - cron: '*/2 * * * * *'
    catch_up: 9s
`,
      'sql/t/two.sql': 'SELECT pg_sleep(0.7);\n',
    });
    const app = createApp(
      { DATABASE_URL: db.url, ERP_HOME: dir, ERP_QUEUE_PREFIX: prefix, REDIS_URL, LOG_LEVEL: 'silent' },
      pino({ level: 'silent' }),
    );
    const worker = await startWorker(app, { concurrency: 2, graceMs: 1000 });
    try {
      const scheduler = await startScheduler({ pool: app.pool, log: app.log, home: dir, queue });
      // Four or five missed ticks (9 s back) run one after the other (~1 s each); regular ticks fall
      // due meanwhile.
      expect((await scheduler.caughtUp).length).toBeGreaterThanOrEqual(4);
      await new Promise((r) => setTimeout(r, 2500));
      await scheduler.stop();
      const runs = await waitFor(
        async () => {
          const { rows } = await db.pool.query<{ tick: string; status: string; started_at: Date }>(
            `SELECT schedule_tick AS tick, status, started_at FROM runner.runs WHERE name = 'every-two' ORDER BY schedule_tick`,
          );
          return rows.every((r) => r.status === 'succeeded') ? rows : null;
        },
        15_000,
        'the every-two runs to succeed',
      );
      const ticks = runs.map((r) => Date.parse(r.tick.replace('every-two#0@', '')));
      // The made-up ticks, then every regular one: none skipped for the lock the catch-up held.
      expect(runs.length).toBeGreaterThanOrEqual(6);
      for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!, runs[i]!.tick).toBe(2000);
      // Executed in tick order.
      const started = runs.map((r) => r.started_at.getTime());
      expect([...started].sort((x, y) => x - y)).toEqual(started);
    } finally {
      await worker.close();
      await app.close();
    }
  }, 40_000);

  describe('catch-up', () => {
    let app: App;
    let worker: RunningWorker;
    let ctx: SchedulerContext;
    const DAY = 86_400_000;
    /** The last three 03:00 UTC ticks, oldest first: the ones a 3-day catch-up window holds. */
    let expected: Date[];

    beforeAll(async () => {
      const dir = await home({
        // Locked as a whole (no parameters): each made-up tick must wait for the one before it.
        'jobs/nightly.yaml': `
steps:
  - sql: t/nightly.sql
schedules:
  - cron: '0 3 * * *'
    catch_up: 72h
`,
        'sql/t/nightly.sql': 'SELECT pg_sleep(0.2);\nINSERT INTO nightly_seen DEFAULT VALUES;\n',
        // One lock per day: the made-up ticks queue at once.
        'jobs/daily-report.yaml': `
params:
  as_of: { type: date, default: today }
steps:
  - sql: t/report.sql
schedules:
  - cron: '0 3 * * *'
    catch_up: 72h
`,
        'sql/t/report.sql': "INSERT INTO report_days VALUES (:'as_of');\n",
      });
      app = createApp(
        { DATABASE_URL: db.url, ERP_HOME: dir, ERP_QUEUE_PREFIX: prefix, REDIS_URL, LOG_LEVEL: 'silent' },
        pino({ level: 'silent' }),
      );
      ctx = { pool: app.pool, log: app.log, home: dir, queue };
      const now = Date.now();
      let last = Math.floor(now / DAY) * DAY + 3 * 3_600_000;
      if (last > now) last -= DAY;
      expected = [last - 2 * DAY, last - DAY, last].map((t) => new Date(t));
      worker = await startWorker(app, { concurrency: 2, graceMs: 1000 });
    });

    afterAll(async () => {
      await worker?.close();
      await app?.close();
    });

    async function runsOf(
      job: string,
    ): Promise<
      { id: number; tick: string; status: string; params: Record<string, string>; started_at: Date | null }[]
    > {
      return (
        await db.pool.query(
          `SELECT id::int, schedule_tick AS tick, status, params, started_at FROM runner.runs WHERE name = $1 ORDER BY id`,
          [job],
        )
      ).rows;
    }

    it('submits the ticks missed while no scheduler ran, once each and in order; a second start adds none', async () => {
      // An earlier scheduler fired the oldest tick of each job before it went down.
      for (const entry of await loadSchedules(ctx.home)) await fireTick(ctx, entry, expected[0]!);

      const first = await startScheduler(ctx);
      await waitFor(
        async () => (await runsOf('nightly')).filter((r) => r.status === 'succeeded').length === 3,
        20_000,
        'the three nightly runs to succeed',
        50,
      );
      // It made up the two ticks missed of each job; the oldest was taken already.
      expect((await first.caughtUp).length).toBe(4);
      await first.stop();
      const tickIds = (job: string): string[] => expected.map((t) => `${job}#0@${t.toISOString()}`);

      const nightly = await runsOf('nightly');
      expect(nightly.map((r) => r.tick)).toEqual(tickIds('nightly'));
      expect(nightly.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
      // Executed in tick order, one after the other.
      const started = nightly.map((r) => r.started_at!.getTime());
      expect([...started].sort((x, y) => x - y)).toEqual(started);
      expect((await db.pool.query('SELECT count(*)::int AS n FROM nightly_seen')).rows[0].n).toBe(3);

      await waitFor(
        async () => (await runsOf('daily-report')).every((r) => r.status === 'succeeded'),
        10_000,
        'the daily reports to succeed',
      );
      const daily = await runsOf('daily-report');
      expect(daily.map((r) => r.tick)).toEqual(tickIds('daily-report'));
      // Each tick's dynamic default is computed at the tick, not when it was made up.
      expect(daily.map((r) => r.params.as_of)).toEqual(expected.map((t) => t.toISOString().slice(0, 10)));
      expect((await db.pool.query('SELECT as_of::text FROM report_days ORDER BY as_of')).rows).toEqual(
        expected.map((t) => ({ as_of: t.toISOString().slice(0, 10) })),
      );

      // Another scheduler starting now finds every tick of the window taken.
      const jobsBefore = await queue.getJobCountByTypes(
        'waiting',
        'active',
        'delayed',
        'completed',
        'failed',
      );
      const second = await startScheduler(ctx);
      expect(await second.caughtUp).toEqual([]);
      await second.stop();
      expect((await runsOf('nightly')).length).toBe(3);
      expect((await runsOf('daily-report')).length).toBe(3);
      expect(await queue.getJobCountByTypes('waiting', 'active', 'delayed', 'completed', 'failed')).toBe(
        jobsBefore,
      );
    }, 40_000);
  });
});
