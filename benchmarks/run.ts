import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPool, queryOnce } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';
import { benchCsv } from './csv.js';
import { benchEncryption } from './encryption.js';
import { benchChunks } from './chunks.js';
import { benchConsole, printConsoleBench } from './console.js';
import { benchMetrics, SCRAPE_MS } from './metrics.js';
import { benchQueue } from './queue.js';
import { printRejectsBench } from './rejects.js';
import { benchSftp } from './sftp.js';
import { runX12Bench } from './x12.js';
import { benchXlsx } from './xlsx.js';

/**
 * `npm run bench`: every benchmark, each figure against the physical limit measured in the same run.
 * Sizes can be lowered for a quick look: BENCH_ROWS=200000,1000000 npm run bench.
 * BENCH_ONLY=encryption,xlsx runs only those; the CSV load runs unless BENCH_ONLY is set without `csv`.
 */
const ADMIN_URL = process.env.BENCH_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
// BENCH_DATABASE: another name, so two benchmarks on one server do not drop each other's database.
const DB = process.env.BENCH_DATABASE ?? 'erp_bench';

const line = (label: string, value: string): void => console.log(`${label.padEnd(44)} ${value}`);

async function main(): Promise<void> {
  await queryOnce(ADMIN_URL, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await queryOnce(ADMIN_URL, `CREATE DATABASE ${DB}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${DB}`;
  const pool = createPool(url.toString(), 1);
  await migrate(pool, 'sql');
  await pool.end();
  const work = await mkdtemp(path.join(tmpdir(), 'erp-bench-'));
  try {
    const only = (
      process.env.BENCH_ONLY ?? 'csv,rejects,xlsx,sftp,x12,queue,metrics,console,encryption'
    ).split(',');
    const sizes = (process.env.BENCH_ROWS ?? '1000000,5000000').split(',').map(Number);
    if (only.includes('csv'))
      console.log('## CSV → PostgreSQL: erp run (every field validated) vs psql \\copy of the same file');
    for (const rows of only.includes('csv') ? sizes : []) {
      const r = await benchCsv(rows, url.toString(), work, { throughWorker: rows === sizes[0] });
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
      if (r.worker) {
        line(
          `${rows.toLocaleString('en')} rows, erp run through a worker`,
          `${r.worker.rowsPerSec.toLocaleString('en')} rows/s (${r.worker.seconds.toFixed(2)} s, queued and followed)`,
        );
        line(
          `${rows.toLocaleString('en')} rows, ratio to psql \\copy`,
          `${(100 * r.worker.ratio).toFixed(1)}% (worker peak RSS ${r.worker.peakRssMb} MB)`,
        );
      }
    }
    if (only.includes('encryption')) {
      const rows = Number(process.env.BENCH_ENCRYPTION_ROWS ?? 1_000_000);
      console.log(
        `\n## Encryption at rest: ${rows.toLocaleString('en')} rows with one sensitive, encrypted column vs the same into a clear twin (median of 3)`,
      );
      const e = await benchEncryption(rows, url.toString(), work);
      const pct = (a: number, b: number): string => `${(100 * (b / a - 1)).toFixed(1)}%`;
      line('load, clear column', `${e.loadClear.toFixed(2)} s`);
      line('load, encrypted column', `${e.loadEncrypted.toFixed(2)} s`);
      line('load, encryption cost', `${pct(e.loadClear, e.loadEncrypted)} (issue target < 10%)`);
      line('bank-file export, clear column', `${e.exportClear.toFixed(2)} s`);
      line('bank-file export, decrypted in the stream', `${e.exportDecrypted.toFixed(2)} s`);
      line(
        'bank-file export, decryption cost',
        `${pct(e.exportClear, e.exportDecrypted)} (issue target < 10%)`,
      );
    }
    if (only.includes('rejects')) await printRejectsBench(url.toString(), work, line);
    if (only.includes('xlsx')) {
      console.log(
        "\n## XLSX read: erp's reader (batches of typed cells) vs exceljs's own streaming reader doing nothing",
      );
      for (const rows of [200_000, 1_000_000]) {
        const r = await benchXlsx(rows);
        const k = `${rows.toLocaleString('en')} rows (${r.fileMb} MB)`;
        line(
          `${k}, erp reader`,
          `${r.ourRowsPerSec.toLocaleString('en')} rows/s, peak RSS ${r.peakRssMb} MB`,
        );
        line(
          `${k}, exceljs reader`,
          `${r.exceljsRowsPerSec.toLocaleString('en')} rows/s, peak RSS ${r.exceljsPeakRssMb} MB`,
        );
        line(`${k}, ratio`, `${r.ratio.toFixed(2)} (issue target ≥ 0.7)`);
      }
    }
    if (only.includes('sftp')) {
      console.log(
        '\n## SFTP download of a 200 MB file (size and SHA-256 checked) vs OpenSSH sftp, same server',
      );
      const r = await benchSftp(200);
      line('erp downloadVerified', `${r.ourMBps.toFixed(1)} MB/s, peak RSS ${r.peakRssMb} MB`);
      line('OpenSSH sftp client', `${r.opensshMBps.toFixed(1)} MB/s`);
      line('ratio', r.ratio.toFixed(2));
    }
    if (only.includes('x12')) {
      console.log('');
      await runX12Bench();
    }
    if (only.includes('queue')) {
      console.log(
        "\n## Job runner: 5,000 trivial runs through erp's worker vs BullMQ's own Worker (no-op), same Redis",
      );
      for (const f of await benchQueue(Number(process.env.BENCH_QUEUE_JOBS ?? 5000))) {
        line(
          `concurrency ${f.concurrency}, erp worker`,
          `${Math.round(f.erpJobsPerSec).toLocaleString('en')} runs/s`,
        );
        line(
          `concurrency ${f.concurrency}, BullMQ no-op`,
          `${Math.round(f.bullmqJobsPerSec).toLocaleString('en')} jobs/s`,
        );
        line(`concurrency ${f.concurrency}, ratio`, `${f.ratio.toFixed(3)} (issue target > 0.5)`);
        line(
          `concurrency ${f.concurrency}, BullMQ + the same SQL`,
          `${Math.round(f.bullmqSqlJobsPerSec).toLocaleString('en')} jobs/s (BEGIN; SELECT 1; COMMIT per job, nothing recorded)`,
        );
        line(`concurrency ${f.concurrency}, ratio to it`, `${f.sqlRatio.toFixed(3)} (the runner's own cost)`);
      }
      console.log(
        "\n## Job runner, runs that carry a chunk: the 1M-row file in 100 files, one run each, through erp's worker vs psql \\copy of the same files",
      );
      const c = await benchChunks(ADMIN_URL);
      line(
        `${c.files} runs × ${c.rowsPerFile.toLocaleString('en')} rows, erp worker`,
        `${c.erpRowsPerSec.toLocaleString('en')} rows/s (${c.erpSeconds.toFixed(2)} s, ${(c.files / c.erpSeconds).toFixed(1)} runs/s, concurrency 1)`,
      );
      line(
        `${c.files} files, psql \\copy (one session)`,
        `${c.psqlRowsPerSec.toLocaleString('en')} rows/s (${c.psqlSeconds.toFixed(2)} s)`,
      );
      line(`${c.files} runs, ratio to psql \\copy`, `${(100 * c.ratio).toFixed(1)}%`);
    }
    if (only.includes('metrics')) {
      const rows = sizes[0]!;
      console.log(
        `\n## Metrics: the ${rows.toLocaleString('en')}-row CSV load through erp worker with ERP_HTTP_PORT (scraped every ${SCRAPE_MS / 1000} s) vs without`,
      );
      const m = await benchMetrics(rows, url.toString(), work);
      const rate = (s: number): string =>
        `${Math.round(rows / s).toLocaleString('en')} rows/s (${s.toFixed(2)} s)`;
      line(
        'without ERP_HTTP_PORT: worker CPU',
        `${m.withoutCpu.toFixed(2)} s (median; wall ${rate(m.withoutSeconds)})`,
      );
      line(
        `with ERP_HTTP_PORT: worker CPU`,
        `${m.withCpu.toFixed(2)} s (median; wall ${rate(m.withSeconds)}; ${m.scrapes} scrapes)`,
      );
      line(
        'metrics cost',
        `${(100 * m.cost).toFixed(1)}% of the worker's CPU for the load (issue target < 2%; wall ${(100 * m.wallCost).toFixed(1)}%, ${m.rounds} rounds each)`,
      );
    }
    if (only.includes('console')) {
      console.log('');
      printConsoleBench(await benchConsole(ADMIN_URL));
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    await queryOnce(ADMIN_URL, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  }
}

await main();
