import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { finished } from 'node:stream/promises';
import { pino } from 'pino';
import { createApp } from '../src/app.js';
import { queryOnce } from '../src/db/pool.js';
import { resolveRunnable } from '../src/jobs/definition.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import { migrate } from '../src/db/migrate.js';
import { createQueue, redisConnection } from '../src/runner/queue.js';
import { startWorker } from '../src/runner/worker.js';
import { BENCH_PIPELINE } from './csv.js';
import { BENCH_DDL, generateCsv } from './generate.js';
import { timeCompletions } from './queue.js';

/**
 * Runs that carry a chunk, as the issue says jobs should: the 1M-row benchmark file cut into
 * `files` CSV files, each queued as its own run (`erp run chunk --file chunks/N.csv`) and loaded by
 * `erp worker` at concurrency 1, every field validated — against `psql \copy` of the same files in
 * one psql session. What a run costs the runner (queue, claim, records) is then a small share of
 * each run, unlike with the trivial runs of the queue benchmark.
 */

export interface ChunkFigures {
  files: number;
  rowsPerFile: number;
  erpSeconds: number;
  psqlSeconds: number;
  erpRowsPerSec: number;
  psqlRowsPerSec: number;
  /** erp / psql, rows per second. */
  ratio: number;
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Cuts `source` (a header line, then rows) into `n` files of `perFile` rows, each with the header. */
async function split(source: string, dir: string, n: number, perFile: number): Promise<string[]> {
  const names: string[] = [];
  const lines = createInterface({ input: createReadStream(source), crlfDelay: Infinity });
  let header: string | null = null;
  let out: WriteStream | null = null;
  let inFile = 0;
  const close = async (): Promise<void> => {
    if (!out) return;
    out.end();
    await finished(out);
    out = null;
  };
  for await (const line of lines) {
    if (header === null) {
      header = line;
      continue;
    }
    if (out === null || inFile === perFile) {
      await close();
      if (names.length === n) break;
      const name = `chunk-${String(names.length + 1).padStart(3, '0')}.csv`;
      names.push(name);
      out = createWriteStream(path.join(dir, name));
      out.write(header + '\n');
      inFile = 0;
    }
    if (!out!.write(line + '\n')) await once(out!, 'drain');
    inFile++;
  }
  await close();
  return names;
}

function psql(url: string, script: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('psql', [url, '-q', '-v', 'ON_ERROR_STOP=1', '-f', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve((performance.now() - t0) / 1000)
        : reject(new Error(`psql exited ${code}: ${stderr}`)),
    );
  });
}

export async function benchChunks(
  adminUrl: string,
  files = 100,
  rowsPerFile = 10_000,
): Promise<ChunkFigures> {
  const tag = randomBytes(4).toString('hex');
  const dbName = `erp_bench_chunks_${tag}`;
  const prefix = `bench-chunks-${tag}`;
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const home = await mkdtemp(path.join(tmpdir(), 'erp-bench-chunks-'));
  await queryOnce(adminUrl, `CREATE DATABASE ${dbName}`);
  const app = createApp(
    {
      DATABASE_URL: url.toString(),
      ERP_HOME: home,
      ERP_QUEUE_PREFIX: prefix,
      REDIS_URL,
      LOG_LEVEL: 'silent',
    },
    pino({ level: 'silent' }),
  );
  const redis = redisConnection(REDIS_URL, 'worker');
  const queue = createQueue(redis, prefix);
  try {
    await migrate(app.pool, path.resolve('sql'));
    await app.pool.query(`CREATE TABLE public.bench_items ${BENCH_DDL}`);
    await mkdir(path.join(home, 'pipelines'));
    await mkdir(path.join(home, 'chunks'));
    await writeFile(path.join(home, 'pipelines/bench.yaml'), BENCH_PIPELINE);
    // Runs of one chunk each may run side by side: a job without a lock, its files given per run.
    await mkdir(path.join(home, 'jobs'));
    await writeFile(
      path.join(home, 'jobs/chunk.yaml'),
      'lock: false\nretries: { attempts: 1 }\nsteps:\n  - pipeline: bench\n',
    );
    const whole = path.join(home, 'whole.csv');
    await generateCsv(whole, files * rowsPerFile);
    const names = await split(whole, path.join(home, 'chunks'), files, rowsPerFile);
    await rm(whole);
    const total = files * rowsPerFile;
    const loaded = async (): Promise<number> =>
      (await app.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.bench_items')).rows[0]!.n;

    // psql \copy of every file, in one session.
    const script = path.join(home, 'copy.sql');
    await writeFile(
      script,
      names
        .map(
          (n) =>
            `\\copy public.bench_items FROM '${path.join(home, 'chunks', n)}' WITH (FORMAT csv, HEADER true)`,
        )
        .join('\n') + '\n',
    );
    await app.pool.query('CHECKPOINT');
    const psqlSeconds = await psql(url.toString(), script);
    if ((await loaded()) !== total) throw new Error(`psql loaded ${await loaded()} rows, expected ${total}`);
    await app.pool.query('TRUNCATE public.bench_items');
    await app.pool.query('CHECKPOINT');

    // erp: one queued run per file, a worker at concurrency 1.
    const runnable = await resolveRunnable(home, 'chunk');
    for (const n of names) {
      const runFiles = [path.join(home, 'chunks', n)];
      const runId = (await createQueuedRun(
        app.pool,
        runnable,
        {},
        { requestedBy: 'bench', files: runFiles },
      ))!;
      await enqueueRun(queue, runId, runnable, {}, { files: runFiles });
    }
    const worker = await startWorker(app, { concurrency: 1 });
    const erpSeconds = await timeCompletions(worker.worker, files);
    await worker.close();
    if ((await loaded()) !== total) throw new Error(`erp loaded ${await loaded()} rows, expected ${total}`);
    return {
      files,
      rowsPerFile,
      erpSeconds,
      psqlSeconds,
      erpRowsPerSec: Math.round(total / erpSeconds),
      psqlRowsPerSec: Math.round(total / psqlSeconds),
      ratio: psqlSeconds / erpSeconds,
    };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    redis.disconnect();
    await app.close();
    await queryOnce(adminUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await rm(home, { recursive: true, force: true });
  }
}
