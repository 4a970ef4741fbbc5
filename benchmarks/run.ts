import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPool, queryOnce } from '../src/db/pool.js';
import { migrate } from '../src/db/migrate.js';
import { benchCsv } from './csv.js';
import { benchEncryption } from './encryption.js';
import { benchCsvRead, printCsvRead } from './csv-read.js';
import { benchChunks } from './chunks.js';
import { benchEdiInbound } from './edi.js';
import { benchExports, benchModes, benchSmallFiles, loadsContext, type VsLimit } from './loads.js';
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
 */
const ADMIN_URL = process.env.BENCH_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
// A name of this run's own: two runs on one server (a shared machine) must not drop each other's database.
const DB = `erp_bench_${process.pid}`;

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
    console.log('## CSV → PostgreSQL: erp run (every field validated) vs psql \\copy of the same file');
    // BENCH_ROWS=0 skips the CSV load (to run only the parts BENCH_ONLY names).
    const sizes = (process.env.BENCH_ROWS ?? '1000000,5000000').split(',').map(Number);
    for (const rows of sizes.filter((n) => n > 0)) {
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
        `${(100 * r.ratio).toFixed(1)}% (issue target ≥ 75%)`,
      );
      line(`${rows.toLocaleString('en')} rows, erp peak RSS`, `${r.erpPeakRssMb} MB (target < 250 MB)`);
      if (r.worker) {
        line(
          `${rows.toLocaleString('en')} rows, erp run through a worker`,
          `${r.worker.rowsPerSec.toLocaleString('en')} rows/s (${r.worker.seconds.toFixed(2)} s, queued and followed)`,
        );
        line(
          `${rows.toLocaleString('en')} rows, ratio to psql \\copy`,
          `${(100 * r.worker.ratio).toFixed(1)}% (issue target ≥ 70%; worker peak RSS ${r.worker.peakRssMb} MB)`,
        );
      }
    }
    const only = (
      process.env.BENCH_ONLY ??
      'rejects,modes,exports,small,edi,csv-read,xlsx,sftp,x12,queue,metrics,console,encryption'
    ).split(',');
    if (only.includes('rejects')) await printRejectsBench(url.toString(), work, line);
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
      const c = e.cpu;
      line(
        'load, erp CPU clear → encrypted',
        `${c.loadClear.toFixed(2)} → ${c.loadEncrypted.toFixed(2)} s (${pct(c.loadClear, c.loadEncrypted)})`,
      );
      line(
        'export, erp CPU clear → decrypted',
        `${c.exportClear.toFixed(2)} → ${c.exportDecrypted.toFixed(2)} s (${pct(c.exportClear, c.exportDecrypted)})`,
      );
    }
    if (only.includes('csv-read')) {
      console.log(
        '\n## CSV read (decode + tokenize + batch, no database): the reader today (strict decoding) vs the same reader before strict decoding',
      );
      printCsvRead(await benchCsvRead(Number(process.env.BENCH_CSV_READ_ROWS ?? 1_000_000)), line);
    }
    const vs = (label: string, f: VsLimit, limit: string, target: string): void => {
      line(`${label}, erp`, `${f.erpSeconds.toFixed(2)} s, peak RSS ${f.erpPeakRssMb} MB`);
      line(`${label}, ${limit}`, `${f.limitSeconds.toFixed(2)} s, peak RSS ${f.limitPeakRssMb} MB`);
      line(`${label}, ratio`, `${(100 * f.ratio).toFixed(1)}% (issue target ${target})`);
    };
    const loads = await loadsContext(url.toString(), path.join(work, 'loads'));
    try {
      const rows = sizes[0]!;
      const n = rows.toLocaleString('en');
      if (only.includes('modes')) {
        console.log(
          `\n## Upsert and replace: ${n} rows into a table holding ${n} (half the keys new), every field validated, vs the same by hand in psql`,
        );
        const m = await benchModes(loads, rows);
        vs(`upsert ${n}`, m.upsert, 'psql temp + \\copy + ON CONFLICT', '≥ 80%');
        vs(`replace ${n}`, m.replace, 'psql DELETE + \\copy', '≥ 80%');
      }
      if (only.includes('exports')) {
        // BENCH_ROWS=0 (no CSV load) still exports 1M rows unless BENCH_EXPORT_ROWS says otherwise.
        const exportRows = Number(process.env.BENCH_EXPORT_ROWS ?? (rows || 1_000_000));
        const xlsxRows = Number(process.env.BENCH_XLSX_ROWS ?? exportRows);
        const en = exportRows.toLocaleString('en');
        console.log(
          `\n## Exports: a ${en}-row query to CSV vs psql \\copy (query) TO; ${xlsxRows.toLocaleString('en')} rows to XLSX vs exceljs's streaming writer fed the same rows`,
        );
        const e = await benchExports(loads, exportRows, xlsxRows);
        vs(`CSV ${en} rows (${e.csvMb} MB)`, e.csv, 'psql \\copy TO', '≥ 70%');
        vs(`XLSX ${xlsxRows.toLocaleString('en')} rows (${e.xlsxMb} MB)`, e.xlsx, 'exceljs writer', '≥ 100%');
      }
      if (only.includes('small')) {
        const files = Number(process.env.BENCH_SMALL_FILES ?? 2000);
        console.log(
          `\n## Many small files: one erp run over ${files.toLocaleString('en')} files of 100 rows vs psql \\copy of each file in one session`,
        );
        const f = await benchSmallFiles(loads, files, 100);
        vs(`${files.toLocaleString('en')} files`, f, 'psql \\copy each', '≥ 50%');
        line(
          `${files.toLocaleString('en')} files, erp per file`,
          `${((1000 * f.erpSeconds) / files).toFixed(2)} ms`,
        );
      }
      if (only.includes('edi')) {
        const sets = Number(process.env.BENCH_EDI_SETS ?? 10_000);
        console.log(
          `\n## EDI inbound end to end: one file of ${sets.toLocaleString('en')} 850s (3 lines each) from a loopback sshd through runInbound (download, split, validate, map, check, load, 997 up, archive)`,
        );
        const e = await benchEdiInbound(ADMIN_URL, sets);
        line(
          `${sets.toLocaleString('en')} sets, erp inbound`,
          `${e.setsPerSec.toLocaleString('en')} sets/s (${e.seconds.toFixed(2)} s, ${e.cpuSeconds.toFixed(2)} s CPU; issue target ≥ 5,000)`,
        );
        line(
          `${sets.toLocaleString('en')} sets, split + map alone`,
          `${e.splitMapSetsPerSec.toLocaleString('en')} sets/s`,
        );
      }
    } finally {
      await loads.pool.end();
    }
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
        line(`${k}, ratio`, `${r.ratio.toFixed(2)} (issue 11 target ≥ 1.5)`);
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
      line(`${c.files} runs, ratio to psql \\copy`, `${(100 * c.ratio).toFixed(1)}% (issue target ≥ 55%)`);
    }
    if (only.includes('metrics')) {
      const rows = sizes.find((n) => n > 0) ?? 1_000_000;
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
