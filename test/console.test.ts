import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { QueueEvents } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/env.js';
import { consoleConfigOf } from '../src/console/config.js';
import { buildConsole } from '../src/console/server.js';
import { addUser } from '../src/console/users.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { executeRun } from '../src/jobs/execute.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import {
  createQueueEvents,
  redisConnection,
  type RedisClient,
  type RunJobData,
} from '../src/runner/queue.js';
import type { Queue } from 'bullmq';
import { HAVE_CHROMIUM, CHROMIUM, launchChromium, logIn, screenshot } from './helpers/browser.js';
import { killChildren, REDIS_URL, startWorkerProcess, waitFor } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/**
 * `erp console` in a real browser (Debian's chromium through playwright-core) against the real
 * PostgreSQL, Redis and an `erp worker` process: log in, the overview's failed run, its rejects and
 * their reports, cancelling a running run (its transaction rolled back), what a viewer may not do,
 * CSRF, an inert `<script>` value, and throttled wrong passwords. Each scenario saves a screenshot.
 */

const XSS = '<script>window.__xss=1</script>';
const PASSWORDS = { alice: 'alice-password-1', oscar: 'oscar-password-1', vera: 'vera-password-1' };

const FILES: Record<string, string> = {
  'pipelines/items.yaml': `
source: { kind: file, path: 'in/items.csv' }
format: { kind: csv }
validate:
  fields:
    sku: { type: string, required: true, pattern: '[A-Z0-9-]+' }
    price: { type: decimal, precision: 10, scale: 2 }
sink: { kind: postgres, table: public.items, mode: append }
rejects: { max_rejects: 1 }
`,
  'in/items.csv': 'sku,price\nA-1,1.00\n',
  'in/items-bad.csv': `sku,price\nA-1,1.00\n"${XSS}",2.00\nB-2,abc\nC-3,1.5O\n`,
  'jobs/slow.yaml':
    'description: Inserts a row, then waits a minute before committing\nsteps:\n  - sql: t/slow.sql\n',
  // Runs the tests leave queued (never put on the queue), one lock scope each.
  'jobs/held.yaml': 'params:\n  n: { type: int }\nlock: [n]\nsteps:\n  - sql: t/slow.sql\n',
  'sql/t/slow.sql': "INSERT INTO public.cancel_me (note) VALUES ('uncommitted');\nSELECT pg_sleep(60);\n",
  // Rerun, reload and trigger: each run leaves a mark the tests count.
  'jobs/tagged.yaml': 'params:\n  tag: { type: string }\nlock: false\nsteps:\n  - sql: t/tag.sql\n',
  'sql/t/tag.sql': "INSERT INTO public.marks (tag) VALUES (:'tag');\n",
  'jobs/nightly-mark.yaml':
    "lock: false\nschedules:\n  - cron: '0 2 * * *'\nsteps:\n  - sql: t/nightly.sql\n",
  'sql/t/nightly.sql': "INSERT INTO public.marks (tag) VALUES ('nightly');\n",
  'pipelines/codes.yaml': `
source: { kind: file, path: 'in/codes.csv' }
format: { kind: csv }
sink: { kind: postgres, table: public.codes, mode: append }
`,
  'in/codes.csv': 'code\nX1\nX2\n',
  'pipelines/notes.yaml': `
source: { kind: file, path: 'in/notes.csv' }
format: { kind: csv }
sink: { kind: postgres, table: public.codes, mode: append }
`,
  'in/notes.csv': 'code\nN1\nN2\nN3\n',
  // A partner whose SFTP host key is pinned in the file: the partners page shows its fingerprint.
  'partners/PINNED.yaml': `name: PINNED
sftp:
  host: sftp.pinned.example
  port: 22
  user: erp
  private_key_file: keys/pinned
  host_key_sha256: ['SHA256:${'Q'.repeat(43)}']
  inbox: in
  outbox: out
  archive: archive
  error: error
`,
};

