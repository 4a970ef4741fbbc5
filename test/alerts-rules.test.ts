/**
 * The built-in alert rules that test/alerts.test.ts does not drive: `expect:` on a partner (its
 * SFTP pipelines' files and its inbound interchanges), an outbound interchange whose 997 is overdue,
 * an inbound file held for an operator, and runs queued while no worker is connected to the queue.
 * Each opens an alert at the clock the test sets, delivered to a real HTTP server, and resolves
 * once its cause is gone. State lives in the file's own database; the queue is on the shared Redis
 * under a prefix of its own.
 */
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { loadAlerts, type AlertsConfig, type RuleName } from '../src/alerts/definition.js';
import { checkAlerts, type CheckContext } from '../src/alerts/engine.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { createQueuedRun } from '../src/jobs/submit.js';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import { QUEUE_NAME } from '../src/runner/queue.js';
import { freePort } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

const HOUR = 3_600_000;
// The partner's daily deadline sits two hours ahead of the real clock, so a file loaded now (the
// database stamps it with its clock) falls in the period that deadline closes.
const TICK = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 2 * HOUR);
const DEADLINE = new Date(TICK.getTime() + 30 * 60_000);
const at = (ms: number): Date => new Date(DEADLINE.getTime() + ms);
const CRON = `${TICK.getUTCMinutes()} ${TICK.getUTCHours()} * * *`;

const SFTP = `
sftp:
  host: 127.0.0.1
  port_env: ERP_SFTP_PORT
  user_env: ERP_SFTP_USER
  private_key_file_env: ERP_SFTP_KEY_FILE
  host_key_sha256_env: ERP_SFTP_HOST_KEY_SHA256
  inbox: inbox
  outbox: outbox
  archive: archive
  error: error
`;

const FILES: Record<string, string> = {
  'partners/FILECO.yaml': `name: FILECO\n${SFTP}expect: { cron: '${CRON}', within: 30m, min_rows: 2 }\n`,
  'partners/TRADER.yaml': `name: TRADER
customer_no: TRADER
${SFTP}x12:
  ours: { isa_qualifier: ZZ, isa_id: ERPCO, gs_id: ERPCO }
  theirs: { isa_qualifier: ZZ, isa_id: TRADER, gs_id: TRADER }
  version: '004010'
  usage: production
  delimiters: { element: '*', component: '>', segment: '~' }
  inbound: ['850', '997']
  outbound: ['810']
  ack: '997'
  mappings: { '850': x12/850-in, '810': x12/810-out }
  ack_overdue_hours: 2
expect: { cron: '${CRON}', within: 30m, min_rows: 2 }
`,
  'pipelines/fileco.yaml': `
source: { kind: sftp, partner: FILECO, glob: 'hours-*.csv' }
format: { kind: csv }
validate:
  fields:
    employee: { type: string, required: true }
    hours: { type: decimal, precision: 5, scale: 2, required: true }
sink: { kind: postgres, table: public.hours, mode: append }
`,
  'jobs/idle.yaml': 'steps:\n  - sql: t/one.sql\n',
  'sql/t/one.sql': 'SELECT 1;\n',
  'alerts.yaml': `
channels:
  hook: { kind: webhook, url_env: ERP_TEST_HOOK_URL }
send_to: [hook]
repeat: 0s
rules:
  no_worker: { after: 10m }
`,
  'in/hours-1.csv': 'employee,hours\nE1,8.00\nE2,7.50\n',
};

let db: TestDatabase;
let home: TestHome;
let http: Server;
const hooks: Record<string, unknown>[] = [];
let ctx: CheckContext;
let config: AlertsConfig;
let prefix: string;
let queue: Queue;
let redis: Redis;

/** Only `rules` are evaluated by the next checks. */
function only(...rules: RuleName[]): void {
  for (const [name, rule] of Object.entries(config.rules)) rule.enabled = rules.includes(name as RuleName);
}

async function alerts(): Promise<{ rule: string; subject: string; message: string; open: boolean }[]> {
  const { rows } = await db.pool.query(
    `SELECT rule, subject, message, resolved_at IS NULL AS open FROM runner.alerts ORDER BY id`,
  );
  return rows as { rule: string; subject: string; message: string; open: boolean }[];
}

