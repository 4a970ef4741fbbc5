import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAlerts, type AlertsConfig } from '../src/alerts/definition.js';
import { checkAlerts, type CheckContext } from '../src/alerts/engine.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { createQueuedRun } from '../src/jobs/submit.js';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import { erp, freePort, makeJobsHome } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/**
 * The built-in alerts end to end: rules evaluated at a clock the test sets, notices delivered to a
 * real SMTP server (smtp-server) and a real HTTP server started here, state kept in runner.alerts.
 */

let db: TestDatabase;
let home: TestHome;
let smtp: SMTPServer;
let http: Server;
const mails: string[] = [];
const hooks: { path: string; body: Record<string, unknown> }[] = [];
let env: Record<string, string>;
let ctx: CheckContext;
let config: AlertsConfig;

const HOUR = 3_600_000;
// The daily deadline sits two hours ahead of the real clock, so files loaded now (real time) fall
// in the period it closes; the test moves a file's time back to make it "yesterday's".
const REAL = new Date();
const TICK = new Date(Math.floor(REAL.getTime() / 60_000) * 60_000 + 2 * HOUR);
const DEADLINE = new Date(TICK.getTime() + 30 * 60_000);
const at = (ms: number): Date => new Date(DEADLINE.getTime() + ms);

const FILES = (): Record<string, string> => ({
  'pipelines/timesheets.yaml': `
source: { kind: file, path: 'in/timesheet.csv' }
format: { kind: csv }
validate:
  fields:
    employee: { type: string, required: true }
    hours: { type: decimal, precision: 5, scale: 2, required: true }
sink: { kind: postgres, table: public.timesheets, mode: append }
expect: { cron: '${TICK.getUTCMinutes()} ${TICK.getUTCHours()} * * *', within: 30m, min_rows: 2 }
`,
  'pipelines/strict.yaml': `
source: { kind: file, path: 'in/strict.csv' }
format: { kind: csv }
validate:
  fields:
    employee: { type: string, required: true }
    hours: { type: decimal, precision: 5, scale: 2, required: true }
sink: { kind: postgres, table: public.timesheets, mode: append }
rejects: { max_rejects: 0 }
`,
  'jobs/nightly.yaml': `
steps:
  - sql: t/one.sql
schedules:
  - { cron: '0 3 * * *', deadline: 1h }
`,
  'sql/t/one.sql': 'SELECT 1;\n',
  'alerts.yaml': `
channels:
  mail: { kind: email, smtp_url_env: ERP_TEST_SMTP_URL, from: erp@example.com, to: [ops@example.com] }
  hook: { kind: webhook, url_env: ERP_TEST_HOOK_URL }
  chat: { kind: webhook, url_env: ERP_TEST_CHAT_URL, format: slack }
send_to: [mail, hook]
repeat: 1h
rules:
  file_stale: { send_to: [chat] }
`,
  'in/day1.csv': 'employee,hours\nE1,8.00\nE2,7.50\n',
  'in/day2.csv': 'employee,hours\nE1,6.00\nE2,8.00\n',
  'in/short.csv': 'employee,hours\nE1,4.00\n',
  'in/bad.csv': 'employee,hours\nE1,8.00\nE2,lots\n',
});

async function load(pipeline: string, file: string): Promise<number> {
  const app = testApp(db, home.dir);
  const r = await runPipeline(app, await loadPipeline(home.dir, pipeline), {
    files: [path.join(home.dir, 'in', file)],
  });
  return r.runId!;
}

/** Moves the time a run's files were recorded (the clock of the test is not the database's). */
async function recordedAt(runId: number, when: Date): Promise<void> {
  await db.pool.query('UPDATE runner.run_files SET finished_at = $2 WHERE run_id = $1', [runId, when]);
  await db.pool.query('UPDATE runner.runs SET finished_at = $2 WHERE id = $1', [runId, when]);
}

async function open(): Promise<{ rule: string; subject: string; message: string }[]> {
  const { rows } = await db.pool.query(
    `SELECT rule, subject, message FROM runner.alerts WHERE resolved_at IS NULL ORDER BY id`,
  );
  return rows as { rule: string; subject: string; message: string }[];
}

/** Waits until the SMTP server has received `n` messages (delivery completes after DATA ends). */
async function mailCount(n: number): Promise<void> {
  for (let i = 0; i < 100 && mails.length < n; i++) await new Promise((r) => setTimeout(r, 20));
  expect(mails).toHaveLength(n);
}

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query(`CREATE TABLE timesheets (employee text NOT NULL, hours numeric(5,2) NOT NULL)`);
  await home.write(FILES());
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.toString()));
      stream.on('end', () => {
        mails.push(text);
        callback();
      });
    },
  });
  const smtpPort = await freePort();
  await new Promise<void>((resolve) => smtp.listen(smtpPort, '127.0.0.1', resolve));
  http = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hooks.push({ path: req.url ?? '', body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(204).end();
    });
  });
  const httpPort = await freePort();
  await new Promise<void>((resolve) => http.listen(httpPort, '127.0.0.1', resolve));
  env = {
    ERP_TEST_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    ERP_TEST_HOOK_URL: `http://127.0.0.1:${httpPort}/hook`,
    ERP_TEST_CHAT_URL: `http://127.0.0.1:${httpPort}/chat`,
  };
  ctx = { pool: db.pool, home: home.dir, log: pino({ level: 'silent' }), env };
  config = (await loadAlerts(home.dir))!;
});

