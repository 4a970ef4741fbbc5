import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome, type TestQueue } from './helpers/fixtures.js';
import { erp as runErp, killChildren, startErp, waitFor, type Result } from './helpers/runner.js';

/**
 * Two-person approval through the built CLI, a real worker, Redis and PostgreSQL: a run of a job
 * that requires approval waits with its dry run attached; its requester cannot approve it; another
 * person's approval runs it exactly once; a rejection or an expiry ends it; each decision is audited.
 */

let db: TestDatabase;
let home: TestHome;
let queue: TestQueue;

const env = (user: string): Record<string, string> => ({
  DATABASE_URL: db.url,
  ERP_HOME: home.dir,
  ERP_QUEUE_PREFIX: queue.prefix,
  ERP_USER: user,
});
const erp = (user: string, args: string[]): Promise<Result> => runErp(args, env(user));

const JOB = (expires: string): string => `
description: Close a payroll period (test)
params:
  period: { type: period }
lock: [period]
approval: { required: true, distinct_from_requester: true, expires_after: ${expires} }
steps:
  - sql: jobs/close.sql
`;

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, queue] = [d, h, q];
  await db.pool.query(
    'CREATE TABLE public.closes (period text NOT NULL, closed_at timestamptz DEFAULT now())',
  );
  await home.write({
    'jobs/payroll-close.yaml': JOB('1h'),
    'jobs/quick-close.yaml': JOB('1s'),
    'sql/jobs/close.sql':
      "INSERT INTO public.closes (period) VALUES (:'period') RETURNING period AS closing;\n",
  });
  // One worker executes what is approved; killChildren stops it. Its start is awaited generously:
  // on a busy machine a process takes seconds to start.
  const worker = startErp(['worker'], { ...env('worker'), LOG_LEVEL: 'info' });
  await waitFor(
    () => worker.stderr().includes('"msg":"worker started"'),
    100_000,
    () => `worker start (stderr: ${worker.stderr()})`,
  );
});
afterAll(killChildren);

const closes = async (period: string): Promise<number> =>
  Number(
    (
      await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM public.closes WHERE period = $1', [
        period,
      ])
    ).rows[0]!.n,
  );
const runOf = async (id: string): Promise<{ status: string; error: string | null }> =>
  (await db.pool.query('SELECT status, error FROM runner.runs WHERE id = $1', [id])).rows[0];
const audit = async (id: string): Promise<string[]> =>
  (
    await db.pool.query<{ e: string }>(
      `SELECT actor || ' ' || action AS e FROM audit.events WHERE subject = $1 ORDER BY seq`,
      [`run:${id}`],
    )
  ).rows.map((r) => r.e);

/** Requests a run as `user`; returns its id. */
async function request(user: string, job: string, period: string): Promise<string> {
  const r = await erp(user, ['run', job, '--period', period]);
  expect(r.stderr).toMatch(/run \d+ awaits approval by someone other than you until .*: erp approve \d+/);
  expect(r.code).toBe(0);
  const id = r.stdout.trim().split('\n').at(-1)!;
  expect(id).toMatch(/^\d+$/);
  return id;
}

