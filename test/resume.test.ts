import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.js';
import { loadJob } from '../src/jobs/definition.js';
import { loadPipeline } from '../src/pipeline/definition.js';
import { buildExport } from '../src/pipeline/build.js';
import { startWorker, type RunningWorker } from '../src/runner/worker.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome, type TestQueue } from './helpers/fixtures.js';
import { erp as runErp, killChildren, startErp, waitFor, type Result } from './helpers/runner.js';

/**
 * A payroll close that fails halfway is finished by `erp run --resume <run>` alone: the close
 * (step 1) committed, the bank file (step 3) found a stale file of an earlier run in its place.
 * The operator renames the stale file (docs/resume.md) and resumes: the close is not run again,
 * the run's own period is used, the run ends succeeded in its own history.
 */

let db: TestDatabase;
let home: TestHome;
let app: App;
let worker: RunningWorker;
let queue: TestQueue;
const env = (): Record<string, string> => ({
  DATABASE_URL: db.url,
  ERP_HOME: home.dir,
  ERP_QUEUE_PREFIX: queue.prefix,
});
const erp = (args: string[]): Promise<Result> => runErp(args, env());

/** The shipped definitions the payroll close uses, copied into the test's home. */
const SHIPPED = [
  'jobs/payroll-close.yaml',
  'jobs/open-period.yaml',
  'pipelines/payroll-register-export.yaml',
  'pipelines/bank-payments-export.yaml',
];

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, queue] = [d, h, q];
  await home.link(['sql']);
  await mkdir(path.join(home.dir, 'var/exports'), { recursive: true });
  for (const f of SHIPPED) {
    await mkdir(path.dirname(path.join(home.dir, f)), { recursive: true });
    await copyFile(f, path.join(home.dir, f));
  }
  // Two salaried employees paid by bank transfer: no timesheets needed.
  await db.pool.query(`
    INSERT INTO hr.employees (employee_no, first_name, last_name, email, hire_date, pay_type, annual_salary,
                              department, bank_routing, bank_account) VALUES
      ('S001', 'Sam', 'Salaried', 'sam@example.com', '2020-01-01', 'salaried', 65000.00, 'Finance', '021000021', '2345678'),
      ('S002', 'Di', 'Salaried', 'di@example.com', '2020-01-01', 'salaried', 48000.00, 'Sales', '011000015', '99990000');`);
  app = createApp({ ...process.env, ...env() }, pino({ level: 'silent' }));
  worker = await startWorker(app, { concurrency: 1 });
}, 60_000);

afterAll(async () => {
  await killChildren();
  await worker?.close();
  await app?.close();
});

/** The file the job's bank file step writes for `period`, resolved from the definitions. */
async function bankTarget(period: string): Promise<string> {
  const job = await loadJob(home.dir, 'payroll-close');
  const bank = job.config.steps.find((s) => 'pipeline' in s && s.pipeline === 'bank-payments-export');
  if (!bank || !('pipeline' in bank)) throw new Error('payroll-close no longer exports the bank file');
  const def = await loadPipeline(home.dir, bank.pipeline);
  const sink = def.config.sink;
  if (sink.kind !== 'file') throw new Error(`${def.file}: the bank export no longer writes a local file`);
  const ctx = { home: home.dir, pool: db.pool, log: app.log, signal: new AbortController().signal };
  return path.join(home.dir, sink.dir, buildExport(def, ctx, { period }, null).outputName);
}

async function count(pool: pg.Pool, sql: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`SELECT (${sql})::int AS n`);
  return rows[0]!.n;
}

