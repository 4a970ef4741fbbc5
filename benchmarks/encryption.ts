import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { timed } from './csv.js';

/**
 * What encryption at rest costs (issue 19, target < 10 %): the same file loaded into a table whose
 * account column is encrypted (compliance.encrypted_columns) and into its twin that is not, and
 * the bank-file export of those rows with `decrypt: [account]` against the same export of the
 * clear twin. Each pair runs alternately, `rounds` times; the medians are compared, of the wall
 * clock and of the CPU the `erp` process used (user + system: steadier on a shared machine, and
 * the client's share alone — PostgreSQL's work on the larger values is not in it).
 */

export interface EncryptionBenchResult {
  rows: number;
  rounds: number;
  loadClear: number;
  loadEncrypted: number;
  exportClear: number;
  exportDecrypted: number;
  /** CPU seconds of the erp process, medians. */
  cpu: { loadClear: number; loadEncrypted: number; exportClear: number; exportDecrypted: number };
}

/** CPU seconds (user + system) of this process's children that have ended, from /proc (Linux). */
function childCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command name (in parentheses): cutime and cstime are the 14th and 15th.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

const load = (table: string): string => `
description: benchmark load with one sensitive, encrypted column
source: { kind: file, path: accounts.csv }
format: { kind: csv }
validate:
  fields:
    employee_no: { type: string, required: true, pattern: 'E[0-9]+' }
    name: { type: string, required: true }
    routing: { type: string, required: true, pattern: '[0-9]{9}' }
    account: { type: string, required: true, pattern: '[0-9]{4,17}', sensitive: true }
    amount: { type: decimal, precision: 14, scale: 2, required: true }
sink: { kind: postgres, table: ${table}, mode: append }
`;

const exporter = (table: string, decrypt: boolean): string => `
description: benchmark bank-file export
source:
  kind: postgres
  sql: SELECT employee_no, name, routing, account, amount FROM ${table} ORDER BY employee_no
${decrypt ? '  decrypt: [account]\n' : ''}format: { kind: csv }
sink: { kind: file, dir: out, name: '${table}.{ext}', overwrite: true }
`;

async function generate(file: string, rows: number): Promise<void> {
  const out = createWriteStream(file);
  out.write('employee_no,name,routing,account,amount\n');
  let chunk = '';
  for (let i = 1; i <= rows; i++) {
    chunk += `E${i},"Employee ${i}",091000019,${String(1_000_000_000 + i * 37)},${(1000 + (i % 5000) / 100).toFixed(2)}\n`;
    if (i % 10_000 === 0) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchEncryption(
  rows: number,
  databaseUrl: string,
  workDir: string,
  rounds = 3,
): Promise<EncryptionBenchResult> {
  const dir = path.join(workDir, 'encryption');
  await mkdir(path.join(dir, 'pipelines'), { recursive: true });
  await mkdir(path.join(dir, 'out'), { recursive: true });
  await generate(path.join(dir, 'accounts.csv'), rows);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  const ddl = `(employee_no text, name text, routing text, account text, amount numeric(14,2))`;
  await pool.query(`DROP SCHEMA IF EXISTS bench_enc CASCADE; CREATE SCHEMA bench_enc;
    CREATE TABLE bench_enc.clear ${ddl}; CREATE TABLE bench_enc.encrypted ${ddl};
    INSERT INTO compliance.encrypted_columns VALUES ('bench_enc.encrypted', 'account')`);
  const files: Record<string, string> = {
    'load-clear': load('bench_enc.clear'),
    'load-encrypted': load('bench_enc.encrypted'),
    'export-clear': exporter('bench_enc.clear', false),
    'export-decrypted': exporter('bench_enc.encrypted', true),
  };
  for (const [name, text] of Object.entries(files))
    await writeFile(path.join(dir, 'pipelines', `${name}.yaml`), text);
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    ERP_HOME: dir,
    LOG_LEVEL: 'warn',
    // A key of the benchmark's own; never printed.
    ERP_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    ERP_KEYS_FILE: '',
  };
  const t = {
    loadClear: [] as number[],
    loadEncrypted: [] as number[],
    exportClear: [] as number[],
    exportDecrypted: [] as number[],
  };
  const cpu = {
    loadClear: [] as number[],
    loadEncrypted: [] as number[],
    exportClear: [] as number[],
    exportDecrypted: [] as number[],
  };
  const erp = async (pipeline: string, as: keyof typeof t): Promise<void> => {
    const before = childCpuSeconds();
    const r = await timed(
      process.execPath,
      [path.resolve('dist/cli.js'), 'run', pipeline, '--inline', '--force'],
      env,
      dir,
    );
    t[as].push(r.seconds);
    cpu[as].push(childCpuSeconds() - before);
  };
  try {
    for (let r = 0; r < rounds; r++) {
      await pool.query('TRUNCATE bench_enc.clear, bench_enc.encrypted');
      await erp('load-clear', 'loadClear');
      await erp('load-encrypted', 'loadEncrypted');
      await erp('export-clear', 'exportClear');
      await erp('export-decrypted', 'exportDecrypted');
    }
    const { rows: check } = await pool.query<{ n: number; enc: number; clear: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE account LIKE 'enc:v1:bench:%')::int AS enc,
              (SELECT count(*)::int FROM bench_enc.clear WHERE account NOT LIKE 'enc:%') AS clear FROM bench_enc.encrypted`,
    );
    if (check[0]!.clear !== rows)
      throw new Error(`the clear table holds ${check[0]!.clear} rows, expected ${rows}`);
    if (check[0]!.n !== rows || check[0]!.enc !== rows)
      throw new Error(
        `the encrypted table holds ${check[0]!.enc} encrypted of ${check[0]!.n} rows, expected ${rows}`,
      );
  } finally {
    await pool.query('DROP SCHEMA IF EXISTS bench_enc CASCADE').catch(() => undefined);
    await pool
      .query(`DELETE FROM compliance.encrypted_columns WHERE table_name LIKE 'bench\\_enc.%'`)
      .catch(() => undefined);
    await pool.end();
    await rm(dir, { recursive: true, force: true });
  }
  return {
    rows,
    rounds,
    loadClear: median(t.loadClear),
    loadEncrypted: median(t.loadEncrypted),
    exportClear: median(t.exportClear),
    exportDecrypted: median(t.exportDecrypted),
    cpu: {
      loadClear: median(cpu.loadClear),
      loadEncrypted: median(cpu.loadEncrypted),
      exportClear: median(cpu.exportClear),
      exportDecrypted: median(cpu.exportDecrypted),
    },
  };
}