// Each command is a process of the built CLI: on a busy machine each start takes seconds.
describe('approvals', { timeout: 300_000 }, () => {
  it('records the run as awaiting approval with its dry run, and runs nothing yet', async () => {
    const id = await request('alice', 'payroll-close', '2026-11');
    expect(await runOf(id)).toEqual({ status: 'awaiting_approval', error: null });
    expect(await closes('2026-11')).toBe(0);
    const list = await erp('bob', ['approvals', '--show']);
    expect(list.stdout).toMatch(new RegExp(`^${id}\\s+payroll-close\\s+period=2026-11\\s+alice`, 'm'));
    // The dry run's result rows, rolled back, are what the approver sees.
    expect(list.stdout).toContain(
      `run ${id}: dry run\npayroll-close period=2026-11 (dry run: nothing written)`,
    );
    expect(list.stdout).toContain(
      '  sql sql/jobs/close.sql: INSERT 1 (rolled back: dry run)\n    closing\n    2026-11\n',
    );
  });

  it('refuses the requester as approver, then runs once on a second person’s approval', async () => {
    const id = (
      await db.pool.query<{ id: string }>(
        "SELECT id::text FROM runner.runs WHERE name = 'payroll-close' AND params->>'period' = '2026-11'",
      )
    ).rows[0]!.id;
    const self = await erp('alice', ['approve', id]);
    expect(self.code).toBe(5);
    expect(self.stderr).toBe(
      `erp: run ${id} was requested by alice; payroll-close must be approved by someone else\n`,
    );
    expect((await runOf(id)).status).toBe('awaiting_approval');

    const ok = await erp('bob', ['approve', id, '--reason', 'checked the totals']);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe(`run ${id} approved and queued for the workers (erp runs show ${id})\n`);
    expect(ok.code).toBe(0);
    await waitFor(
      async () => (await runOf(id)).status === 'succeeded',
      20_000,
      () => `run ${id} to succeed`,
    );
    expect(await closes('2026-11')).toBe(1);

    // A second approval finds nothing to release; the close still ran once.
    const again = await erp('carol', ['approve', id]);
    expect(again.code).toBe(5);
    expect(again.stderr).toBe(`erp: run ${id} is not awaiting approval: it is succeeded (approved)\n`);
    await new Promise((r) => setTimeout(r, 500));
    expect(await closes('2026-11')).toBe(1);

    const show = await erp('bob', ['runs', 'show', id]);
    expect(show.stdout).toMatch(/approval: approved by bob at .* UTC — checked the totals/);
    expect(await audit(id)).toEqual([
      'alice run.approval_requested',
      'alice run.approval_refused',
      'bob run.approved',
    ]);
  });

  it('ends a rejected run without running it', async () => {
    const id = await request('alice', 'payroll-close', '2026-12');
    const r = await erp('bob', ['reject', id, '--reason', 'wrong period']);
    expect(r.code).toBe(0);
    expect(await runOf(id)).toEqual({ status: 'cancelled', error: 'rejected by bob: wrong period' });
    expect((await erp('carol', ['approve', id])).code).toBe(5);
    // Nor does resuming it as a cancelled run get round the rejection.
    const resumed = await erp('alice', ['run', '--resume', id]);
    expect(resumed.code).toBe(1);
    expect(resumed.stderr).toContain(
      `run ${id} was never approved (rejected); it cannot be resumed: request it again with erp run`,
    );
    expect((await runOf(id)).status).toBe('cancelled');
    expect(await closes('2026-12')).toBe(0);
    expect(await audit(id)).toEqual(['alice run.approval_requested', 'bob run.rejected']);
  });

  it('ends a run whose approval expired, and refuses to approve it', async () => {
    const id = await request('alice', 'quick-close', '2027-01');
    await new Promise((r) => setTimeout(r, 1500));
    const late = await erp('bob', ['approve', id]);
    expect(late.code).toBe(5);
    expect(late.stderr).toBe(`erp: run ${id} is not awaiting approval: it is cancelled (expired)\n`);
    expect((await runOf(id)).error).toMatch(
      /^approval expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: nobody approved it in time$/,
    );
    expect(await closes('2027-01')).toBe(0);
    expect(await audit(id)).toEqual(['alice run.approval_requested', 'bob run.approval_expired']);
  });

  it('a running scheduler cancels an expired approval on its own, with an audit row', async () => {
    const scheduler = startErp(['scheduler'], {
      ...env('scheduler'),
      ERP_APPROVAL_EXPIRY_MS: '300',
      LOG_LEVEL: 'info',
    });
    await waitFor(
      () => scheduler.stderr().includes('"msg":"scheduler started"'),
      100_000,
      () => `scheduler start (stderr: ${scheduler.stderr()})`,
    );
    const id = await request('alice', 'quick-close', '2027-03');
    // Nobody runs approve, reject or approvals: the scheduler alone ends it.
    await waitFor(
      async () => (await runOf(id)).status === 'cancelled',
      30_000,
      () => `run ${id} cancelled`,
    );
    expect((await runOf(id)).error).toMatch(/^approval expired at .*: nobody approved it in time$/);
    expect(await audit(id)).toEqual(['alice run.approval_requested', 'scheduler run.approval_expired']);
    expect(await closes('2027-03')).toBe(0);
    scheduler.process.kill('SIGTERM');
    expect(await scheduler.exited).toBe(0);
  });

  it('refuses to approve a run whose definitions changed since its dry run', async () => {
    const id = await request('alice', 'payroll-close', '2027-02');
    await writeFile(
      path.join(home.dir, 'sql/jobs/close.sql'),
      "INSERT INTO public.closes (period) VALUES (:'period'), (:'period');\n",
    );
    const r = await erp('bob', ['approve', id]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`erp: run ${id}: sql/jobs/close.sql changed since it was requested`);
    expect((await runOf(id)).status).toBe('awaiting_approval');
    expect(await closes('2027-02')).toBe(0);
  });

  it('refuses --inline and any other way to queue such a job without approval', async () => {
    const r = await erp('alice', ['run', 'payroll-close', '--period', '2027-03', '--inline']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'erp: payroll-close requires approval, so it cannot run --inline: run it without --inline to request approval\n',
    );
    const verify = await erp('auditor', ['audit', 'verify']);
    expect(verify.code).toBe(0);
  });
});
