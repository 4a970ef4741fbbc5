/**
 * Load modes, exports and many small files, each against the tool that is its limit, measured in
 * the same run:
 *
 *   upsert     erp run (mode upsert, every field validated), 1M rows into a table holding 1M with
 *              half the keys new  vs  psql: BEGIN; CREATE TEMP TABLE; \copy; INSERT … ON CONFLICT DO UPDATE; COMMIT
 *   replace    erp run (mode replace)  vs  psql: BEGIN; DELETE; \copy; COMMIT
 *   export     erp export of the table to CSV  vs  psql \copy (SELECT …) TO file
 *   xlsx       erp export to XLSX  vs  exceljs's streaming WorkbookWriter fed the same rows (child process)
 *   small      one erp run over 2,000 files of 100 rows  vs  psql \copy of each file in one session
 *
 * Every erp figure is a child `erp run … --inline` (its wall time and peak RSS); every limit a child psql.
 *
 *   npx tsx benchmarks/loads.ts --child exceljs <databaseUrl> <out.xlsx>   (the reference writer)
 */
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import ExcelJS from 'exceljs';
import { BENCH_PIPELINE, timed } from './csv.js';
import { BENCH_COLUMNS, BENCH_DDL, generateCsv } from './generate.js';
import { createPostgresSource } from '../src/stages/source-postgres.js';
import type { ColumnType } from '../src/stages/types.js';

/** One figure: erp against its limit, both in seconds. */
export interface VsLimit {
  erpSeconds: number;
  limitSeconds: number;
  /** limitSeconds / erpSeconds: 1 is as fast as the limit. */
  ratio: number;
  erpPeakRssMb: number;
  limitPeakRssMb: number;
}

const figure = (
  erp: { seconds: number; peakRssMb: number },
  limit: { seconds: number; peakRssMb: number },
): VsLimit => ({
  erpSeconds: erp.seconds,
  limitSeconds: limit.seconds,
  ratio: limit.seconds / erp.seconds,
  erpPeakRssMb: erp.peakRssMb,
  limitPeakRssMb: limit.peakRssMb,
});

const EXPORT_SQL = 'SELECT * FROM public.bench_items ORDER BY id';

/** A pipeline of the benchmark's own, as `erp run` reads it from `<home>/pipelines/<name>.yaml`. */
async function pipeline(home: string, name: string, yaml: string): Promise<void> {
  await mkdir(path.join(home, 'pipelines'), { recursive: true });
  await writeFile(path.join(home, 'pipelines', `${name}.yaml`), yaml);
}

const importPipeline = (file: string, sink: string): string =>
  BENCH_PIPELINE.replace('path: bench.csv', `path: '${file}'`).replace(
    'sink: { kind: postgres, table: public.bench_items, mode: append }',
    `sink: { kind: postgres, table: public.bench_items, ${sink} }`,
  );

function psqlArgs(url: string, ...commands: string[]): string[] {
  return [url, '-q', '-v', 'ON_ERROR_STOP=1', ...commands.flatMap((c) => ['-c', c])];
}

export interface LoadsContext {
  url: string;
  home: string;
  pool: pg.Pool;
  env: NodeJS.ProcessEnv;
}

export async function loadsContext(url: string, home: string): Promise<LoadsContext> {
  await mkdir(home, { recursive: true });
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  return {
    url,
    home,
    pool,
    env: { ...process.env, DATABASE_URL: url, ERP_HOME: home, LOG_LEVEL: 'warn' },
  };
}

const erpRun = (ctx: LoadsContext, name: string): Promise<{ seconds: number; peakRssMb: number }> =>
  timed(process.execPath, [path.resolve('dist/cli.js'), 'run', name, '--inline'], ctx.env, ctx.home);

async function count(ctx: LoadsContext): Promise<number> {
  const { rows } = await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM public.bench_items');
  return rows[0]!.n;
}

async function expectRows(ctx: LoadsContext, who: string, n: number): Promise<void> {
  const have = await count(ctx);
  if (have !== n) throw new Error(`${who}: the table holds ${have} rows, expected ${n}`);
}

/**
 * Upsert and replace: `rows` rows into a table holding `rows` rows (ids 1…rows) with a primary key;
 * the file's ids are rows/2+1 … rows*3/2, so half the keys are new.
 */