describe('erp run --resume', () => {
  it('finishes a payroll close that failed at the bank file, from the failed step, with the run’s own period', async () => {
    expect((await erp(['run', 'open-period', '--period', '2026-11', '--inline'])).code).toBe(0);
    const target = await bankTarget('2026-11');

    // A stale bank file lands while the close runs (another operator's export): hold the runner's
    // file records so the close waits after its register (step 2), drop the file, let it go on.
    const blocker = await db.pool.connect();
    let first: Result;
    try {
      await blocker.query('BEGIN; LOCK TABLE runner.run_files IN EXCLUSIVE MODE');
      const close = startErp(['run', 'payroll-close', '--period', '2026-11', '--inline'], env());
      await waitFor(
        async () =>
          (await count(
            db.pool,
            `SELECT count(*) FROM pg_locks WHERE relation = 'runner.run_files'::regclass AND NOT granted`,
          )) > 0 || null,
        30_000,
        'the close to reach its register export',
        50,
      );
      await writeFile(target, 'stale bank file of an earlier run\n');
      await blocker.query('COMMIT');
      first = { code: await close.exited, stdout: close.stdout(), stderr: close.stderr() };
    } finally {
      blocker.release();
    }
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(/already exists; set overwrite: true/);
    const runId = Number(/\(run (\d+)\)/.exec(first.stdout)![1]);
    const steps = await db.pool.query<{ position: number; status: string }>(
      'SELECT position, status FROM runner.run_steps WHERE run_id = $1 ORDER BY position',
      [runId],
    );
    expect(steps.rows).toEqual([
      { position: 1, status: 'succeeded' },
      { position: 2, status: 'succeeded' },
      { position: 3, status: 'failed' },
    ]);
    // A new run of the whole job is refused before anything is recorded while the stale file is
    // there (the preflight), and by the database once it is gone: the period is closed.
    const refused = await erp(['run', 'payroll-close', '--period', '2026-11', '--inline']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      `${path.relative(home.dir, target)} already exists and overwrite is off`,
    );
    // The documented fix: move the stale file aside; then the operator's one command.
    await rename(target, `${target}.stale`);
    const again = await erp(['run', 'payroll-close', '--period', '2026-11', '--inline']);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/closed/);

    const resumed = await erp(['run', '--resume', String(runId)]);
    expect(resumed.stderr).toContain(`resuming run ${runId} (payroll-close) from step 3 of 4`);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/succeeded/);

    const run = await db.pool.query<{
      status: string;
      params: unknown;
      attempts: number;
      options: { resumed?: unknown[] };
    }>('SELECT status, params, attempts, options FROM runner.runs WHERE id = $1', [runId]);
    expect(run.rows[0]).toMatchObject({ status: 'succeeded', params: { period: '2026-11' }, attempts: 2 });
    expect(run.rows[0]!.options.resumed).toHaveLength(1);
    const after = await db.pool.query<{ position: number; status: string }>(
      'SELECT position, status FROM runner.run_steps WHERE run_id = $1 ORDER BY position',
      [runId],
    );
    expect(after.rows.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    // The last step disbursed the net pay the bank file pays: net pay payable is cleared.
    expect(
      await count(db.pool, `SELECT count(*) FROM gl.journal_entries WHERE source = 'payroll-disbursement'`),
    ).toBe(1);
    // The close ran once: one completed payroll run, two payslips; the bank file has both of them.
    expect(await count(db.pool, `SELECT count(*) FROM payroll.runs WHERE period = '2026-11'`)).toBe(1);
    expect(await count(db.pool, 'SELECT count(*) FROM payroll.payslips')).toBe(2);
    const bank = await readFile(target, 'utf8');
    expect(bank).toMatch(/S001/);
    expect(bank).toMatch(/S002/);
    // No other run was recorded for the job after the failed one (the refused one aside).
    expect(
      await count(db.pool, `SELECT count(*) FROM runner.runs WHERE name = 'payroll-close' AND id > ${runId}`),
    ).toBe(1);
  }, 120_000);

  it('refuses a succeeded run, an unknown one, and extra parameters with exit 2', async () => {
    const done = await erp(['run', 'open-period', '--period', '2026-12', '--inline']);
    expect(done.code).toBe(0);
    const id = Number(/\(run (\d+)\)/.exec(done.stdout)![1]);
    const ok = await erp(['run', '--resume', String(id)]);
    expect(ok.code).toBe(2);
    expect(ok.stderr).toBe(`erp: run ${id} succeeded; there is nothing to resume\n`);
    const none = await erp(['run', '--resume', '999999']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no run 999999/);
    const extra = await erp(['run', '--resume', String(id), '--period', '2026-10']);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/--resume takes the run's own job, parameters and files; drop --period/);
  });

  it('refuses a resume while another run holds the lock, with exit 4', async () => {
    // A failed open-period run for 2027-01 , and another queued run of the same scope.
    await db.pool.query(`SELECT payroll.open_period('2027-01')`);
    const failed = await db.pool.query<{ id: string }>(
      `INSERT INTO runner.runs (kind, name, params, status, requested_by, host, lock_key, error)
       VALUES ('job', 'open-period', '{"period":"2027-01"}', 'failed', 'test', 'test', 'open-period:period=2027-01', 'x')
       RETURNING id`,
    );
    const holder = await db.pool.query<{ id: string }>(
      `INSERT INTO runner.runs (kind, name, params, status, requested_by, host, lock_key)
       VALUES ('job', 'open-period', '{"period":"2027-01"}', 'queued', 'test', 'test', 'open-period:period=2027-01')
       RETURNING id`,
    );
    const r = await erp(['run', '--resume', failed.rows[0]!.id, '--inline']);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`is already queued as run ${holder.rows[0]!.id}`);
    await db.pool.query(`UPDATE runner.runs SET status = 'cancelled' WHERE id = $1`, [holder.rows[0]!.id]);
  });
});
