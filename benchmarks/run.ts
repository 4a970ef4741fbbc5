import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createPool } from '../src/db.js';
import { migrate } from '../src/migrate.js';
import { benchCsv } from './csv.js';

/**
 * `npm run bench`: every benchmark, each figure against the physical limit measured in the same run.
 * Sizes can be lowered for a quick look: BENCH_ROWS=200000,1000000 npm run bench.
 */
const ADMIN_URL = process.env.BENCH_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
const DB = 'erp_bench';

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

const line = (label: string, value: string): void => console.log(`${label.padEnd(44)} ${value}`);

async function main(): Promise<void> {
  await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DB}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${DB}`;
  const pool = createPool(url.toString(), 1);
  await migrate(pool, 'sql');
  await pool.end();
  const work = await mkdtemp(path.join(tmpdir(), 'erp-bench-'));
  try {
    console.log('## CSV → PostgreSQL: erp run (every field validated) vs psql \\copy of the same file');
    const sizes = (process.env.BENCH_ROWS ?? '1000000,5000000').split(',').map(Number);
    for (const rows of sizes) {
      const r = await benchCsv(rows, url.toString(), work);
      line(
        `${rows.toLocaleString('en')} rows (${r.fileMb} MB), psql \\copy`,
        `${r.psqlRowsPerSec.toLocaleString('en')} rows/s (${r.psqlSeconds.toFixed(2)} s)`,
      );
      line(
        `${rows.toLocaleString('en')} rows, erp run`,
        `${r.erpRowsPerSec.toLocaleString('en')} rows/s (${r.erpSeconds.toFixed(2)} s)`,
      );
      line(
        `${rows.toLocaleString('en')} rows, ratio to psql \\copy`,
        `${(100 * r.ratio).toFixed(1)}% (issue target ≥ 35%)`,
      );
      line(`${rows.toLocaleString('en')} rows, erp peak RSS`, `${r.erpPeakRssMb} MB (target < 250 MB)`);
    }
    // Benchmarks of the other components, each printing its own figures.
    for (const [file, fn] of [
      ['./xlsx.js', 'runXlsxBench'],
      ['./sftp.js', 'runSftpBench'],
      ['./x12.js', 'runX12Bench'],
      ['./queue.js', 'runQueueBench'],
    ] as const) {
      const src = path.join(import.meta.dirname, file.replace('.js', '.ts'));
      if (!(await exists(src))) continue;
      const mod = (await import(file)) as Record<string, unknown>;
      const run = mod[fn];
      if (typeof run === 'function') await (run as (url: string) => Promise<void>)(url.toString());
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  }
}

await main();
