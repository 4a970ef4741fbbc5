import { afterAll, describe, expect, it } from 'vitest';
import { jobIdOf } from '../src/jobs/job-id.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome, type TestQueue } from './helpers/fixtures.js';
import { erp, killChildren, startErp, startWorkerProcess, waitFor } from './helpers/runner.js';

/**
 * `erp run --detach`: the run is recorded and queued, its id printed, and a worker runs it later.
 * Ctrl-C while following: the run goes on, unless `--cancel` was given.
 */

let db: TestDatabase;
let home: TestHome;
let queue: TestQueue['queue'];
let env: Record<string, string>;

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, queue] = [d, h, q.queue];
  await db.pool.query('CREATE TABLE public.ticks (n int NOT NULL)');
  await home.write({
    'jobs/tick.yaml': 'description: insert a tick\nsteps:\n  - sql: tick.sql\n',
    'sql/tick.sql': 'INSERT INTO public.ticks VALUES (1);\n',
    'jobs/slow.yaml': 'description: a slow step\nlock: false\nsteps:\n  - sql: slow.sql\n',
    'sql/slow.sql': 'SELECT pg_sleep(2);\nINSERT INTO public.ticks VALUES (2);\n',
  });
  env = { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_QUEUE_PREFIX: q.prefix };
});

afterAll(killChildren);

describe('erp run --detach', () => {
  it('prints the run id and returns at once; the queued run is executed by a worker later', async () => {
    const r = await erp(['run', 'tick', '--detach'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\n$/);
    const runId = Number(r.stdout.trim());
    const queued = await db.pool.query('SELECT status, name FROM runner.runs WHERE id = $1', [runId]);
    expect(queued.rows[0]).toEqual({ status: 'queued', name: 'tick' });
    expect(await queue.getJobState(jobIdOf(runId))).toBe('waiting');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM public.ticks')).rows[0].n).toBe(0);

    await startWorkerProcess(env);
    const status = await waitFor(
      async () => {
        const { rows } = await db.pool.query<{ status: string }>(
          'SELECT status FROM runner.runs WHERE id = $1',
          [runId],
        );
        return rows[0]!.status === 'succeeded' || rows[0]!.status === 'failed' ? rows[0]!.status : null;
      },
      30_000,
      'the detached run to end',
      100,
    );
    expect(status).toBe('succeeded');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM public.ticks')).rows[0].n).toBe(1);
  }, 60_000);
});

describe('Ctrl-C while following', () => {
  const follow = async (args: string[]): Promise<{ code: number | null; stderr: string; runId: number }> => {
    const child = startErp(['run', 'slow', ...args], env);
    await waitFor(
      () => /step 1\/1 sql slow.sql: running/.test(child.stderr()),
      20_000,
      () => `the step to start (${child.stderr()})`,
    );
    child.process.kill('SIGINT');
    const code = await child.exited;
    const runId = Number(/run (\d+) queued/.exec(child.stderr())![1]);
    return { code, stderr: child.stderr(), runId };
  };
  const finalStatus = (runId: number): Promise<string> =>
    waitFor(
      async () => {
        const { rows } = await db.pool.query<{ status: string }>(
          'SELECT status FROM runner.runs WHERE id = $1',
          [runId],
        );
        return ['succeeded', 'failed', 'cancelled'].includes(rows[0]!.status) ? rows[0]!.status : null;
      },
      30_000,
      'the run to end',
      100,
    );

  it('leaves the run going without --cancel', async () => {
    const r = await follow([]);
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`stopped following; run ${r.runId} goes on`);
    expect(await finalStatus(r.runId)).toBe('succeeded');
  }, 60_000);

  it('cancels the run with --cancel, rolling its transaction back', async () => {
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM public.ticks WHERE n = 2')).rows[0]
      .n as number;
    const r = await follow(['--cancel']);
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(new RegExp(`run ${r.runId}: (cancel requested|cancelled)`));
    expect(await finalStatus(r.runId)).toBe('cancelled');
    expect((await db.pool.query('SELECT count(*)::int AS n FROM public.ticks WHERE n = 2')).rows[0].n).toBe(
      before,
    );
  }, 60_000);
});