afterAll(async () => {
  await new Promise<void>((resolve) => smtp?.close(() => resolve()));
  await new Promise<void>((resolve) => http?.close(() => resolve()));
});

describe('expected files', () => {
  it('opens an alert at the deadline when the file has not come, once, repeats it, and resolves it', async () => {
    // Yesterday's file came on time (the period before this one ended 23.5 h before the tick).
    await recordedAt(await load('timesheets', 'day1.csv'), new Date(TICK.getTime() - 25 * HOUR));
    // The built-in schedule rule is not what this test is about: its job has run.
    config.rules.schedule_late.enabled = false;

    expect((await checkAlerts(ctx, config, at(-1000))).opened).toBe(0);
    expect(await open()).toEqual([]);
    expect(hooks).toHaveLength(0);

    const r = await checkAlerts(ctx, config, at(1000));
    expect(r).toMatchObject({ ran: true, opened: 1, sent: 2, failed: 0 });
    const [alert] = await open();
    expect(alert).toMatchObject({ rule: 'file_missing', subject: 'timesheets' });
    expect(alert!.message).toContain(`it was due by ${DEADLINE.toISOString().replace('.000Z', 'Z')}`);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]!.path).toBe('/hook');
    expect(hooks[0]!.body).toMatchObject({ state: 'open', rule: 'file_missing', subject: 'timesheets' });
    await mailCount(1);
    expect(mails[0]).toMatch(/Subject: \[erp\] OPEN file_missing timesheets/);
    expect(mails[0]).toMatch(/To: ops@example\.com/);

    // Still missing a minute later: no second notice; an hour later (repeat: 1h), one reminder.
    expect((await checkAlerts(ctx, config, at(61_000))).sent).toBe(0);
    expect((await checkAlerts(ctx, config, at(HOUR + 1000))).sent).toBe(2);
    expect(hooks[1]!.body).toMatchObject({ state: 'repeat', rule: 'file_missing' });
    await mailCount(2);
    expect(mails[1]).toMatch(/Subject: \[erp\] STILL OPEN file_missing timesheets/);

    // The file comes late: the alert resolves, with one resolved notice.
    await load('timesheets', 'day2.csv');
    const resolved = await checkAlerts(ctx, config, at(HOUR + 2000));
    expect(resolved).toMatchObject({ resolved: 1, sent: 2 });
    expect(await open()).toEqual([]);
    expect(hooks[2]!.body).toMatchObject({ state: 'resolved', rule: 'file_missing' });
    await mailCount(3);
    expect((await checkAlerts(ctx, config, at(HOUR + 3000))).sent).toBe(0);
  });

  it("catches a stale re-send: the next period's file is byte-identical to this one's", async () => {
    // The same content again the next day: the ledger skips it, nothing new is loaded.
    const again = await load('timesheets', 'day2.csv');
    const { rows } = await db.pool.query<{ status: string }>(
      'SELECT status FROM runner.run_files WHERE run_id = $1',
      [again],
    );
    expect(rows.map((r) => r.status)).toEqual(['skipped']);
    await recordedAt(again, new Date(DEADLINE.getTime() + 23 * HOUR));
    const before = hooks.length;
    await checkAlerts(ctx, config, at(24 * HOUR + 1000));
    const [alert] = await open();
    expect(alert).toMatchObject({ rule: 'file_stale', subject: 'timesheets' });
    expect(alert!.message).toContain('day2.csv, is byte-identical to one loaded');
    // This rule goes to the Slack-style channel only.
    expect(hooks.slice(before)).toHaveLength(1);
    expect(hooks[before]!.path).toBe('/chat');
    expect(Object.keys(hooks[before]!.body)).toEqual(['text']);
    expect(hooks[before]!.body.text).toMatch(/^\*\[erp\] OPEN file_stale timesheets\*\n.*byte-identical/);
  });

  it('a file much smaller than declared opens file_small; the stale alert resolves', async () => {
    const short = await load('timesheets', 'short.csv');
    await recordedAt(short, new Date(DEADLINE.getTime() + 23.5 * HOUR));
    await checkAlerts(ctx, config, at(24 * HOUR + 2000));
    const now = await open();
    expect(now.map((a) => a.rule)).toEqual(['file_small']);
    expect(now[0]!.message).toContain('short.csv: 1 rows loaded, expected at least 2');
    const { rows } = await db.pool.query(
      `SELECT rule FROM runner.alerts WHERE resolved_at IS NOT NULL AND resolved_notified_at IS NOT NULL ORDER BY id`,
    );
    expect(rows.map((r: { rule: string }) => r.rule)).toEqual(['file_missing', 'file_stale']);
  });
});