async function interchange(values: {
  direction: 'in' | 'out';
  status: string;
  isa13: number;
  sets?: number;
  sha?: string;
  created?: Date;
  sent?: Date;
}): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO edi.interchanges (direction, partner, isa13, status, file_name, sha256, set_count, created_at, sent_at)
     VALUES ($1, 'TRADER', $2, $3, $4, $5, $6, coalesce($7, now()), $8) RETURNING id`,
    [
      values.direction,
      values.isa13,
      values.status,
      `x12-${values.isa13}.edi`,
      values.sha ?? `sha-${values.isa13}`,
      values.sets ?? 1,
      values.created ?? null,
      values.sent ?? null,
    ],
  );
  return Number(rows[0]!.id);
}

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, { prefix, queue, redis }] = [d, h, q];
  await db.pool.query('CREATE TABLE hours (employee text NOT NULL, hours numeric(5,2) NOT NULL)');
  await home.write(FILES);
  http = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve));
  ctx = {
    pool: db.pool,
    home: home.dir,
    log: pino({ level: 'silent' }),
    env: { ERP_TEST_HOOK_URL: `http://127.0.0.1:${port}/hook` },
    queue,
  };
  config = (await loadAlerts(home.dir))!;
});

beforeEach(async () => {
  await db.pool.query('DELETE FROM runner.alerts');
  hooks.length = 0;
});

afterAll(async () => {
  await new Promise<void>((resolve) => http?.close(() => resolve()));
});

describe('expect: on a partner', () => {
  it('a file-only partner: missing at its deadline, resolved by a file its SFTP pipeline loads', async () => {
    only('file_missing', 'file_small', 'file_stale');
    await checkAlerts(ctx, config, at(1000));
    const missing = (await alerts()).filter((a) => a.subject === 'partner FILECO');
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatchObject({ rule: 'file_missing', open: true });
    expect(missing[0]!.message).toContain('partner FILECO (due');
    expect(hooks.some((h) => h.subject === 'partner FILECO' && h.state === 'open')).toBe(true);

    // The file comes through the partner's pipeline (here from a local copy: --file replaces the source).
    const app = testApp(db, home.dir);
    await runPipeline(app, await loadPipeline(home.dir, 'fileco'), {
      files: [path.join(home.dir, 'in/hours-1.csv')],
    });
    await checkAlerts(ctx, config, at(2000));
    const after = (await alerts()).filter((a) => a.subject === 'partner FILECO');
    expect(after.map((a) => a.open)).toEqual([false]);
    expect(hooks.some((h) => h.subject === 'partner FILECO' && h.state === 'resolved')).toBe(true);
  });

  it('a trading partner: its inbound interchanges count, their transaction sets as rows, a byte-identical re-send as stale', async () => {
    only('file_missing', 'file_small', 'file_stale');
    const trader = async (): Promise<{ rule: string; message: string; open: boolean }[]> =>
      (await alerts()).filter((a) => a.subject === 'partner TRADER');

    await checkAlerts(ctx, config, at(1000));
    expect((await trader()).map((a) => [a.rule, a.open])).toEqual([['file_missing', true]]);

    // One interchange with a single set: it came, but smaller than min_rows (2).
    await interchange({ direction: 'in', status: 'loaded', isa13: 101, sets: 1, sha: 'aaa' });
    await checkAlerts(ctx, config, at(2000));
    const small = await trader();
    expect(small.map((a) => [a.rule, a.open])).toEqual([
      ['file_missing', false],
      ['file_small', true],
    ]);
    expect(small[1]!.message).toContain('x12-101.edi: 1 rows loaded, expected at least 2');

    // The next period only brings the same bytes again under another ISA13: a stale re-send.
    await interchange({
      direction: 'in',
      status: 'duplicate',
      isa13: 102,
      sha: 'aaa',
      created: new Date(DEADLINE.getTime() + 23 * HOUR),
    });
    await checkAlerts(ctx, config, at(24 * HOUR + 1000));
    const stale = (await trader()).filter((a) => a.open);
    expect(stale.map((a) => a.rule)).toEqual(['file_stale']);
    expect(stale[0]!.message).toContain('x12-102.edi, is byte-identical to one loaded');
  });
});

