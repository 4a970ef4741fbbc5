import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { timed } from './csv.js';
import { BENCH_DDL, generateCsv } from './generate.js';

/**
 * A file whose every row is rejected: `erp run --inline` of the benchmark CSV through a pipeline
 * whose `sku` must be an int (no row's is), so each row goes to the reject report and none to the
 * table. Throughput and peak RSS per size: the report is written with back-pressure, so memory
 * stays flat however many rows are rejected (issue 10 measured 544 MB at 1M and 1,164 MB at 2M
 * before). The report is checked to hold every row.
 */

export interface RejectsBenchResult {
  rows: number;
  fileMb: number;
  seconds: number;
  rowsPerSec: number;
  peakRssMb: number;
  reportMb: number;
}

const PIPELINE = `
description: every row rejected (sku is never an int)
source: { kind: file, path: bench.csv }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
    sku: { type: int, required: true }
sink: { kind: postgres, table: public.bench_rejects, mode: append }
`;

/** Lines of a file, counted as it streams. */
async function lineCount(file: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) n++;
  }
  return n;
}

/** Files under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

export async function benchRejects(
  rows: number,
  databaseUrl: string,
  workDir: string,
): Promise<RejectsBenchResult> {
  const dir = path.join(workDir, `rejects-${rows}`);
  await mkdir(path.join(dir, 'pipelines'), { recursive: true });
  await writeFile(path.join(dir, 'pipelines', 'allbad.yaml'), PIPELINE);
  await symlink(path.resolve('sql'), path.join(dir, 'sql'));
  const file = path.join(dir, 'bench.csv');
  await generateCsv(file, rows);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    await pool.query(
      `DROP TABLE IF EXISTS public.bench_rejects; CREATE TABLE public.bench_rejects ${BENCH_DDL}`,
    );
    const dataDir = path.join(dir, 'var');
    const env = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      ERP_HOME: dir,
      ERP_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    };
    const run = await timed(
      process.execPath,
      [path.resolve('dist/cli.js'), 'run', 'allbad', '--inline'],
      env,
      dir,
    );
    const loaded = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.bench_rejects'))
      .rows[0]!.n;
    if (loaded !== 0) throw new Error(`${loaded} rows loaded; every row should have been rejected`);
    const reports = (await filesUnder(path.join(dataDir, 'runs'))).filter((f) => f.endsWith('.csv'));
    if (reports.length !== 1) throw new Error(`expected one reject report, found ${reports.length}`);
    const lines = await lineCount(reports[0]!);
    if (lines !== rows + 1) throw new Error(`the reject report has ${lines - 1} rows, expected ${rows}`);
    return {
      rows,
      fileMb: Math.round((await stat(file)).size / 1e6),
      seconds: run.seconds,
      rowsPerSec: Math.round(rows / run.seconds),
      peakRssMb: run.peakRssMb,
      reportMb: Math.round((await stat(reports[0]!)).size / 1e6),
    };
  } finally {
    await pool.query('DROP TABLE IF EXISTS public.bench_rejects').catch(() => undefined);
    await pool.end();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The lines `npm run bench` prints for the all-rejected files, with the growth of peak RSS. */
export async function printRejectsBench(
  databaseUrl: string,
  workDir: string,
  line: (label: string, value: string) => void,
): Promise<void> {
  console.log('\n## A file whose every row is rejected: erp run --inline, the reject report holds every row');
  const sizes = (process.env.BENCH_REJECT_ROWS ?? '1000000,5000000').split(',').map(Number);
  const results: RejectsBenchResult[] = [];
  for (const rows of sizes) {
    const r = await benchRejects(rows, databaseUrl, workDir);
    results.push(r);
    line(
      `${rows.toLocaleString('en')} rows (${r.fileMb} MB), all rejected`,
      `${r.rowsPerSec.toLocaleString('en')} rows/s (${r.seconds.toFixed(2)} s), peak RSS ${r.peakRssMb} MB, report ${r.reportMb} MB`,
    );
  }
  const first = results[0]!;
  const last = results[results.length - 1]!;
  if (results.length > 1) {
    line(
      `peak RSS, ${last.rows.toLocaleString('en')} vs ${first.rows.toLocaleString('en')} rejects`,
      `${(last.peakRssMb / first.peakRssMb).toFixed(2)}× for ${(last.rows / first.rows).toFixed(0)}× the rejects (flat: ≈ 1)`,
    );
  }
}