describe('other rules', () => {
  it('a file breaking its reject policy: the first rejects and the report path in the message', async () => {
    await load('strict', 'bad.csv');
    await checkAlerts(ctx, config, at(24 * HOUR + 3000));
    const failed = (await open()).find((a) => a.rule === 'run_failed');
    expect(failed?.subject).toBe('strict');
    expect(failed!.message).toMatch(/^run \d+ of strict failed at /);
    expect(failed!.message).toContain('line 3, field hours: value "lots"');
    const report = /reject report: (\S+)/.exec(failed!.message)?.[1];
    expect(report).toBeDefined();
    expect(await readFile(path.resolve(home.dir, report!), 'utf8')).toContain('lots');
  });

  it("a schedule's tick without a successful run by its deadline: missed, then still running, then resolved", async () => {
    config.rules.schedule_late.enabled = true;
    // The nightly job's 03:00 tick; its deadline is 04:00.
    const day = new Date(DEADLINE.getTime() + 2 * 24 * HOUR);
    const tick = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), 3));
    // The day before's tick had its successful run.
    const runnable = await resolveRunnable(home.dir, 'nightly');
    const params = resolveParams(runnable.job, {});
    const previous = await createQueuedRun(db.pool, runnable, params, {
      scheduleTick: `nightly#0@${new Date(tick.getTime() - 24 * HOUR).toISOString()}`,
    });
    await db.pool.query(`UPDATE runner.runs SET status = 'succeeded', finished_at = now() WHERE id = $1`, [
      previous,
    ]);
    await checkAlerts(ctx, config, new Date(tick.getTime() + HOUR - 1000));
    expect((await open()).some((a) => a.rule === 'schedule_late')).toBe(false);
    await checkAlerts(ctx, config, new Date(tick.getTime() + HOUR + 1000));
    let late = (await open()).find((a) => a.rule === 'schedule_late');
    expect(late?.subject).toBe('nightly#0');
    expect(late!.message).toContain('no run was started for it (missed');

    // The tick's run started late and is still going: the alert stays open and says so.
    const id = await createQueuedRun(db.pool, runnable, params, {
      scheduleTick: `nightly#0@${tick.toISOString()}`,
    });
    await db.pool.query(`UPDATE runner.runs SET status = 'running' WHERE id = $1`, [id]);
    await checkAlerts(ctx, config, new Date(tick.getTime() + HOUR + 60_000));
    late = (await open()).find((a) => a.rule === 'schedule_late');
    expect(late!.message).toContain(`run ${id} is still running past the deadline`);

    await db.pool.query(`UPDATE runner.runs SET status = 'succeeded', finished_at = now() WHERE id = $1`, [
      id,
    ]);
    const r = await checkAlerts(ctx, config, new Date(tick.getTime() + HOUR + 120_000));
    expect(r.resolved).toBeGreaterThanOrEqual(1);
    expect((await open()).some((a) => a.rule === 'schedule_late')).toBe(false);
  });

  it('erp alerts lists them; erp alerts test <channel> sends a test notice; erp schema writes alerts.schema.json', async () => {
    const cliEnv = { ...env, DATABASE_URL: db.url, ERP_HOME: home.dir };
    const list = await erp(['alerts'], cliEnv);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+STATE\s+RULE/);
    expect(list.stdout).toMatch(/open\s+run_failed\s+strict/);
    expect(list.stdout).toMatch(/resolved\s+file_stale\s+timesheets/);

    const before = hooks.length;
    const test = await erp(['alerts', 'test', 'hook'], cliEnv);
    expect(test.code, test.stderr).toBe(0);
    expect(test.stdout).toBe('test notice sent to hook\n');
    expect(hooks[before]!.body).toMatchObject({ state: 'test', rule: 'test', subject: 'hook' });

    const unknown = await erp(['alerts', 'test', 'pager'], cliEnv);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('erp: usage: erp alerts test <channel>; channels are: mail, hook, chat\n');

    // A channel whose secret is missing says which variable, never a value.
    const noSecret = await erp(['alerts', 'test', 'hook'], { ...cliEnv, ERP_TEST_HOOK_URL: '' });
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toBe(
      'erp: alerts.yaml, channels.hook: environment variable ERP_TEST_HOOK_URL is not set\n',
    );

    const out = path.join(home.dir, 'schemas');
    const schema = await erp(['schema', '--out', out], cliEnv);
    expect(schema.code, schema.stderr).toBe(0);
    const json = JSON.parse(await readFile(path.join(out, 'alerts.schema.json'), 'utf8')) as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(json.properties)).toEqual(['channels', 'send_to', 'repeat', 'rules']);
  });

  it('alerts.yaml errors name the file, the line and the key', async () => {
    const bad = await makeJobsHome({
      'alerts.yaml':
        'channels:\n  mail: { kind: email, smtp_url_env: SMTP, from: a@b.c, to: [x@y.z] }\nsend_to: [pager]\n',
    });
    await expect(loadAlerts(bad.dir)).rejects.toThrow(
      "alerts.yaml, line 3, send_to.0: unknown channel 'pager'; channels are: mail",
    );
    await bad.remove();
  });
});
