import { readdir, readFile, symlink } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import path from 'node:path';
import type { Queue } from 'bullmq';
import Fastify from 'fastify';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { registerHealthRoutes } from '../src/http/health.js';
import { createPool } from '../src/db/pool.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import type { RunJobData } from '../src/runner/queue.js';
import {
  freePort,
  killChildren,
  makeJobsHome,
  REDIS_URL,
  startWorkerProcess,
  waitFor,
  type Child,
} from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { parseScrape, scrape } from './helpers/prometheus.js';

/**
 * /metrics, /healthz and /readyz: an `erp worker` started with ERP_HTTP_PORT serves them; its
 * metrics, scraped and parsed as Prometheus text, match the runs it made. The queue gauges and
 * /readyz's failures are checked on the same routes registered on a Fastify instance of the test's.
 */

let db: TestDatabase;
let home: TestHome;
let prefix: string;
let queue: Queue<RunJobData>;
let redis: Redis;
let env: Record<string, string>;

const FILES: Record<string, string> = {
  'pipelines/items.yaml': `
source: { kind: file, path: 'in/items.csv' }
format: { kind: csv }
validate:
  fields:
    sku: { type: string, required: true }
    price: { type: decimal, precision: 10, scale: 2 }
sink: { kind: postgres, table: public.items, mode: upsert, key: [sku] }
rejects: { max_reject_rate: 0.9 }
`,
  'in/items.csv': 'sku,price\nA,1.00\nB,2.50\nC,x\n',
  'in/more.csv': 'sku,price\nD,4.00\nE,5.00\nF,6.00\nG,7.00\n',
  'jobs/broken.yaml': `
retries: { attempts: 1 }
steps:
  - sql: t/broken.sql
`,
  'sql/t/broken.sql': `SELECT 1 / 0;\n`,
  'jobs/quick.yaml': `
steps:
  - sql: t/quick.sql
`,
  'sql/t/quick.sql': `SELECT 1;\n`,
};

async function submit(name: string, files?: string[]): Promise<number> {
  const runnable = await resolveRunnable(home.dir, name);
  const params = resolveParams(runnable.job, {});
  const runId = (await createQueuedRun(db.pool, runnable, params, files ? { files } : {}))!;
  await enqueueRun(queue, runId, runnable, params, files ? { files } : {});
  return runId;
}

async function waitFinal(id: number): Promise<string> {
  return waitFor(
    async () => {
      const { rows } = await db.pool.query<{ status: string }>(
        'SELECT status FROM runner.runs WHERE id = $1',
        [id],
      );
      const s = rows[0]?.status;
      return s === 'succeeded' || s === 'failed' || s === 'cancelled' ? s : null;
    },
    20_000,
    `run ${id} to end`,
    50,
  );
}

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, { prefix, queue, redis }] = [d, h, q];
  await db.pool.query(`CREATE TABLE items (sku text PRIMARY KEY, price numeric(10,2))`);
  await home.write(FILES);
  // The repository's migrations beside the test's SQL, so /readyz compares the database with them.
  for (const f of (await readdir('sql')).filter((n) => /^\d{6}_.*\.sql$/.test(n)))
    await symlink(path.resolve('sql', f), path.join(home.dir, 'sql', f));
  env = { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_QUEUE_PREFIX: prefix, REDIS_URL };
});

afterAll(killChildren);

