import { spawn } from 'node:child_process';
import { readFile, rm, stat, mkdir, writeFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { BENCH_DDL, generateCsv } from './generate.js';

/**
 * CSV → PostgreSQL: `erp run` (full validation of every row) against `psql \copy` of the same file
 * into the same table, in the same run. The ratio is erp's rows/s over psql's.
 */

export interface CsvBenchResult {
  rows: number;
  fileMb: number;
  psqlSeconds: number;
  erpSeconds: number;
  psqlRowsPerSec: number;
  erpRowsPerSec: number;
  ratio: number;
  erpPeakRssMb: number;
  /** The same load queued with `erp run` and executed by a running `erp worker`. */
  worker?: { seconds: number; rowsPerSec: number; ratio: number; peakRssMb: number };
}

/** The benchmark pipeline: every field of the generated items validated, appended to public.bench_items. */
export const BENCH_PIPELINE = `
description: benchmark load with every field validated
source: { kind: file, path: bench.csv }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true, min: 1 }
    sku: { type: string, required: true, max_length: 20, pattern: 'SKU-[0-9]+' }
    description: { type: string, max_length: 200 }
    category: { type: enum, values: [RAW, WIP, FINISHED, SERVICE, SPARE], required: true }
    price: { type: decimal, precision: 12, scale: 2, required: true, min: 0 }
    qty: { type: int, required: true, min: 0 }
    weight_kg: { type: decimal, precision: 10, scale: 3 }
    created_on: { type: date, required: true }
    updated_at: { type: timestamp }
    active: { type: bool, required: true }
    notes: { type: string }
    uom: { type: string, required: true, max_length: 3 }
sink: { kind: postgres, table: public.bench_items, mode: append }
`;

/** Runs a command; returns wall seconds and the peak RSS (MB) seen in /proc while it ran. */
export function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<{ seconds: number; peakRssMb: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let peak = 0;
    const poll = setInterval(() => {
      readFile(`/proc/${child.pid}/status`, 'utf8')
        .then((s) => {
          const m = /VmHWM:\s+(\d+) kB/.exec(s);
          if (m) peak = Math.max(peak, Number(m[1]) / 1024);
        })
        .catch(() => undefined);
    }, 20);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-500)}`));
      else resolve({ seconds: (performance.now() - t0) / 1000, peakRssMb: Math.round(peak) });
    });
  });
}

/**
 * Starts `erp worker`, queues the load with `erp run` (which follows it to the end) and times that;
 * the worker's peak RSS is read before it is stopped. The worker process loads BullMQ and ioredis,
 * which an inline run never does: this figure shows what they cost a load.
 */
/** CPU time (user + system) a process has used so far, from /proc (clock ticks of 10 ms). */
async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export async function timedThroughWorker(
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<{ seconds: number; peakRssMb: number; cpuSeconds: number }> {
  const prefix = `bench-csv-${process.pid}`;
  const workerEnv = { ...env, ERP_QUEUE_PREFIX: prefix, LOG_LEVEL: 'info' };
  const worker = spawn(process.execPath, [path.resolve('dist/cli.js'), 'worker'], {
    env: workerEnv,
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      let log = '';
      worker.stderr.on('data', (d: Buffer) => {
        log += d.toString();
        if (log.includes('"msg":"worker started"')) resolve();
      });
      worker.on('close', (code) => reject(new Error(`erp worker exited ${code}: ${log.slice(-500)}`)));
    });
    const cpuBefore = await cpuSecondsOf(worker.pid!);
    const run = await timed(process.execPath, [path.resolve('dist/cli.js'), 'run', 'bench'], workerEnv, cwd);
    const cpuSeconds = (await cpuSecondsOf(worker.pid!)) - cpuBefore;
    const status = await readFile(`/proc/${worker.pid}/status`, 'utf8');
    const peak = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
    return { seconds: run.seconds, peakRssMb: Math.round(peak), cpuSeconds };
  } finally {
    const closed = new Promise((resolve) => worker.once('close', resolve));
    worker.kill('SIGTERM');
    await closed;
    const { Redis } = await import('ioredis');
    const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
}

export async function benchCsv(
  rows: number,
  databaseUrl: string,
  workDir: string,
  opts: { throughWorker?: boolean } = {},
): Promise<CsvBenchResult> {
  await mkdir(path.join(workDir, 'pipelines'), { recursive: true });
  const file = path.join(workDir, 'bench.csv');
  await generateCsv(file, rows);
  await writeFile(path.join(workDir, 'pipelines', 'bench.yaml'), BENCH_PIPELINE);
  await rm(path.join(workDir, 'sql'), { force: true });
  await symlink(path.resolve('sql'), path.join(workDir, 'sql'));
  const pool = new pg.Pool({ connectionString: databaseUrl });
  try {
    const reset = async (): Promise<void> => {
      await pool.query(
        `DROP TABLE IF EXISTS public.bench_items; CREATE TABLE public.bench_items ${BENCH_DDL}`,
      );
      await pool.query(`DELETE FROM runner.ingested_files WHERE pipeline = 'bench'`);
      await pool.query('CHECKPOINT');
    };
    await reset();
    const psql = await timed(
      'psql',
      [
        databaseUrl,
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-c',
        `\\copy public.bench_items FROM '${file}' WITH (FORMAT csv, HEADER true)`,
      ],
      process.env,
    );
    await reset();
    const env = { ...process.env, DATABASE_URL: databaseUrl, ERP_HOME: workDir, LOG_LEVEL: 'warn' };
    const erp = await timed(
      process.execPath,
      [path.resolve('dist/cli.js'), 'run', 'bench', '--inline'],
      env,
      workDir,
    );
    const { rows: check } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM public.bench_items',
    );
    if (check[0]!.n !== rows) throw new Error(`erp loaded ${check[0]!.n} rows, expected ${rows}`);
    let worker: CsvBenchResult['worker'];
    if (opts.throughWorker) {
      await reset();
      const w = await timedThroughWorker(env, workDir);
      const { rows: loaded } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM public.bench_items',
      );
      if (loaded[0]!.n !== rows) throw new Error(`the worker loaded ${loaded[0]!.n} rows, expected ${rows}`);
      worker = {
        seconds: w.seconds,
        rowsPerSec: Math.round(rows / w.seconds),
        ratio: psql.seconds / w.seconds,
        peakRssMb: w.peakRssMb,
      };
    }
    const size = (await stat(file)).size;
    return {
      worker,
      rows,
      fileMb: Math.round(size / 1e6),
      psqlSeconds: psql.seconds,
      erpSeconds: erp.seconds,
      psqlRowsPerSec: Math.round(rows / psql.seconds),
      erpRowsPerSec: Math.round(rows / erp.seconds),
      ratio: psql.seconds / erp.seconds,
      erpPeakRssMb: erp.peakRssMb,
    };
  } finally {
    await pool.query('DROP TABLE IF EXISTS public.bench_items').catch(() => undefined);
    await pool.end();
    await rm(file, { force: true });
  }
}