let db: TestDatabase;
let home: { dir: string; remove(): Promise<void> };
let prefix: string;
let queue: Queue<RunJobData>;
let eventsRedis: RedisClient;
let events: QueueEvents;
let server: FastifyInstance;
let base: string;
let browser: Browser;
let failedRun: number;
const contexts: BrowserContext[] = [];

async function one<T>(sql: string, params: unknown[] = []): Promise<T> {
  return (await db.pool.query(sql, params)).rows[0] as T;
}

/** A fresh browser context (its own cookies), closed after the tests. */
async function newPage() {
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 720 } });
  contexts.push(ctx);
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors };
}

let worker: Promise<unknown> | null = null;

/**
 * An `erp worker` process on the test's database and queue, started once (killed after the tests).
 * Its reconciler looks once, at start: the `held` runs the tests leave queued stay off the queue.
 */
function ensureWorker(): Promise<unknown> {
  worker ??= startWorkerProcess(
    {
      DATABASE_URL: db.url,
      ERP_HOME: home.dir,
      ERP_QUEUE_PREFIX: prefix,
      REDIS_URL,
      ERP_RECONCILE_MS: '3600000',
    },
    ['--concurrency', '2'],
  );
  return worker;
}

/** Executes a queued run of `name` here, to its end; returns its id. */
async function executedRun(
  name: string,
  given: Record<string, string>,
  opts: { files?: string[] } = {},
): Promise<number> {
  const runnable = await resolveRunnable(home.dir, name);
  const params = resolveParams(runnable.job, given);
  const id = (await createQueuedRun(db.pool, runnable, params, { requestedBy: 'night-shift', ...opts }))!;
  const outcome = await executeRun(testApp(db, home.dir), {
    runId: id,
    runnable,
    params,
    dryRun: false,
    ...opts,
    signal: new AbortController().signal,
  });
  expect(outcome.status).toBe('succeeded');
  return id;
}

async function waitRun(id: number, status: string): Promise<void> {
  let last: { status: string; error: string | null } | undefined;
  await waitFor(
    async () => {
      const row = await one<{ status: string; error: string | null }>(
        'SELECT status, error FROM runner.runs WHERE id = $1',
        [id],
      );
      last = row;
      return row.status === status;
    },
    60_000,
    () => `run ${id} to be ${status} (${JSON.stringify(last)})`,
  );
}

const count = async (sql: string, params: unknown[] = []): Promise<number> =>
  (await one<{ n: number }>(sql, params)).n;

async function queuedRun(name: string, given: Record<string, string>): Promise<number> {
  const runnable = await resolveRunnable(home.dir, name);
  const params = resolveParams(runnable.job, given);
  const id = (await createQueuedRun(db.pool, runnable, params, { requestedBy: 'test' }))!;
  return id;
}