export async function benchModes(
  ctx: LoadsContext,
  rows: number,
): Promise<{ upsert: VsLimit; replace: VsLimit }> {
  const held = path.join(ctx.home, 'held.csv');
  const file = path.join(ctx.home, 'incoming.csv');
  await generateCsv(held, rows);
  await generateCsv(file, rows, { firstId: rows / 2 + 1 });
  const reset = async (): Promise<void> => {
    await ctx.pool.query(
      `DROP TABLE IF EXISTS public.bench_items; CREATE TABLE public.bench_items ${BENCH_DDL};
       DELETE FROM runner.ingested_files WHERE pipeline LIKE 'bench-%'`,
    );
    await timed(
      'psql',
      psqlArgs(ctx.url, `\\copy public.bench_items FROM '${held}' WITH (FORMAT csv, HEADER true)`),
      process.env,
    );
    await ctx.pool.query('ALTER TABLE public.bench_items ADD PRIMARY KEY (id)');
    await ctx.pool.query('VACUUM ANALYZE public.bench_items');
    await ctx.pool.query('CHECKPOINT');
  };
  const updates = BENCH_COLUMNS.filter((c) => c !== 'id')
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ');

  await pipeline(ctx.home, 'bench-upsert', importPipeline(file, 'mode: upsert, key: [id]'));
  await reset();
  const psqlUpsert = await timed(
    'psql',
    psqlArgs(
      ctx.url,
      'BEGIN',
      'CREATE TEMP TABLE stage (LIKE public.bench_items) ON COMMIT DROP',
      `\\copy stage FROM '${file}' WITH (FORMAT csv, HEADER true)`,
      `INSERT INTO public.bench_items SELECT * FROM stage ON CONFLICT (id) DO UPDATE SET ${updates}`,
      'COMMIT',
    ),
    process.env,
  );
  await expectRows(ctx, 'psql upsert', rows * 1.5);
  await reset();
  const erpUpsert = await erpRun(ctx, 'bench-upsert');
  await expectRows(ctx, 'erp upsert', rows * 1.5);

  await pipeline(ctx.home, 'bench-replace', importPipeline(file, 'mode: replace'));
  await reset();
  const psqlReplace = await timed(
    'psql',
    psqlArgs(
      ctx.url,
      'BEGIN',
      'DELETE FROM public.bench_items',
      `\\copy public.bench_items FROM '${file}' WITH (FORMAT csv, HEADER true)`,
      'COMMIT',
    ),
    process.env,
  );
  await expectRows(ctx, 'psql replace', rows);
  await reset();
  const erpReplace = await erpRun(ctx, 'bench-replace');
  await expectRows(ctx, 'erp replace', rows);
  await rm(held, { force: true });
  await rm(file, { force: true });
  return { upsert: figure(erpUpsert, psqlUpsert), replace: figure(erpReplace, psqlReplace) };
}

/** Exports of the `rows`-row table: CSV against `psql \copy (query) TO`, XLSX against exceljs. */
export async function benchExports(
  ctx: LoadsContext,
  rows: number,
  xlsxRows: number,
): Promise<{ csv: VsLimit; xlsx: VsLimit; csvMb: number; xlsxMb: number }> {
  const data = path.join(ctx.home, 'export-source.csv');
  await generateCsv(data, rows);
  await ctx.pool.query(
    `DROP TABLE IF EXISTS public.bench_items; CREATE TABLE public.bench_items ${BENCH_DDL}`,
  );
  await timed(
    'psql',
    psqlArgs(ctx.url, `\\copy public.bench_items FROM '${data}' WITH (FORMAT csv, HEADER true)`),
    process.env,
  );
  await rm(data, { force: true });
  await ctx.pool.query('ALTER TABLE public.bench_items ADD PRIMARY KEY (id)');
  await ctx.pool.query('VACUUM ANALYZE public.bench_items');
  const out = path.join(ctx.home, 'out');
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const exportPipeline = (kind: string, sql: string): string => `
description: benchmark export
source: { kind: postgres, sql: '${sql}' }
format: { kind: ${kind} }
sink: { kind: file, dir: '${out}', name: 'erp-{run_id}.{ext}', overwrite: true }
`;
  await pipeline(ctx.home, 'bench-export-csv', exportPipeline('csv', EXPORT_SQL));
  const psqlCsv = await timed(
    'psql',
    psqlArgs(
      ctx.url,
      `\\copy (${EXPORT_SQL}) TO '${path.join(out, 'psql.csv')}' WITH (FORMAT csv, HEADER true)`,
    ),
    process.env,
  );
  const erpCsv = await erpRun(ctx, 'bench-export-csv');
  const files = await readdir(out);
  const erpFile = files.find((f) => f.startsWith('erp-') && f.endsWith('.csv'));
  if (!erpFile) throw new Error('the erp CSV export wrote no file');
  const csvMb = Math.round((await stat(path.join(out, erpFile))).size / 1e6);

  const xlsxSql = `${EXPORT_SQL} LIMIT ${xlsxRows}`;
  await pipeline(ctx.home, 'bench-export-xlsx', exportPipeline('xlsx', xlsxSql));
  const self = fileURLToPath(import.meta.url);
  const args = self.endsWith('.ts') ? ['--import', 'tsx', self] : [self];
  const exceljs = await timed(
    process.execPath,
    [...args, '--child', 'exceljs', ctx.url, path.join(out, 'exceljs.xlsx'), xlsxSql],
    process.env,
  );
  const erpXlsx = await erpRun(ctx, 'bench-export-xlsx');
  const xlsxFile = (await readdir(out)).find((f) => f.startsWith('erp-') && f.endsWith('.xlsx'));
  if (!xlsxFile) throw new Error('the erp XLSX export wrote no file');
  const xlsxMb = Math.round((await stat(path.join(out, xlsxFile))).size / 1e6);
  await rm(out, { recursive: true, force: true });
  return { csv: figure(erpCsv, psqlCsv), xlsx: figure(erpXlsx, exceljs), csvMb, xlsxMb };
}

