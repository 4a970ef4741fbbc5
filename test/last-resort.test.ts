import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool } from '../src/db/pool.js';
import { ClaimGate, ClaimsStoppedError } from '../src/jobs/claims.js';
import { resolveRunnable } from '../src/jobs/definition.js';
import { executeRun } from '../src/jobs/execute.js';
import { openRunnerSession, type RunnerSession } from '../src/jobs/session.js';
import { createQueuedRun } from '../src/jobs/submit.js';
import { handBack } from '../src/runner/last-resort.js';
import type { AppContext } from '../src/app.js';
import { waitFor } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';

/**
 * The worker's last resort hands its runs in hand back (test/chaos covers the crash end to end).
 * Its claim gate makes the hand-back final: no claim is sent once it began, and a claim already on
 * its way lands before the hand-back is written, so neither can mark the run running after it.
 */

const CRASHED = 'attempt failed, will retry: the worker crashed (injected fault)';

let db: TestDatabase;
let home: TestHome;
let session: RunnerSession;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE step_marks (n int)');
  await home.write({
    'jobs/mark.yaml': 'lock: false\nsteps:\n  - sql: t/mark.sql\n',
    'sql/t/mark.sql': 'INSERT INTO step_marks VALUES (1);\nSELECT pg_sleep(0.6);\n',
  });
  session = await openRunnerSession(db.url);
});

afterAll(async () => {
  await session?.close();
});

/** Starts a queued run of `mark` in this process, with `gate` as its process's claim gate. */
async function start(app: AppContext, gate: ClaimGate, firstDelivery: boolean) {
  const runnable = await resolveRunnable(home.dir, 'mark');
  const runId = (await createQueuedRun(db.pool, runnable, {}, { requestedBy: 'last-resort-test' }))!;
  const outcome = executeRun(app, {
    runId,
    runnable,
    params: {},
    dryRun: false,
    signal: new AbortController().signal,
    attemptsLeft: 2,
    liveness: session.key,
    claims: gate,
    firstDelivery,
  });
  return { runId, outcome };
}

/** The app context of a run on `pool`, logging nothing. */
function appOn(pool: pg.Pool): AppContext {
  return {
    pool,
    log: pino({ level: 'silent' }),
    home: home.dir,
    dataDir: `${home.dir}/var`,
    rejectsInTable: 10,
  };
}

async function runRow(id: number) {
  return (await db.pool.query('SELECT status, attempts, error FROM runner.runs WHERE id = $1', [id]))
    .rows[0] as { status: string; attempts: number; error: string | null };
}

describe('the last resort’s hand-back', () => {
  it('sends no claim once it began: a first step still unclaimed never marks its run running', async () => {
    const app = appOn(db.pool);
    const gate = new ClaimGate();
    // A first delivery's first SQL step runs at once and claims its run only after 100 ms: the
    // crash comes before that claim was sent.
    const { runId, outcome } = await start(app, gate, true);
    await handBack(db.url, gate, () => [runId], 'injected fault');
    expect(await runRow(runId)).toEqual({ status: 'queued', attempts: 0, error: CRASHED });
    // The step goes on (the process has not exited yet in this test), but its commit is refused.
    expect(await outcome).toMatchObject({ status: 'retrying' });
    expect(await runRow(runId)).toEqual({ status: 'queued', attempts: 0, error: CRASHED });
    expect((await db.pool.query('SELECT count(*)::int AS n FROM step_marks')).rows[0]).toEqual({ n: 0 });
    expect(() => gate.hold()).toThrow(ClaimsStoppedError);
  });

  it('waits for a claim already on its way, then hands the run back', async () => {
    // A pool whose connections are all held: the run's claim waits in the pool, on its way but not
    // landed. (A run uses two connections at once, as in a worker.)
    const pool = createPool(db.url, 2);
    const held = [await pool.connect(), await pool.connect()];
    try {
      const app = appOn(pool);
      const gate = new ClaimGate();
      const { runId, outcome } = await start(app, gate, false);
      await waitFor(() => pool.waitingCount > 0, 10_000, 'the claim to wait for a connection');
      let handedBack = false;
      const handing = handBack(db.url, gate, () => [runId], 'injected fault').then(() => (handedBack = true));
      // The hand-back waits for the claim; nothing was written meanwhile.
      await new Promise((r) => setTimeout(r, 300));
      expect(handedBack).toBe(false);
      expect(await runRow(runId)).toEqual({ status: 'queued', attempts: 0, error: null });
      for (const c of held) c.release();
      await handing;
      // The claim landed (one attempt), then the hand-back: the run is queued, its step failed.
      expect(await runRow(runId)).toEqual({ status: 'queued', attempts: 1, error: CRASHED });
      expect(
        (await db.pool.query('SELECT position, status FROM runner.run_steps WHERE run_id = $1', [runId]))
          .rows,
      ).toEqual([{ position: 1, status: 'failed' }]);
      // The step's commit finds the run no longer running here and rolls back.
      expect(await outcome).toMatchObject({ status: 'retrying' });
      expect(await runRow(runId)).toEqual({ status: 'queued', attempts: 1, error: CRASHED });
      expect((await db.pool.query('SELECT count(*)::int AS n FROM step_marks')).rows[0]).toEqual({ n: 0 });
    } finally {
      await pool.end();
    }
  });
});
