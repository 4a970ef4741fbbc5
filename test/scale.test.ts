/**
 * When one machine is not enough: several `erp worker` processes on one queue run each run once;
 * ERP_PG_MAX_CONNECTIONS caps what a worker opens (counted in pg_stat_activity, not trusted from the
 * code); Redis Cluster (three masters) and Sentinel started by the test on loopback ports carry runs
 * through the REDIS_URL forms `redis+cluster://` and `redis+sentinel://`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import { workerConnections } from '../src/runner/connections.js';
import type { RunJobData } from '../src/runner/queue.js';
import {
  erp,
  freePort,
  killChildren,
  REDIS_URL,
  startRedisServer,
  startWorkerProcess,
  waitFor,
} from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';

const FILES: Record<string, string> = {
  'jobs/tick.yaml': `
params:
  n: { type: string }
steps:
  - sql: t/tick.sql
`,
  'sql/t/tick.sql': `SELECT pg_sleep(0.4);\nINSERT INTO ticks (n) VALUES (:'n');\n`,
};

let db: TestDatabase;
let home: TestHome;
let prefix: string;
let queue: Queue<RunJobData>;
let env: Record<string, string>;

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, { prefix, queue }] = [d, h, q];
  await db.pool.query('CREATE TABLE ticks (n text NOT NULL)');
  await home.write(FILES);
  env = { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_QUEUE_PREFIX: prefix, REDIS_URL };
});

afterEach(() => killChildren());

afterAll(killChildren);

async function submit(n: string): Promise<number> {
  const runnable = await resolveRunnable(home.dir, 'tick');
  const params = resolveParams(runnable.job, { n });
  const runId = (await createQueuedRun(db.pool, runnable, params))!;
  await enqueueRun(queue, runId, runnable, params);
  return runId;
}

/** Submits `count` runs of the job, waits until every one has ended and checks each succeeded. */
async function submitAndWait(count: number, tag: string): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(await submit(`${tag}${i}`));
  await waitFor(
    async () =>
      (
        await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM runner.runs WHERE id = ANY($1) AND status IN ('succeeded', 'failed')`,
          [ids],
        )
      ).rows[0]!.n === ids.length,
    60_000,
    `all ${count} runs to end`,
  );
  const { rows } = await db.pool.query<{ status: string }>(
    'SELECT DISTINCT status FROM runner.runs WHERE id = ANY($1)',
    [ids],
  );
  expect(rows.map((r) => r.status)).toEqual(['succeeded']);
  return ids;
}

/** The worker's DATABASE_URL, its sessions labelled so pg_stat_activity tells them from the test's. */
function labelled(url: string, name: string): string {
  const u = new URL(url);
  u.searchParams.set('application_name', name);
  return u.toString();
}

/** Samples the connections labelled `name` every 20 ms until stopped; resolves with the most seen. */
function sampleConnections(name: string): { stop(): Promise<number> } {
  let running = true;
  let most = 0;
  const loop = (async () => {
    const client = new pg.Client({ connectionString: db.url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      while (running) {
        const { rows } = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
          [name],
        );
        most = Math.max(most, rows[0]!.n);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await client.end();
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return most;
    },
  };
}

describe('several worker processes on one queue', () => {
  it('share the runs: each runs once, and more than one worker does work', async () => {
    await db.pool.query('TRUNCATE ticks');
    const workers = await Promise.all([1, 2, 3].map(() => startWorkerProcess(env, ['--concurrency', '2'])));
    const ids = await submitAndWait(12, 's');
    const { rows: ticks } = await db.pool.query<{ n: string; c: number }>(
      'SELECT n, count(*)::int AS c FROM ticks GROUP BY n ORDER BY n',
    );
    expect(ticks).toHaveLength(12);
    expect(ticks.every((t) => t.c === 1)).toBe(true);
    const { rows: pids } = await db.pool.query<{ pid: number }>(
      'SELECT DISTINCT pid FROM runner.runs WHERE id = ANY($1)',
      [ids],
    );
    const workerPids = new Set(workers.map((w) => w.process.pid));
    expect(pids.every((p) => workerPids.has(p.pid))).toBe(true);
    expect(pids.length).toBeGreaterThan(1);
  });
});

describe('ERP_PG_MAX_CONNECTIONS', () => {
  it('refuses a concurrency that cannot fit, naming what fits (exit 2, nothing started)', async () => {
    const r = await erp(['worker', '--concurrency', '16'], { ...env, ERP_PG_MAX_CONNECTIONS: '20' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--concurrency 16 needs 34 PostgreSQL connections');
    expect(r.stderr).toContain('ERP_PG_MAX_CONNECTIONS is 20: lower --concurrency to 9');
    expect(r.stderr).not.toMatch(/\n\s+at /); // one line, no stack
  });

  it('caps every connection a busy worker opens, as counted by the server', async () => {
    await db.pool.query('TRUNCATE ticks');
    const name = `erp-budget-${prefix}`.slice(0, 60);
    const sampler = sampleConnections(name);
    await startWorkerProcess({ ...env, DATABASE_URL: labelled(db.url, name), ERP_PG_MAX_CONNECTIONS: '7' }, [
      '--concurrency',
      '2',
    ]);
    await submitAndWait(8, 'b');
    const most = await sampler.stop();
    expect(most).toBeLessThanOrEqual(7);
    // Not a vacuous cap: two runs in hand and the runner session were seen at once.
    expect(most).toBeGreaterThanOrEqual(3);
  });

  it('without it, a worker opens at most two per run in hand plus two', async () => {
    expect(workerConnections(16)).toEqual({ pool: 33, total: 34 });
    await db.pool.query('TRUNCATE ticks');
    const name = `erp-nobudget-${prefix}`.slice(0, 60);
    const sampler = sampleConnections(name);
    await startWorkerProcess({ ...env, DATABASE_URL: labelled(db.url, name) }, ['--concurrency', '3']);
    await submitAndWait(9, 'c');
    const most = await sampler.stop();
    expect(most).toBeLessThanOrEqual(workerConnections(3).total);
    expect(most).toBeGreaterThanOrEqual(4);
  });
});

/** Runs `redis-cli` to the end; throws with its output when it fails. */
function redisCli(args: string[]): string {
  const r = spawnSync('redis-cli', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

describe('Redis Cluster and Sentinel through REDIS_URL', () => {
  let dir: string;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'erp-redis-group-'));
  });

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a job through a three-master Redis Cluster, its keys under one hash tag', async () => {
    const nodes = [];
    for (let i = 0; i < 3; i++) {
      const node = await startRedisServer([
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(dir, `nodes-${i}.conf`),
        '--cluster-node-timeout',
        '2000',
      ]);
      stops.push(node.stop);
      nodes.push(new URL(node.url).host);
    }
    redisCli(['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    const check = new Cluster(nodes.map((h) => ({ host: h.split(':')[0]!, port: Number(h.split(':')[1]) })));
    check.on('error', () => undefined);
    try {
      await waitFor(
        async () => (await check.cluster('INFO').catch(() => '')).includes('cluster_state:ok'),
        20_000,
        'the cluster to be ok',
        100,
      );
      const url = `redis+cluster://${nodes.join(',')}`;
      const clusterEnv = { ...env, REDIS_URL: url, ERP_QUEUE_PREFIX: `${prefix}-cl` };
      await db.pool.query('TRUNCATE ticks');
      await startWorkerProcess(clusterEnv);
      const r = await erp(['run', 'tick', '--param', 'n=cluster'], clusterEnv);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('step 1/1 sql t/tick.sql: succeeded');
      expect(r.stderr).not.toMatch(/error|\n\s+at /i);
      expect((await db.pool.query('SELECT n FROM ticks')).rows).toEqual([{ n: 'cluster' }]);
      // BullMQ's keys all carry the hash tag, so one queue lives in one slot.
      const keys: string[] = [];
      for (const node of check.nodes('master')) keys.push(...(await node.keys(`*${prefix}-cl*`)));
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.every((k) => k.startsWith(`{${prefix}-cl}:runs:`))).toBe(true);
    } finally {
      check.disconnect();
    }
  });

  it('runs a job through a master found by Sentinel', async () => {
    const master = await startRedisServer([]);
    stops.push(master.stop);
    const masterPort = Number(new URL(master.url).port);
    const sentinelPort = await freePort();
    const conf = path.join(dir, 'sentinel.conf');
    await writeFile(
      conf,
      `port ${sentinelPort}\nbind 127.0.0.1\nsentinel monitor erpmaster 127.0.0.1 ${masterPort} 1\n`,
    );
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    const closed = new Promise<void>((resolve) => sentinel.on('close', () => resolve()));
    stops.push(async () => {
      sentinel.kill('SIGKILL');
      await closed;
    });
    const probe = new Redis({
      port: sentinelPort,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => 100,
    });
    probe.on('error', () => undefined);
    try {
      await waitFor(
        async () =>
          (
            (await probe.call('SENTINEL', 'get-master-addr-by-name', 'erpmaster').catch(() => null)) as
              string[] | null
          )?.[1] === String(masterPort),
        20_000,
        'the sentinel to know the master',
        100,
      );
    } finally {
      probe.disconnect();
    }
    const sentinelEnv = {
      ...env,
      REDIS_URL: `redis+sentinel://127.0.0.1:${sentinelPort}/erpmaster`,
      ERP_QUEUE_PREFIX: `${prefix}-se`,
    };
    await db.pool.query('TRUNCATE ticks');
    await startWorkerProcess(sentinelEnv);
    const r = await erp(['run', 'tick', '--param', 'n=sentinel'], sentinelEnv);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('step 1/1 sql t/tick.sql: succeeded');
    expect(r.stderr).not.toMatch(/error|\n\s+at /i);
    expect((await db.pool.query('SELECT n FROM ticks')).rows).toEqual([{ n: 'sentinel' }]);
    // The jobs are on the master the sentinel named, not on the shared server.
    const direct = new Redis(master.url);
    try {
      expect((await direct.keys(`${prefix}-se:runs:*`)).length).toBeGreaterThan(0);
    } finally {
      direct.disconnect();
    }
  });
});