/** Many small files: one erp run over `files` files of `perFile` rows against psql \copy of each in one session. */
export async function benchSmallFiles(ctx: LoadsContext, files: number, perFile: number): Promise<VsLimit> {
  const dir = path.join(ctx.home, 'small');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const whole = path.join(ctx.home, 'small-whole.csv');
  await generateCsv(whole, files * perFile);
  const { readFile } = await import('node:fs/promises');
  const lines = (await readFile(whole, 'utf8')).split('\n');
  const header = lines[0]!;
  const names: string[] = [];
  for (let f = 0; f < files; f++) {
    const name = path.join(dir, `part-${String(f + 1).padStart(5, '0')}.csv`);
    names.push(name);
    await writeFile(name, [header, ...lines.slice(1 + f * perFile, 1 + (f + 1) * perFile)].join('\n') + '\n');
  }
  await rm(whole, { force: true });
  const reset = async (): Promise<void> => {
    await ctx.pool.query(
      `DROP TABLE IF EXISTS public.bench_items; CREATE TABLE public.bench_items ${BENCH_DDL};
       DELETE FROM runner.ingested_files WHERE pipeline LIKE 'bench-%'`,
    );
    await ctx.pool.query('CHECKPOINT');
  };
  await reset();
  const script = path.join(ctx.home, 'small.sql');
  await writeFile(
    script,
    names.map((n) => `\\copy public.bench_items FROM '${n}' WITH (FORMAT csv, HEADER true)`).join('\n') +
      '\n',
  );
  const psql = await timed('psql', [ctx.url, '-q', '-v', 'ON_ERROR_STOP=1', '-f', script], process.env);
  await expectRows(ctx, 'psql small files', files * perFile);
  await reset();
  await pipeline(ctx.home, 'bench-small', BENCH_PIPELINE.replace('path: bench.csv', `path: '${dir}/*.csv'`));
  const erp = await erpRun(ctx, 'bench-small');
  await expectRows(ctx, 'erp small files', files * perFile);
  await rm(dir, { recursive: true, force: true });
  return figure(erp, psql);
}

/** The reference XLSX writer: the rows of `sql` from erp's own postgres source, into exceljs's WorkbookWriter. */
async function exceljsExport(url: string, file: string, sql: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const ctx = {
    home: process.cwd(),
    pool,
    log: pino({ level: 'silent' }),
    signal: new AbortController().signal,
  };
  const { columns, types, batches } = await createPostgresSource(
    { kind: 'postgres', sql, params: {} },
    ctx,
  ).open();
  const out = createWriteStream(file);
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({
    stream: out,
    useStyles: true,
    useSharedStrings: false,
  });
  const ws = wb.addWorksheet('Sheet1');
  ws.addRow([...columns]).commit();
  const typed = (v: string | null, t: ColumnType): unknown => {
    if (v === null) return null;
    if (t === 'int' || t === 'decimal') return Number(v);
    if (t === 'date' || t === 'timestamp') return new Date(v);
    if (t === 'bool') return v === 't';
    return v;
  };
  for await (const batch of batches) {
    for (const row of batch.rows) ws.addRow(row.map((v, i) => typed(v, types[i]!))).commit();
    if (out.writableNeedDrain) await once(out, 'drain');
  }
  ws.commit();
  await wb.commit();
  await pool.end();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child' && argv[1] === 'exceljs') await exceljsExport(argv[2]!, argv[3]!, argv[4]!);
}