describe.skipIf(!HAVE_CHROMIUM)('erp console in chromium', { timeout: 120_000 }, () => {
  test.beforeAll(async ({ db: d, queue: q }) => {
    [db, { prefix, queue }] = [d, q];
    await db.pool.query(
      `CREATE TABLE public.items (sku text, price numeric(10,2)); CREATE TABLE public.cancel_me (note text);
       CREATE TABLE public.marks (tag text); CREATE TABLE public.codes (code text);`,
    );
    // A home under var/, named by a relative path: the pages (and the README's screenshots) show
    // `var/console-home-…/in/items-bad.csv`, not a path of the machine the test ran on.
    await mkdir('var', { recursive: true });
    const dir = path.relative(process.cwd(), await mkdtemp(path.resolve('var/console-home-')));
    for (const [rel, content] of Object.entries(FILES)) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), content);
    }
    home = { dir: path.resolve(dir), remove: () => rm(dir, { recursive: true, force: true }) };
    eventsRedis = redisConnection(REDIS_URL, 'worker');
    events = createQueueEvents(eventsRedis, prefix);
    for (const [name, role] of [
      ['alice', 'admin'],
      ['oscar', 'operator'],
      ['vera', 'viewer'],
    ] as const) {
      await addUser(db.pool, name, role, PASSWORDS[name]);
    }
    const app = testApp(db, home.dir);
    // The failed run: erp run items --inline --file in/items-bad.csv, three rejects past max_rejects 1.
    const runnable = await resolveRunnable(home.dir, 'items');
    const file = path.relative(process.cwd(), path.join(home.dir, 'in/items-bad.csv'));
    failedRun = (await createQueuedRun(
      db.pool,
      runnable,
      {},
      { files: [file], requestedBy: 'night-shift' },
    ))!;
    const outcome = await executeRun(app, {
      runId: failedRun,
      runnable,
      params: {},
      dryRun: false,
      files: [file],
      signal: new AbortController().signal,
    });
    expect(outcome.status).toBe('failed');
    server = await buildConsole({
      pool: db.pool,
      log: pino({ level: 'silent' }),
      home: home.dir,
      dataDir: app.dataDir,
      config: consoleConfigOf(loadConfig({})),
      queue,
      events,
      throttle: { perAccount: 3, perAddress: 100, windowMs: 60_000 },
    });
    base = await server.listen({ port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await server?.close();
    await killChildren();
    await events?.close();
    eventsRedis?.disconnect();
    // The home lives under var/ (see above), not in the home fixture's temporary directory.
    await home?.remove();
  });

  it('logs in through the form, and refuses a wrong password', async () => {
    const { page } = await newPage();
    await page.goto(`${base}/runs`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('input[name=user]', 'alice');
    await page.fill('input[name=password]', 'not-her-password');
    await page.click('button[type=submit]');
    await expect(page.textContent('#login-error')).resolves.toContain('Wrong user name or password');
    await page.fill('input[name=user]', 'alice');
    await page.fill('input[name=password]', PASSWORDS.alice);
    await Promise.all([page.waitForURL(`${base}/runs`), page.click('button[type=submit]')]);
    expect(await page.textContent('header .who')).toContain('alice');
    const cookie = (await page.context().cookies()).find((c) => c.name === 'erp_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(cookie.expires).toBeGreaterThan(Date.now() / 1000);
    await screenshot(page, 'login');
  });

  it('shows the failed run on the overview with its one-line error', async () => {
    const { page, errors } = await newPage();
    await logIn(page, base, 'vera', PASSWORDS.vera);
    const row = page.locator(`#failed tr[data-run="${failedRun}"]`);
    await expect(row.textContent()).resolves.toContain('items');
    const error = (await row.locator('.error-line').textContent())!;
    expect(error).toMatch(/reject/i);
    expect(await page.textContent('[data-count="failed"]')).toBe('1');
    expect(errors).toEqual([]);
    await screenshot(page, 'overview');
  });

  it('lists the open alerts on the overview, escaped, and not the resolved ones', async () => {
    const open = await one<{ id: string }>(
      `INSERT INTO runner.alerts (rule, subject, message, opened_at)
       VALUES ('expected_file', 'items 2026-11-30', $1, '2026-11-30T23:15:00Z') RETURNING id`,
      [`items-bad.csv expected by 23:00, not arrived ${XSS}`],
    );
    const resolved = await one<{ id: string }>(
      `INSERT INTO runner.alerts (rule, subject, message, resolved_at)
       VALUES ('job_failed', 'nightly', 'nightly failed', now()) RETURNING id`,
    );
    const { page, errors } = await newPage();
    await logIn(page, base, 'vera', PASSWORDS.vera);
    const cells = await page.locator(`tr[data-alert="${open.id}"] td`).allTextContents();
    expect(cells).toEqual([
      'expected_file',
      'items 2026-11-30',
      '2026-11-30 23:15:00',
      `items-bad.csv expected by 23:00, not arrived ${XSS}`,
    ]);
    expect(await page.locator(`tr[data-alert="${resolved.id}"]`).count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(errors).toEqual([]);
    await db.pool.query('DELETE FROM runner.alerts WHERE id = ANY($1)', [[open.id, resolved.id]]);
  });

  it('opens the rejects, shows the <script> value as inert text, and downloads the report as CSV and XLSX', async () => {
    const { page, errors } = await newPage();
    const violations: string[] = [];
    page.on('console', (m) => m.type() === 'error' && violations.push(m.text()));
    await logIn(page, base, 'vera', PASSWORDS.vera);
    await page.click(`#failed a[href="/runs/${failedRun}"]`);
    await page.waitForSelector('#rejects table');
    const values = await page.locator('#rejects td.value code').allTextContents();
    expect(values).toContain(XSS);
    // Shown as text, never run: the page has no such element, and the script's global is unset.
    expect(await page.locator('#rejects script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    const reasons = await page.locator('#rejects tbody tr').allTextContents();
    expect(reasons.join('\n')).toMatch(/price.*1\.5O/s);
    await screenshot(page, 'rejects');

    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('a.download:text("CSV")')]);
    const report = await readFile((await csv.path())!, 'utf8');
    const lines = report.trim().split('\n');
    expect(lines[0]).toBe('file,line,field,value,reason');
    expect(lines).toHaveLength(4);
    expect(report).toContain(XSS);
    expect(csv.suggestedFilename()).toMatch(/^run-\d+-rejects-1-items-bad\.csv$/);

    const [xlsx] = await Promise.all([page.waitForEvent('download'), page.click('a.download:text("XLSX")')]);
    const { default: ExcelJS } = await import('exceljs');
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile((await xlsx.path())!);
    const sheet = wb.getWorksheet('rejects')!;
    expect(sheet.rowCount).toBe(4);
    const text = (r: number, c: number): string => sheet.getRow(r).getCell(c).text;
    expect([1, 2, 3, 4, 5].map((c) => text(1, c))).toEqual(['file', 'line', 'field', 'value', 'reason']);
    const cells = [2, 3, 4].map((r) => text(r, 4));
    expect(cells).toContain(XSS);
    expect(errors).toEqual([]);
    expect(violations.filter((v) => /Content Security Policy/.test(v))).toEqual([]);
  });

  it('cancels a running run from its page: the run is cancelled and its transaction rolled back', async () => {
    await ensureWorker();
    const runnable = await resolveRunnable(home.dir, 'slow');
    const id = (await createQueuedRun(db.pool, runnable, {}, { requestedBy: 'test' }))!;
    await enqueueRun(queue, id, runnable, {});
    // The step's INSERT is done and the transaction sits in pg_sleep, uncommitted.
    await waitFor(
      async () =>
        (
          await one<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()
               AND query LIKE '%pg_sleep(60)%' AND state = 'active' AND backend_xid IS NOT NULL`,
          )
        ).n > 0,
      30_000,
      'the slow step to be inside its transaction',
    );
    const { page, errors } = await newPage();
    await logIn(page, base, 'oscar', PASSWORDS.oscar);
    await page.goto(`${base}/runs/${id}`);
    expect(await page.textContent('[data-field=status]')).toBe('running');
    await Promise.all([page.waitForURL(`${base}/runs/${id}`), page.click('button:text("Cancel run")')]);
    // Live progress (server-sent events) turns the status to cancelled, then the page reloads.
    // A locator wait outlives the reload; a waitForFunction string would be eval'd in the page,
    // which the console's CSP (no unsafe-eval) refuses whenever the first check is not already true.
    await page.locator('[data-field=status]', { hasText: /^cancelled$/ }).waitFor({ timeout: 30_000 });
    await page.waitForSelector('#actions tr.action');
    const action = (await page.locator('#actions tr.action').first().textContent())!;
    expect(action).toContain('oscar');
    expect(action).toContain('cancel');
    expect(action).toContain('127.0.0.1');
    expect(await one<{ status: string }>('SELECT status FROM runner.runs WHERE id = $1', [id])).toEqual({
      status: 'cancelled',
    });
    expect(await one<{ n: number }>('SELECT count(*)::int AS n FROM public.cancel_me')).toEqual({ n: 0 });
    expect(errors).toEqual([]);
    await screenshot(page, 'cancelled');
  });

  it('gives a viewer no cancel button, and answers a forged cancel POST with 403', async () => {
    const id = await queuedRun('held', { n: '1' });
    const { page } = await newPage();
    await logIn(page, base, 'vera', PASSWORDS.vera);
    await page.goto(`${base}/runs/${id}`);
    expect(await page.textContent('[data-field=status]')).toBe('queued');
    expect(await page.locator('button:text("Cancel run")').count()).toBe(0);
    // The forged request carries the viewer's own valid session and CSRF token: the role refuses it.
    const csrf = await page.locator('header input[name=_csrf]').getAttribute('value');
    const r = await page.request.post(`${base}/runs/${id}/cancel`, { form: { _csrf: csrf! } });
    expect(r.status()).toBe(403);
    expect(await one<{ status: string }>('SELECT status FROM runner.runs WHERE id = $1', [id])).toEqual({
      status: 'queued',
    });
    await screenshot(page, 'viewer');
    // An operator's page has the button.
    const op = await newPage();
    await logIn(op.page, base, 'oscar', PASSWORDS.oscar);
    await op.page.goto(`${base}/runs/${id}`);
    expect(await op.page.locator('button:text("Cancel run")').count()).toBe(1);
  });

  it('reruns a run with the same parameters from its page; a viewer has no button and a forged POST gets 403', async () => {
    await ensureWorker();
    const first = await executedRun('tagged', { tag: 'night' });
    const runs = () => count(`SELECT count(*)::int AS n FROM runner.runs WHERE name = 'tagged'`);
    const before = await runs();

    const viewer = await newPage();
    await logIn(viewer.page, base, 'vera', PASSWORDS.vera);
    await viewer.page.goto(`${base}/runs/${first}`);
    expect(await viewer.page.locator('button:text("Rerun with the same parameters")').count()).toBe(0);
    const csrf = await viewer.page.locator('header input[name=_csrf]').getAttribute('value');
    const forged = await viewer.page.request.post(`${base}/runs/${first}/rerun`, { form: { _csrf: csrf! } });
    expect(forged.status()).toBe(403);
    expect(await runs()).toBe(before);

    const { page, errors } = await newPage();
    await logIn(page, base, 'oscar', PASSWORDS.oscar);
    await page.goto(`${base}/runs/${first}`);
    await Promise.all([
      page.waitForURL((u) => /^\/runs\/\d+$/.test(u.pathname) && u.pathname !== `/runs/${first}`),
      page.click('button:text("Rerun with the same parameters")'),
    ]);
    const id = Number(new URL(page.url()).pathname.split('/').pop());
    // A new run of the same job with the same parameters, queued by the operator, and put on the queue.
    expect(
      await one('SELECT name, params, requested_by, trigger FROM runner.runs WHERE id = $1', [id]),
    ).toEqual({ name: 'tagged', params: { tag: 'night' }, requested_by: 'oscar', trigger: 'console rerun' });
    expect(await runs()).toBe(before + 1);
    await waitRun(id, 'succeeded');
    expect(await count(`SELECT count(*)::int AS n FROM public.marks WHERE tag = 'night'`)).toBe(2);
    // The action shows on the run it started.
    await page.goto(`${base}/runs/${id}`);
    const action = (await page.locator('#actions tr.action').first().textContent())!;
    expect(action).toContain('oscar');
    expect(action).toContain('rerun');
    expect(
      await one(
        'SELECT actor, action, run_id::int, new_run_id::int FROM console.actions WHERE new_run_id = $1',
        [id],
      ),
    ).toEqual({ actor: 'oscar', action: 'rerun', run_id: first, new_run_id: id });
    expect(errors).toEqual([]);
    await screenshot(page, 'rerun');
  });

  it('reloads a file with --force from its run page: loaded again, not skipped as already loaded', async () => {
    await ensureWorker();
    // Absolute: the worker's working directory is not this process's (a relative --file is
    // recorded as given, relative to the submitter's directory).
    const file = path.join(home.dir, 'in/codes.csv');
    const first = await executedRun('codes', {}, { files: [file] });
    expect(await count('SELECT count(*)::int AS n FROM public.codes')).toBe(2);
    const fileId = (
      await one<{ id: number }>('SELECT id::int FROM runner.run_files WHERE run_id = $1', [first])
    ).id;
    const runs = () => count(`SELECT count(*)::int AS n FROM runner.runs WHERE name = 'codes'`);
    const before = await runs();

    const viewer = await newPage();
    await logIn(viewer.page, base, 'vera', PASSWORDS.vera);
    await viewer.page.goto(`${base}/runs/${first}`);
    expect(await viewer.page.locator('button:text("Reload (--force)")').count()).toBe(0);
    const csrf = await viewer.page.locator('header input[name=_csrf]').getAttribute('value');
    const forged = await viewer.page.request.post(`${base}/runs/${first}/files/${fileId}/reload`, {
      form: { _csrf: csrf! },
    });
    expect(forged.status()).toBe(403);
    expect(await runs()).toBe(before);

    const { page, errors } = await newPage();
    await logIn(page, base, 'oscar', PASSWORDS.oscar);
    await page.goto(`${base}/runs/${first}`);
    await Promise.all([
      page.waitForURL((u) => /^\/runs\/\d+$/.test(u.pathname) && u.pathname !== `/runs/${first}`),
      page.click('button:text("Reload (--force)")'),
    ]);
    const id = Number(new URL(page.url()).pathname.split('/').pop());
    expect(
      await one('SELECT name, options, requested_by, trigger FROM runner.runs WHERE id = $1', [id]),
    ).toEqual({
      name: 'codes',
      options: { force: true, files: [file] },
      requested_by: 'oscar',
      trigger: 'console reload',
    });
    await waitRun(id, 'succeeded');
    // Without --force the ledger would have skipped the file; forced, its rows went in again.
    expect(
      await one('SELECT status, rows_loaded::int FROM runner.run_files WHERE run_id = $1', [id]),
    ).toEqual({ status: 'loaded', rows_loaded: 2 });
    expect(await count('SELECT count(*)::int AS n FROM public.codes')).toBe(4);
    expect(errors).toEqual([]);
    await screenshot(page, 'reload');
  });

  it('triggers a schedule’s job now from the schedules page; a viewer cannot', async () => {
    await ensureWorker();
    const runs = () => count(`SELECT count(*)::int AS n FROM runner.runs WHERE name = 'nightly-mark'`);
    const before = await runs();

    const viewer = await newPage();
    await logIn(viewer.page, base, 'vera', PASSWORDS.vera);
    await viewer.page.goto(`${base}/schedules`);
    expect(await viewer.page.textContent('main')).toContain('nightly-mark#0');
    expect(await viewer.page.locator('button:text("Trigger now")').count()).toBe(0);
    const csrf = await viewer.page.locator('header input[name=_csrf]').getAttribute('value');
    const forged = await viewer.page.request.post(`${base}/schedules/nightly-mark/0/trigger`, {
      form: { _csrf: csrf! },
    });
    expect(forged.status()).toBe(403);
    expect(await runs()).toBe(before);

    const { page, errors } = await newPage();
    await logIn(page, base, 'oscar', PASSWORDS.oscar);
    await page.goto(`${base}/schedules`);
    const row = page.locator('tr', { hasText: 'nightly-mark#0' });
    await Promise.all([
      page.waitForURL((u) => /^\/runs\/\d+$/.test(u.pathname)),
      row.locator('button:text("Trigger now")').click(),
    ]);
    const id = Number(new URL(page.url()).pathname.split('/').pop());
    expect(await one('SELECT name, requested_by, trigger FROM runner.runs WHERE id = $1', [id])).toEqual({
      name: 'nightly-mark',
      requested_by: 'oscar',
      trigger: 'console trigger nightly-mark#0',
    });
    expect(await runs()).toBe(before + 1);
    await waitRun(id, 'succeeded');
    expect(await count(`SELECT count(*)::int AS n FROM public.marks WHERE tag = 'nightly'`)).toBe(1);
    expect(
      await one('SELECT actor, action, address FROM console.actions WHERE new_run_id = $1', [id]),
    ).toEqual({ actor: 'oscar', action: 'trigger', address: '127.0.0.1' });
    expect(errors).toEqual([]);
    await screenshot(page, 'trigger');
  });

  it('lists runs filtered by job and status, a page at a time, with the job’s chart', async () => {
    const runnable = await resolveRunnable(home.dir, 'tagged');
    const params = resolveParams(runnable.job, { tag: 'paged' });
    const ids: number[] = [];
    for (let i = 0; i < 55; i++)
      ids.push((await createQueuedRun(db.pool, runnable, params, { requestedBy: 'pager' }))!);
    // Finished runs with a duration, so the chart has points; one left failed, outside the filter.
    await db.pool.query(
      `UPDATE runner.runs SET status = 'succeeded', started_at = created_at, finished_at = created_at + interval '2 seconds'
        WHERE id = ANY($1)`,
      [ids.slice(1)],
    );
    await db.pool.query(`UPDATE runner.runs SET status = 'failed', finished_at = now() WHERE id = $1`, [
      ids[0],
    ]);
    const { page, errors } = await newPage();
    await logIn(page, base, 'vera', PASSWORDS.vera);
    await page.goto(`${base}/runs?name=tagged&status=succeeded&who=pager`);
    const shown = async (): Promise<number[]> =>
      (
        await page.locator('tr[data-run]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run')))
      ).map(Number);
    const first = await shown();
    expect(first).toHaveLength(50);
    expect(first).toEqual([...ids.slice(1)].reverse().slice(0, 50));
    expect(await page.locator('figure.chart svg').count()).toBeGreaterThan(0);
    await Promise.all([page.waitForURL(/before=/), page.click('a[rel=next]')]);
    const second = await shown();
    expect(second).toEqual([...ids.slice(1)].reverse().slice(50));
    expect(await page.locator('a[rel=next]').count()).toBe(0);
    // The failed one is there under its own status.
    await page.goto(`${base}/runs?name=tagged&status=failed&who=pager`);
    expect(await shown()).toEqual([ids[0]]);
    expect(errors).toEqual([]);
    await screenshot(page, 'runs');
  });

  it('finds a loaded file in the ledger by name and by SHA-256, with the run that loaded it', async () => {
    const file = path.join(home.dir, 'in/notes.csv');
    const run = await executedRun('notes', {}, { files: [file] });
    const sha = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    const { page, errors } = await newPage();
    await logIn(page, base, 'vera', PASSWORDS.vera);
    for (const q of ['notes.csv', sha]) {
      await page.goto(`${base}/files?q=${encodeURIComponent(q)}`);
      const cells = await page.locator('main tbody tr').first().locator('td').allTextContents();
      expect(cells[0]).toContain('notes.csv');
      expect(cells[1]).toBe('notes');
      expect(cells[4]).toBe(`run ${run}`);
      expect(cells[6]).toBe('3');
      expect(await page.locator('main tbody tr').count()).toBe(1);
    }
    await page.goto(`${base}/files?q=no-such-file-anywhere`);
    expect(await page.textContent('main')).toContain('No file in the ledger matches.');
    expect(errors).toEqual([]);
  });

  it('shows a partner’s pinned SFTP host key on the partners page', async () => {
    const { page, errors } = await newPage();
    await logIn(page, base, 'vera', PASSWORDS.vera);
    await page.goto(`${base}/partners`);
    const row = page.locator('tr', { hasText: 'PINNED' }).first();
    expect(await row.locator('td').allTextContents()).toEqual([
      'PINNED',
      'sftp.pinned.example',
      `SHA256:${'Q'.repeat(43)}`,
      '—',
      '—',
    ]);
    expect(errors).toEqual([]);
  });

  it('mounts bull-board at /queue for admins only', async () => {
    const admin = await newPage();
    await logIn(admin.page, base, 'alice', PASSWORDS.alice);
    const ok = await admin.page.goto(`${base}/queue`);
    expect(ok?.status()).toBe(200);
    expect(await admin.page.title()).toContain('erp queue');
    for (const [user, password] of [
      ['oscar', PASSWORDS.oscar],
      ['vera', PASSWORDS.vera],
    ] as const) {
      const { page } = await newPage();
      await logIn(page, base, user, password);
      const r = await page.goto(`${base}/queue`);
      expect(r?.status(), user).toBe(403);
      const api = await page.request.get(`${base}/queue/api/queues`);
      expect(api.status(), user).toBe(403);
    }
  });

  it('shows the queue and the workers alive on the overview', async () => {
    await ensureWorker();
    // A retry waiting for its backoff: delayed, not run by the worker.
    const job = await queue.add('console-test-delayed', { runId: 0 } as RunJobData, { delay: 3_600_000 });
    try {
      const { page, errors } = await newPage();
      await logIn(page, base, 'vera', PASSWORDS.vera);
      const facts = await page.locator('dl.facts dd').allTextContents();
      // waiting, active, delayed, workers alive
      expect(Number(facts[2])).toBe(1);
      expect(Number(await page.textContent('#workers-alive'))).toBeGreaterThanOrEqual(1);
      expect(errors).toEqual([]);
    } finally {
      await job.remove();
    }
  });

  it('refuses a state-changing request without the CSRF token, or with another session’s', async () => {
    const id = await queuedRun('held', { n: '2' });
    const { page } = await newPage();
    await logIn(page, base, 'oscar', PASSWORDS.oscar);
    const none = await page.request.post(`${base}/runs/${id}/cancel`, { form: { nothing: '1' } });
    expect(none.status()).toBe(403);
    expect(await none.text()).toContain('CSRF');
    const other = await newPage();
    await logIn(other.page, base, 'alice', PASSWORDS.alice);
    const foreign = await other.page.locator('header input[name=_csrf]').getAttribute('value');
    const wrong = await page.request.post(`${base}/runs/${id}/cancel`, { form: { _csrf: foreign! } });
    expect(wrong.status()).toBe(403);
    expect(await one<{ status: string }>('SELECT status FROM runner.runs WHERE id = $1', [id])).toEqual({
      status: 'queued',
    });
    // With its own token, the same request goes through (and is recorded).
    await page.goto(`${base}/runs/${id}`);
    // The form posts and is redirected back to the page it is on, so waiting for that URL would not
    // wait at all: wait for the POST's own response.
    const [posted] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${base}/runs/${id}/cancel` && r.request().method() === 'POST'),
      page.click('button:text("Cancel run")'),
    ]);
    expect(posted.status()).toBeLessThan(400);
    expect(await one<{ status: string }>('SELECT status FROM runner.runs WHERE id = $1', [id])).toEqual({
      status: 'cancelled',
    });
    await page.waitForLoadState();
    await screenshot(page, 'csrf');
  });

  it('throttles wrong passwords: after three, even the right one waits', async () => {
    const { page } = await newPage();
    await page.goto(`${base}/login`);
    for (let i = 0; i < 3; i++) {
      await page.fill('input[name=user]', 'alice');
      await page.fill('input[name=password]', `wrong-${i}`);
      const [r] = await Promise.all([
        page.waitForResponse(`${base}/login`),
        page.click('button[type=submit]'),
      ]);
      expect(r.status()).toBe(401);
    }
    await page.fill('input[name=user]', 'alice');
    await page.fill('input[name=password]', PASSWORDS.alice);
    const [r] = await Promise.all([page.waitForResponse(`${base}/login`), page.click('button[type=submit]')]);
    expect(r.status()).toBe(429);
    expect(await page.textContent('#login-error')).toContain('Too many failed sign-ins');
    expect((await page.context().cookies()).some((c) => c.name === 'erp_session')).toBe(false);
    await screenshot(page, 'throttled');
  });
});

describe.runIf(!HAVE_CHROMIUM)('erp console in chromium (skipped)', () => {
  it.skip(`needs chromium at ${CHROMIUM}; scripts/setup.sh installs it`, () => undefined);
});
