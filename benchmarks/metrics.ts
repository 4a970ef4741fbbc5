import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { BENCH_PIPELINE, timedThroughWorker } from './csv.js';
import { BENCH_DDL, generateCsv } from './generate.js';

/**
 * What exporting metrics costs a load: the CSV benchmark's file queued with `erp run` and loaded by
 * `erp worker`, with ERP_HTTP_PORT set (and /metrics scraped every BENCH_SCRAPE_MS, 1 s by default:
 * 15× Prometheus's usual 15 s, so a load of a few seconds is scraped more than once a round and the
 * figure is an upper bound; BENCH_SCRAPE_MS=250 shows the cost of scraping four times a second) and without it, rounds interleaved so the machine's noise hits both alike. Measured as the
 * worker's CPU time for the load (user + system, from /proc) — on a shared machine wall time mostly
 * measures the neighbours — and as wall time; each side's median over the rounds.
 */
/** How often /metrics is scraped during the load with ERP_HTTP_PORT (Prometheus's usual: 15 s). */
export const SCRAPE_MS = Number(process.env.BENCH_SCRAPE_MS ?? 1000);

export interface MetricsBenchResult {
  rows: number;
  rounds: number;
  withoutSeconds: number;
  withSeconds: number;
  withoutCpu: number;
  withCpu: number;
  /** (CPU with − CPU without) / CPU without, as a fraction: 0.01 is 1 %. */
  cost: number;
  /** The same for wall time. */
  wallCost: number;
  scrapes: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function benchMetrics(
  rows: number,
  databaseUrl: string,
  workDir: string,
  rounds = Number(process.env.BENCH_METRICS_ROUNDS ?? 5),
): Promise<MetricsBenchResult> {
  await mkdir(path.join(workDir, 'pipelines'), { recursive: true });
  const file = path.join(workDir, 'bench.csv');
  await generateCsv(file, rows);
  await writeFile(path.join(workDir, 'pipelines', 'bench.yaml'), BENCH_PIPELINE);
  await rm(path.join(workDir, 'sql'), { force: true });
  await symlink(path.resolve('sql'), path.join(workDir, 'sql'));
  const pool = new pg.Pool({ connectionString: databaseUrl });
  const env = { ...process.env, DATABASE_URL: databaseUrl, ERP_HOME: workDir, LOG_LEVEL: 'warn' };
  const without: number[] = [];
  const withMetrics: number[] = [];
  const cpuWithout: number[] = [];
  const cpuWith: number[] = [];
  let scrapes = 0;
  try {
    const reset = async (): Promise<void> => {
      await pool.query(
        `DROP TABLE IF EXISTS public.bench_items; CREATE TABLE public.bench_items ${BENCH_DDL}`,
      );
      await pool.query(`DELETE FROM runner.ingested_files WHERE pipeline = 'bench'`);
      await pool.query('CHECKPOINT');
    };
    for (let i = 0; i < rounds; i++) {
      await reset();
      const plain = await timedThroughWorker(env, workDir);
      without.push(plain.seconds);
      cpuWithout.push(plain.cpuSeconds);
      await reset();
      const port = await freePort();
      // Scrapes from before the worker listens (refused until then) to after the load ends.
      let scraping = true;
      const scraper = (async () => {
        while (scraping) {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => null);
          if (res?.ok) {
            await res.text();
            scrapes++;
          }
          await new Promise((r) => setTimeout(r, SCRAPE_MS));
        }
      })();
      try {
        const run = await timedThroughWorker(
          { ...env, ERP_HTTP_PORT: String(port), ERP_HTTP_HOST: '127.0.0.1' },
          workDir,
        );
        withMetrics.push(run.seconds);
        cpuWith.push(run.cpuSeconds);
      } finally {
        scraping = false;
        await scraper;
      }
      const { rows: n } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM public.bench_items',
      );
      if (n[0]!.n !== rows) throw new Error(`the worker loaded ${n[0]!.n} rows, expected ${rows}`);
    }
    // A figure measured without a single scrape would say nothing of what serving /metrics costs.
    if (scrapes < rounds) throw new Error(`/metrics was scraped ${scrapes} times in ${rounds} rounds`);
    const a = median(without);
    const b = median(withMetrics);
    const ca = median(cpuWithout);
    const cb = median(cpuWith);
    if (process.env.BENCH_VERBOSE) console.log({ without, withMetrics, cpuWithout, cpuWith });
    return {
      rows,
      rounds,
      withoutSeconds: a,
      withSeconds: b,
      withoutCpu: ca,
      withCpu: cb,
      cost: (cb - ca) / ca,
      wallCost: (b - a) / a,
      scrapes,
    };
  } finally {
    await pool.query('DROP TABLE IF EXISTS public.bench_items').catch(() => undefined);
    await pool.end();
    await rm(file, { force: true });
  }
}
