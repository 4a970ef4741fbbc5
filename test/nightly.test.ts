import { copyFile, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { executeRun } from '../src/jobs/execute.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import { startWorker, type RunningWorker } from '../src/runner/worker.js';
import { modelOfFixtures } from './helpers/fixture-payroll.js';
import { money } from './helpers/payroll-model.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestQueue } from './helpers/fixtures.js';
import { startSshd, type TestSshd } from './helpers/sshd.js';
import { waitFor } from './helpers/runner.js';

/**
 * The shipped `nightly` job on the shipped fixtures, end to end through a worker: imports (CSV,
 * XLSX, timesheets from the time clock's SFTP), EDI in and out with both partners, and the exports.
 */

let db: TestDatabase;
let sshd: TestSshd;
let app: App;
let worker: RunningWorker;
let queue: TestQueue['queue'];
const saved = { ...process.env };

test.beforeAll(async ({ db: d, queue: q }) => {
  [db, queue] = [d, q.queue];
  sshd = await startSshd();
  for (const p of ['PARTNERA', 'PARTNERB', 'TIMECLOCK']) {
    for (const d of ['inbox', 'outbox', 'archive', 'error'])
      await mkdir(path.join(sshd.root, p, d), { recursive: true });
  }
  await mkdir('var/exports', { recursive: true });
  // The bank file is never overwritten: start without one from an earlier run.
  await rm('var/exports/bank-payments-2026-11.ach', { force: true });
  Object.assign(process.env, {
    ERP_SFTP_PORT: String(sshd.port),
    ERP_SFTP_USER: sshd.user,
    ERP_SFTP_KEY_FILE: sshd.privateKeyPath,
    ERP_SFTP_HOST_KEY_SHA256: sshd.hostKeyFingerprint,
    ERP_SFTP_ROOT: sshd.root,
  });
  app = createApp(
    {
      ...process.env,
      DATABASE_URL: db.url,
      ERP_HOME: '.',
      ERP_DATA_DIR: path.join('var', q.prefix),
      ERP_QUEUE_PREFIX: q.prefix,
    },
    pino({ level: 'silent' }),
  );
  worker = await startWorker(app, { concurrency: 1 });
}, 120_000);

afterAll(async () => {
  await worker?.close();
  await app?.close();
  process.env = saved;
  await sshd?.stop();
});

describe('nightly job', () => {
  it('imports, exchanges EDI and exports on the fixtures, through a worker', async () => {
    await copyFile(
      'fixtures/company/timesheets-2026-11.csv',
      path.join(sshd.root, 'TIMECLOCK/inbox/timesheets-2026-11.csv'),
    );
    await copyFile('fixtures/edi/partner-a-850.edi', path.join(sshd.root, 'PARTNERA/inbox/po-a.edi'));
    await copyFile('fixtures/edi/partner-b-850.edi', path.join(sshd.root, 'PARTNERB/inbox/po-b.edi'));
    const runnable = await resolveRunnable(app.home, 'nightly');
    const params = resolveParams(runnable.job, { period: '2026-11', as_of: '2026-11-30' });
    const runId = (await createQueuedRun(app.pool, runnable, params, { trigger: 'test' }))!;
    await enqueueRun(queue, runId, runnable, params);

    const status = await waitFor(
      async () => {
        const { rows } = await db.pool.query<{ status: string }>(
          'SELECT status FROM runner.runs WHERE id = $1',
          [runId],
        );
        return ['succeeded', 'failed', 'cancelled'].includes(rows[0]!.status) ? rows[0]!.status : null;
      },
      90_000,
      'the nightly run to end',
      200,
    );
    const { rows: steps } = await db.pool.query<{ name: string; status: string }>(
      'SELECT name, status FROM runner.run_steps WHERE run_id = $1 ORDER BY position',
      [runId],
    );
    expect(status).toBe('succeeded');
    expect(steps.map((s) => s.name)).toEqual([
      'customers',
      'items',
      'employees',
      'employee-deductions',
      'timesheets',
      'PARTNERA inbound',
      'PARTNERB inbound',
      'PARTNERA outbound 856',
      'PARTNERA outbound 810',
      'PARTNERB outbound 856',
      'PARTNERB outbound 810',
      'trial-balance-export',
      'ar-aging-export',
    ]);
    expect(steps.every((s) => s.status === 'succeeded')).toBe(true);

    const count = async (table: string): Promise<number> =>
      (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
    expect(await count('sales.customers')).toBe(24);
    expect(await count('sales.items')).toBe(243);
    expect(await count('hr.employees')).toBe(60);
    expect(await count('payroll.timesheets')).toBe(1050);
    // Two 850 transaction sets in each partner's file.
    expect(await count('sales.orders')).toBe(4);
    // Every inbound file was acknowledged and archived; the time clock's file too.
    expect(
      (await readdir(path.join(sshd.root, 'PARTNERA/outbox'))).filter((f) => f.startsWith('997')),
    ).toHaveLength(1);
    expect(
      (await readdir(path.join(sshd.root, 'PARTNERB/outbox'))).filter((f) => f.startsWith('999')),
    ).toHaveLength(1);
    expect(await readdir(path.join(sshd.root, 'PARTNERA/archive'))).toEqual(['po-a.edi']);
    expect(await readdir(path.join(sshd.root, 'TIMECLOCK/archive'))).toEqual(['timesheets-2026-11.csv']);
    expect((await stat('var/exports/trial-balance-2026-11.xlsx')).size).toBeGreaterThan(0);
    const files = await db.pool.query<{ file: string; status: string }>(
      `SELECT file, status FROM runner.run_files WHERE run_id = $1 AND status = 'loaded' ORDER BY id`,
      [runId],
    );
    expect(files.rows.map((f) => path.basename(f.file))).toEqual([
      'customers.csv',
      'items.csv',
      'employees.xlsx',
      'employee-deductions.csv',
      'timesheets-2026-11.csv',
      'trial-balance-2026-11.xlsx',
      'ar-aging-2026-11-30.csv', // named by its as_of, not by the day it ran
    ]);
  }, 120_000);

  it('closes payroll: a dry run shows each employee and the journal entry and writes nothing; the close then commits once', async () => {
    const open = await resolveRunnable(app.home, 'open-period');
    const opened = await executeRun(app, {
      runId: null,
      runnable: open,
      params: { period: '2026-11' },
      dryRun: false,
      signal: new AbortController().signal,
    });
    expect(opened.status).toBe('succeeded');
    const runnable = await resolveRunnable(app.home, 'payroll-close');
    const params = resolveParams(runnable.job, { period: '2026-11' });
    const dry = await executeRun(app, {
      runId: null,
      runnable,
      params,
      dryRun: true,
      signal: new AbortController().signal,
    });
    expect(dry.error).toBeNull();
    expect(dry.status).toBe('succeeded');
    const [summary, register, journal] = dry.steps[0]!.sql!.results;
    // The fixtures' payroll (no opening year-to-date wages loaded here), computed independently.
    const model = await modelOfFixtures(db.pool);
    const total = (xs: string[]) => money(xs.reduce((a, x) => a + BigInt(x.replace('.', '')), 0n));
    expect(summary!.rows[0]).toMatchObject({
      period: '2026-11',
      employee_count: 59,
      total_net: total(model.map((m) => m.net)),
    });
    expect(register!.rows).toHaveLength(59);
    const debits = journal!.rows.reduce((a, r) => a + Number(r.debit), 0);
    const credits = journal!.rows.reduce((a, r) => a + Number(r.credit), 0);
    expect(debits.toFixed(2)).toBe(
      total([...model.map((m) => m.gross), ...model.map((m) => m.totalEmployer)]),
    );
    expect(credits.toFixed(2)).toBe(debits.toFixed(2));
    const nothing = await db.pool.query(
      `SELECT (SELECT count(*) FROM payroll.runs)::int AS runs, (SELECT count(*) FROM gl.journal_entries)::int AS entries`,
    );
    expect(nothing.rows[0]).toEqual({ runs: 0, entries: 0 });

    // The real close through the worker, then a second one refused: nothing duplicated.
    const close = async (): Promise<string> => {
      const id = (await createQueuedRun(app.pool, runnable, params, { trigger: 'test' }))!;
      await enqueueRun(queue, id, runnable, params);
      return waitFor(
        async () => {
          const { rows } = await db.pool.query<{ status: string }>(
            'SELECT status FROM runner.runs WHERE id = $1',
            [id],
          );
          return ['succeeded', 'failed', 'cancelled'].includes(rows[0]!.status) ? rows[0]!.status : null;
        },
        60_000,
        'the payroll close to end',
        200,
      );
    };
    expect(await close()).toBe('succeeded');
    expect(await close()).toBe('failed');
    const once = await db.pool.query(
      `SELECT (SELECT count(*) FROM payroll.runs WHERE status = 'completed')::int AS runs,
              (SELECT count(*) FROM payroll.payslips)::int AS payslips`,
    );
    expect(once.rows[0]).toEqual({ runs: 1, payslips: 59 });
    expect((await stat('var/exports/payroll-register-2026-11.xlsx')).size).toBeGreaterThan(0);
    // The NACHA bank file went out, and net pay payable was cleared by the disbursement step.
    expect((await stat('var/exports/bank-payments-2026-11.ach')).size % 95).toBe(0);
    const owed = await db.pool.query(
      `SELECT coalesce(sum(credit - debit), 0) AS owed FROM gl.journal_lines WHERE account_code = '2100'`,
    );
    expect(owed.rows[0].owed).toBe('0.00');
  }, 120_000);
});