describe('EDI rules', () => {
  it("ack_overdue: an outbound interchange without its 997 past the partner's limit, resolved when acknowledged", async () => {
    only('ack_overdue');
    const now = at(0);
    const id = await interchange({
      direction: 'out',
      status: 'sent',
      isa13: 123,
      sent: new Date(now.getTime() - 3 * HOUR),
    });
    // Judged by the rule's clock, not the database's: 1.5 h after sending it was not yet overdue.
    await checkAlerts(ctx, config, new Date(now.getTime() - 1.5 * HOUR));
    expect(await alerts()).toEqual([]);
    await checkAlerts(ctx, config, now);
    const [open] = await alerts();
    expect(open).toMatchObject({ rule: 'ack_overdue', subject: 'TRADER 000000123', open: true });
    expect(open!.message).toContain('sent 3 h ago has no 997/999 yet (limit 2 h)');
    expect(hooks.at(-1)).toMatchObject({ state: 'open', rule: 'ack_overdue' });

    await db.pool.query(
      `UPDATE edi.interchanges SET status = 'accepted', acknowledged_at = now() WHERE id = $1`,
      [id],
    );
    await checkAlerts(ctx, config, new Date(now.getTime() + 1000));
    expect((await alerts()).map((a) => a.open)).toEqual([false]);
    expect(hooks.at(-1)).toMatchObject({ state: 'resolved', rule: 'ack_overdue' });
  });

  it("inbound_held: a partner's file moved aside for an operator, resolved once its next interchange loads", async () => {
    only('inbound_held');
    await db.pool.query(
      `INSERT INTO edi.failed_files (partner, file_name, sha256, size, error, moved_to, created_at)
       VALUES ('TRADER', 'po-7.edi', 'bbb', 120, 'ISA: expected 106 characters', 'error/po-7.edi', now() + interval '1 minute')`,
    );
    await checkAlerts(ctx, config, at(0));
    const [held] = await alerts();
    expect(held).toMatchObject({ rule: 'inbound_held', subject: 'TRADER po-7.edi', open: true });
    expect(held!.message).toBe(
      'partner TRADER: inbound file po-7.edi is held for an operator in error/po-7.edi: ISA: expected 106 characters',
    );
    await interchange({
      direction: 'in',
      status: 'loaded',
      isa13: 200,
      created: new Date(Date.now() + 2 * 60_000),
    });
    await checkAlerts(ctx, config, at(1000));
    expect((await alerts()).map((a) => a.open)).toEqual([false]);
  });
});

describe('no_worker', () => {
  it('runs queued past `after` with no worker on the queue open it; a worker connecting resolves it', async () => {
    only('no_worker');
    const runnable = await resolveRunnable(home.dir, 'idle');
    const runId = (await createQueuedRun(db.pool, runnable, resolveParams(runnable.job, {})))!;
    const now = new Date();
    await db.pool.query(`UPDATE runner.runs SET created_at = $2 WHERE id = $1`, [
      runId,
      new Date(now.getTime() - 5 * 60_000),
    ]);
    // Five minutes queued: under the rule's ten.
    await checkAlerts(ctx, config, now);
    expect(await alerts()).toEqual([]);
    await checkAlerts(ctx, config, new Date(now.getTime() + 6 * 60_000));
    const [open] = await alerts();
    expect(open).toMatchObject({ rule: 'no_worker', subject: 'queue', open: true });
    expect(open!.message).toMatch(/^1 run\(s\) queued for over 10 min .* and no erp worker is connected$/);

    const worker = new Worker(QUEUE_NAME, async () => undefined, {
      connection: redis.duplicate(),
      prefix,
      autorun: false,
    });
    try {
      void worker.run();
      await worker.waitUntilReady();
      for (let i = 0; i < 100 && (await queue.getWorkers()).length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await checkAlerts(ctx, config, new Date(now.getTime() + 7 * 60_000));
      expect((await alerts()).map((a) => a.open)).toEqual([false]);
    } finally {
      await worker.close();
    }
  });
});