describe('erp worker with ERP_HTTP_PORT', () => {
  let worker: Child;
  let base: string;

  it('says where it listens, and /healthz and /readyz answer', async () => {
    const port = await freePort();
    worker = await startWorkerProcess({ ...env, ERP_HTTP_PORT: String(port), ERP_HTTP_HOST: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    const lines = worker
      .stderr()
      .split('\n')
      .filter((l) => l.includes('/metrics'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`worker serves /metrics, /healthz and /readyz on http://127.0.0.1:${port}`);
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    const body = (await ready.json()) as { status: string; checks: Record<string, string> };
    expect(ready.status, JSON.stringify(body)).toBe(200);
    expect(body.checks.postgres).toBe('ok');
    expect(body.checks.redis).toBe('ok');
    expect(body.checks.migrations).toMatch(/^ok \(\d+\)$/);
  });

  it('counts the runs it made, their rows and files, by job, pipeline and status', async () => {
    const before = await scrape(`${base}/metrics`);
    expect(before.value('erp_runs_started_total', { job: 'items' })).toBe(0);

    const first = await submit('items');
    expect(await waitFinal(first)).toBe('succeeded');
    // The same file again: skipped by the ledger.
    const again = await submit('items');
    expect(await waitFinal(again)).toBe('succeeded');
    const more = await submit('items', [path.join(home.dir, 'in/more.csv')]);
    expect(await waitFinal(more)).toBe('succeeded');
    const broken = await submit('broken');
    expect(await waitFinal(broken)).toBe('failed');

    // The run's record commits a moment before the worker's own bookkeeping of it ends.
    const m = await waitFor(
      async () => {
        const s = await scrape(`${base}/metrics`);
        return s.value('erp_runs_finished_total', { job: 'broken', status: 'failed' }) === 1 ? s : null;
      },
      15_000,
      'the failed run to be counted',
    );
    expect(m.value('erp_runs_started_total', { job: 'items' })).toBe(3);
    expect(m.value('erp_runs_finished_total', { job: 'items', status: 'succeeded' })).toBe(3);
    expect(m.value('erp_runs_started_total', { job: 'broken' })).toBe(1);
    expect(m.value('erp_runs_finished_total', { job: 'items', status: 'failed' })).toBe(0);
    expect(m.value('erp_run_duration_seconds_count', { job: 'items', status: 'succeeded' })).toBe(3);
    expect(m.value('erp_step_duration_seconds_count', { job: 'broken', kind: 'sql', status: 'failed' })).toBe(
      1,
    );
    expect(
      m.value('erp_step_duration_seconds_count', { job: 'items', kind: 'pipeline', status: 'succeeded' }),
    ).toBe(3);

    // Rows and files, checked against what the runs recorded.
    const { rows } = await db.pool.query<{ read: number; loaded: number; rejected: number }>(
      `SELECT sum(rows_read)::int AS read, sum(rows_loaded)::int AS loaded, sum(rows_rejected)::int AS rejected
         FROM runner.run_files WHERE pipeline = 'items' AND status = 'loaded'`,
    );
    expect(rows[0]).toEqual({ read: 7, loaded: 6, rejected: 1 });
    expect(m.value('erp_pipeline_rows_read_total', { pipeline: 'items' })).toBe(7);
    expect(m.value('erp_pipeline_rows_loaded_total', { pipeline: 'items' })).toBe(6);
    expect(m.value('erp_pipeline_rows_rejected_total', { pipeline: 'items' })).toBe(1);
    expect(m.value('erp_pipeline_files_total', { pipeline: 'items', status: 'loaded' })).toBe(2);
    expect(m.value('erp_pipeline_files_total', { pipeline: 'items', status: 'skipped' })).toBe(1);

    // Last success per job: the finish time PostgreSQL recorded.
    const last = await db.pool.query<{ at: number }>(
      `SELECT extract(epoch FROM max(finished_at))::float8 AS at FROM runner.runs WHERE name = 'items' AND status = 'succeeded'`,
    );
    expect(m.value('erp_job_last_success_timestamp_seconds', { job: 'items' })).toBeCloseTo(
      last.rows[0]!.at,
      3,
    );
    expect(m.has('erp_job_last_success_timestamp_seconds', { job: 'broken' })).toBe(false);

    expect(m.value('erp_worker_runs_in_hand')).toBe(0);
    expect(m.value('erp_worker_concurrency')).toBe(1);
    expect(m.value('erp_queue_workers')).toBeGreaterThanOrEqual(1);
    expect(m.value('erp_runs_queued_oldest_age_seconds')).toBe(0);
    // Default process metrics.
    expect(m.value('process_resident_memory_bytes')).toBeGreaterThan(0);

    // Bounded labels: nothing names a file or a run.
    for (const f of m.families) {
      for (const s of f.metrics) {
        expect(
          Object.keys(s.labels ?? {}).filter((k) => /file|run|id$/.test(k)),
          f.name,
        ).toEqual([]);
        for (const v of Object.values(s.labels ?? {})) expect(v, f.name).not.toMatch(/\.csv|\//);
      }
    }
  });

  it('stops its server with the worker on SIGTERM', async () => {
    worker.process.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe('registerHealthRoutes on a Fastify instance', () => {
  const log = pino({ level: 'silent' });

  it('reports queue depth by state, no workers, and the age of the oldest queued run', async () => {
    const app = Fastify();
    registerHealthRoutes(app, { pool: db.pool, redis, queue, home: home.dir, log });
    const ids = [await submit('items'), await submit('quick'), await submit('broken')];
    await db.pool.query(`UPDATE runner.runs SET created_at = now() - interval '10 minutes' WHERE id = $1`, [
      ids[0],
    ]);
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const m = parseScrape(res.body);
    expect(m.value('erp_queue_jobs', { state: 'waiting' })).toBe(3);
    expect(m.value('erp_queue_jobs', { state: 'active' })).toBe(0);
    expect(m.value('erp_queue_workers')).toBe(0);
    expect(m.value('erp_runs_active', { status: 'queued' })).toBe(3);
    const age = m.value('erp_runs_queued_oldest_age_seconds');
    expect(age).toBeGreaterThanOrEqual(600);
    expect(age).toBeLessThan(660);
    await queue.drain();
    await db.pool.query(`UPDATE runner.runs SET status = 'cancelled' WHERE id = ANY ($1)`, [ids]);
    await app.close();
  });

  it('the Grafana dashboard and the Prometheus rules in docs/ use only metrics erp exports', async () => {
    const app = Fastify();
    registerHealthRoutes(app, { pool: db.pool, redis, queue, home: home.dir, log });
    const m = parseScrape((await app.inject({ method: 'GET', url: '/metrics' })).body);
    await app.close();
    const exported = new Set(m.families.map((f) => f.name));
    const rules = parseYaml(await readFile('docs/prometheus-alerts.yaml', 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const dashboard = JSON.parse(await readFile('docs/grafana-dashboard.json', 'utf8')) as {
      panels: { targets: { expr: string }[] }[];
    };
    const exprs = [
      ...rules.groups.flatMap((g) => g.rules.map((r) => r.expr)),
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)),
    ];
    expect(exprs.length).toBeGreaterThan(20);
    const used = new Set(
      exprs.flatMap((e) =>
        [...e.matchAll(/\b((?:erp|process)_[a-z_]+)/g)].map((x) => x[1]!.replace(/_(bucket|count|sum)$/, '')),
      ),
    );
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
    expect(used.size).toBeGreaterThan(15);
  });

  it('/readyz is 503 naming what is wrong: migrations behind, PostgreSQL unreachable', async () => {
    const newer = await makeJobsHome({ 'sql/999999_future.sql': 'SELECT 1;\n' });
    const app = Fastify();
    registerHealthRoutes(app, { pool: db.pool, redis, home: newer.dir, log });
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().checks.migrations).toMatch(
      /^down: database at migration \d+, sql\/ has 999999: run erp migrate$/,
    );
    expect(res.json().checks.postgres).toBe('ok');
    await app.close();
    await newer.remove();

    const deadPool = createPool(`postgres://root@127.0.0.1:${await freePort()}/none`, 1);
    const down = Fastify();
    registerHealthRoutes(down, { pool: deadPool, redis, home: home.dir, log });
    const r2 = await down.inject({ method: 'GET', url: '/readyz' });
    expect(r2.statusCode).toBe(503);
    expect(r2.json().checks.postgres).toMatch(/^down: .*ECONNREFUSED|^down: .*connect/);
    expect(r2.json().checks.redis).toBe('ok');
    await down.close();
    await deadPool.end();
  });
});
