import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { loadConfig } from '../src/config/env.js';
import { consoleConfigOf } from '../src/console/config.js';
import { buildConsole } from '../src/console/server.js';
import { createSession } from '../src/console/sessions.js';
import { addUser } from '../src/console/users.js';
import { createPool, queryOnce } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';

/**
 * The console's runs page and run page at 100,000 recorded runs: p50/p95 server-side latency of
 * each request (routing, session, queries, rendering; through Fastify's inject, so no socket),
 * against the target of p95 < 150 ms. Runs: 20 jobs, 10 users, 5 statuses over 100 days,
 * one step each; every 20th run failed with a file and 30 rejects.
 */

export interface ConsoleBenchResult {
  runs: number;
  pages: { label: string; p50: number; p95: number; n: number }[];
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

export async function benchConsole(
  adminUrl: string,
  runs = 100_000,
  samples = 200,
  onPage?: (p: ConsoleBenchResult['pages'][number]) => void,
): Promise<ConsoleBenchResult> {
  const name = 'erp_bench_console';
  await queryOnce(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await queryOnce(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), 10);
  try {
    await migrate(pool, 'sql');
    await pool.query(
      `INSERT INTO runner.runs (kind, name, params, status, requested_by, host, trigger, created_at, started_at, finished_at,
         rows_read, rows_loaded, rows_rejected, files_loaded, error)
       SELECT 'job', 'job-' || (g % 20), jsonb_build_object('period', '2026-11'),
              CASE WHEN g % 20 = 0 THEN 'failed' WHEN g % 97 = 0 THEN 'cancelled' ELSE 'succeeded' END,
              'user-' || (g % 10), 'erp-01', 'schedule',
              now() - make_interval(secs => ($1 - g) * 86.4), now() - make_interval(secs => ($1 - g) * 86.4 - 1),
              now() - make_interval(secs => ($1 - g) * 86.4 - 1 - (g % 60)),
              1000 + g % 500, 1000 + g % 500 - CASE WHEN g % 20 = 0 THEN 30 ELSE 0 END,
              CASE WHEN g % 20 = 0 THEN 30 ELSE 0 END, 1,
              CASE WHEN g % 20 = 0 THEN 'in/items.csv: 30 rows rejected, more than max_rejects 10; the file was rolled back' END
         FROM generate_series(1, $1) g`,
      [runs],
    );
    await pool.query(
      `INSERT INTO runner.run_steps (run_id, position, kind, name, status, started_at, finished_at)
       SELECT id, 1, 'pipeline', name, status, started_at, finished_at FROM runner.runs`,
    );
    await pool.query(
      `INSERT INTO runner.run_files (run_id, pipeline, file, sha256, size_bytes, status, rows_read, rows_loaded, rows_rejected)
       SELECT id, name, 'in/items-' || id || '.csv', md5(id::text) || md5(id::text), 100000, 'failed', rows_read, 0, 30
         FROM runner.runs WHERE status = 'failed'`,
    );
    await pool.query(
      `INSERT INTO runner.rejects (run_id, run_file_id, file, line, field, value, reason)
       SELECT f.run_id, f.id, f.file, l, 'price', '1.5O', 'expected a decimal number like 1234.50'
         FROM runner.run_files f, generate_series(1, 30) l`,
    );
    await pool.query('ANALYZE');
    await addUser(pool, 'bench', 'viewer', 'bench-password-1');
    const { token } = await createSession(pool, 'bench', '127.0.0.1', 3600_000);
    const server = await buildConsole({
      pool,
      log: pino({ level: 'silent' }),
      home: '.',
      dataDir: 'var',
      config: consoleConfigOf(loadConfig({})),
      queue: null,
      events: null,
    });
    await server.ready();
    const get = async (path: string): Promise<number> => {
      const t = performance.now();
      const r = await server.inject({
        method: 'GET',
        url: path,
        headers: { cookie: `erp_session=${token}`, accept: 'text/html' },
      });
      const ms = performance.now() - t;
      if (r.statusCode !== 200) throw new Error(`${path}: HTTP ${r.statusCode}`);
      return ms;
    };
    const since = new Date(Date.now() - 10 * 86400_000).toISOString().slice(0, 10);
    const cases: { label: string; path: () => string }[] = [
      { label: 'runs page, newest 50', path: () => '/runs' },
      {
        label: 'runs page, an older page (keyset)',
        path: () => `/runs?before=${1 + Math.floor(Math.random() * runs)}`,
      },
      { label: 'runs page, status=failed', path: () => '/runs?status=failed' },
      {
        label: 'runs page, one job (with its chart)',
        path: () => `/runs?name=job-${Math.floor(Math.random() * 20)}`,
      },
      { label: 'runs page, who + date range', path: () => `/runs?who=user-3&from=${since}` },
      {
        label: 'run page, a failed run with rejects',
        path: () => `/runs/${20 * (1 + Math.floor(Math.random() * (runs / 20 - 1)))}`,
      },
      { label: 'run page, any run', path: () => `/runs/${1 + Math.floor(Math.random() * runs)}` },
      { label: 'overview (last 24 h)', path: () => '/' },
    ];
    const pages = [];
    for (const c of cases) {
      for (let i = 0; i < 10; i++) await get(c.path()); // warm-up
      const times: number[] = [];
      for (let i = 0; i < samples; i++) times.push(await get(c.path()));
      pages.push({ label: c.label, p50: pct(times, 50), p95: pct(times, 95), n: samples });
      onPage?.(pages[pages.length - 1]!);
    }
    await server.close();
    return { runs, pages };
  } finally {
    await pool.end();
    await queryOnce(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

/** `npx tsx benchmarks/console.ts`: this benchmark alone. */
if (import.meta.url === `file://${process.argv[1]}`) {
  const admin = process.env.BENCH_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
  const runs = Number(process.env.BENCH_CONSOLE_RUNS ?? 100_000);
  printConsoleBench({ runs, pages: [] });
  await benchConsole(admin, runs, 200, printPage);
}

function printPage(p: ConsoleBenchResult['pages'][number]): void {
  console.log(
    `${p.label.padEnd(44)} p50 ${p.p50.toFixed(1)} ms, p95 ${p.p95.toFixed(1)} ms (${p.n} requests)`,
  );
}

export function printConsoleBench(r: ConsoleBenchResult): void {
  console.log(
    `## Console: page latency at ${r.runs.toLocaleString('en')} recorded runs (server-side, p95 target < 150 ms)`,
  );
  r.pages.forEach(printPage);
}
