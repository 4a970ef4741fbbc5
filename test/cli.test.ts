import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_DDL, generateCsv } from '../benchmarks/generate.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { erp as runErp, killChildren, startErp, type Child, type Result } from './helpers/runner.js';

/** The CLI as operators run it: the built `dist/cli.js` in a child process. */
const CLI = path.resolve('dist/cli.js');

let db: TestDatabase;
let home: TestHome;

/** The test's database and project home, plus `env`. */
const envOf = (env: Record<string, string>): Record<string, string> => ({
  DATABASE_URL: db.url,
  ERP_HOME: home.dir,
  ...env,
});
const start = (args: string[], env: Record<string, string> = {}): Child => startErp(args, envOf(env));
const erp = (args: string[], env: Record<string, string> = {}): Promise<Result> => runErp(args, envOf(env));

const ITEMS = `
description: Item master
source: { kind: file, path: 'in/items*.csv' }
format: { kind: csv }
validate:
  fields:
    sku: { type: string, required: true }
    price: { type: decimal, precision: 10, scale: 2 }
sink: { kind: postgres, table: public.items, mode: upsert, key: [sku] }
rejects: { max_rejects: 1 }
`;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query(`CREATE TABLE items (sku text PRIMARY KEY, price numeric(10,2));
    CREATE TABLE bench ${BENCH_DDL};`);
  await home.link(['sql']);
  await home.write({
    'pipelines/items.yaml': ITEMS,
    'pipelines/bench.yaml': `
source: { kind: file, path: 'in/bench.csv' }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
    price: { type: decimal, precision: 12, scale: 2 }
sink: { kind: postgres, table: public.bench }
`,
    'in/items.csv': 'sku,price\nA,1.00\nB,2.50\n',
    'bad/items-bad.csv': 'sku,price\nA,x\nB,y\nC,1\n',
  });
});
afterAll(killChildren);

describe('erp CLI', () => {
  it('prints help without arguments and refuses unknown commands', async () => {
    const help = await erp([]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage:\s+\$ erp <command>/);
    expect(help.stdout).toContain('run [name]');
    const unknown = await erp(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^erp: unknown command 'frobnicate'; commands are: .*run/);
  });

  it('refuses an unknown pipeline, listing the known ones', async () => {
    const r = await erp(['run', 'nope', '--inline']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("erp: unknown job or pipeline 'nope'; jobs: (none); pipelines: bench, items\n");
  });

  it('names the file, line and key of a bad definition, with what is allowed', async () => {
    await writeFile(
      path.join(home.dir, 'pipelines/broken.yaml'),
      'source: { kind: file, path: x.csv }\nformat: { kind: csv }\nsink:\n  kind: postgres\n  table: t\n  mode: merge\n  colour: blue\n',
    );
    const r = await erp(['run', 'broken']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'pipelines/broken.yaml, line 6, sink.mode: Invalid option: expected one of "append"|"upsert"|"replace"',
    );
    expect(r.stderr).toContain(
      "line 7, sink.colour: unknown key 'colour'; allowed keys are: kind, table, mode, key",
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const list = await erp(['list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/broken\s+pipeline\s+INVALID: .*line 6/);
    expect(list.stdout).toMatch(/items\s+pipeline\s+Item master/);
  });

  it('reports a bad environment variable in one line', async () => {
    const r = await erp(['runs'], { LOG_LEVEL: 'loud' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^erp: environment variable LOG_LEVEL: Invalid option: expected one of "fatal"\|.*"silent"\n$/,
    );
  });

  it('reports an unreachable database in one line, without a stack trace', async () => {
    const r = await erp(['runs'], { DATABASE_URL: 'postgres://root:hunter2@127.0.0.1:1/nowhere' });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^erp: connection refused/);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('runs, skips a file seen before, and lists the runs', async () => {
    const first = await erp(['run', 'items', '--inline']);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/in\/items.csv: loaded — read 2, loaded 2, rejected 0/);
    const second = await erp(['run', 'items', '--inline']);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(
      /in\/items.csv: skipped — read 0, loaded 0, rejected 0\n\s+already loaded by run \d+ on .*use --force/,
    );
    const runs = await erp(['runs']);
    expect(runs.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+KIND\s+STATUS/);
    expect(runs.stdout).toMatch(/items\s+pipeline\s+succeeded/);
    const id = /run (\d+)/.exec(first.stdout)![1]!;
    const show = await erp(['runs', 'show', id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`run ${id}: pipeline items — succeeded`);
    expect(show.stdout).toMatch(/in\/items.csv: loaded — read 2, loaded 2, rejected 0/);
  });

  it('exits 3 when a file breaks its reject policy, and validate writes nothing', async () => {
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM runner.runs')).rows[0].n;
    const ok = await erp(['validate', 'items', '--file', 'in/items.csv']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/in\/items.csv: validated — read 2, valid 2, rejected 0/);
    // A dry run tells the policy would refuse the file, with the same exit code as the real run.
    const dry = await erp(['validate', 'items', '--file', 'bad/items-bad.csv']);
    expect(dry.code).toBe(3);
    expect(dry.stdout).toContain('dry run: nothing written');
    expect(dry.stdout).toMatch(/line 2, field price: value "x": expected a decimal number/);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM runner.runs')).rows[0].n).toBe(before);
    const r = await erp(['run', 'items', '--inline', '--file', 'bad/items-bad.csv']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/more than 1 rejected rows \(max_rejects\); the file was not loaded/);
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM items WHERE sku = 'C'`)).rows[0].n).toBe(0);
  });

  it('shows a progress bar on a terminal, and plain lines elsewhere', async () => {
    // `script` runs the command on a pseudo-terminal, as an operator's shell would.
    const onTty = (cmd: string): Promise<Result> =>
      new Promise((resolve) => {
        const child = spawn('script', ['-qec', cmd, '/dev/null'], {
          cwd: home.dir,
          env: { ...process.env, DATABASE_URL: db.url, ERP_HOME: home.dir, LOG_LEVEL: 'warn' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr: '' }));
      });
    const file = path.join(home.dir, 'in/items-tty.csv');
    await writeFile(
      file,
      'sku,price\n' + Array.from({ length: 50_000 }, (_, i) => `T${i},1.00`).join('\n') + '\n',
    );
    const tty = await onTty(
      `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} validate items --file in/items-tty.csv`,
    );
    expect(tty.code).toBe(0);
    expect(tty.stdout).toMatch(/items-tty\.csv \|[█░]+\| \d+% \| [\d,]+ rows \| [\d,]+ rows\/s \| \d+s left/);
    expect(tty.stdout).toContain('50,000 rows');
    // A run shows its step log and a bar of the file's bytes for the step in progress.
    const run = await onTty(
      `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} run items --inline --force --file in/items-tty.csv`,
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('step 1/1 pipeline items: running');
    expect(run.stdout).toMatch(/step 1\/1 items-tty\.csv \|[█░]+\| \d+% \| [\d,]+ rows/);
    expect(run.stdout).toContain('step 1/1 pipeline items: succeeded');
    const plain = await erp(['validate', 'items', '--file', 'in/items-tty.csv']);
    expect(plain.code).toBe(0);
    expect(plain.stderr + plain.stdout).not.toMatch(/\|[█░=-]+\|/);
  });

  it('prints a JSON Schema of pipeline definitions', async () => {
    const r = await erp(['schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['source', 'format', 'validate', 'transform', 'sink', 'rejects']),
    );
    expect(schema.required).toEqual(expect.arrayContaining(['source', 'format', 'sink']));
  });

  it('leaves no row behind when killed with SIGKILL in the middle of a COPY, and loads once afterwards', async () => {
    const file = path.join(home.dir, 'in/bench.csv');
    await generateCsv(file, 300_000);
    const child = start(['run', 'bench', '--inline']);
    // Wait until the COPY is streaming rows into the table, then kill the process outright.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY "public"."bench"%' AND state = 'active'`,
        [db.name],
      );
      if (rows[0].n > 0) break;
      if (Date.now() > deadline) throw new Error('the COPY never started');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 300));
    child.process.kill('SIGKILL');
    await child.exited;
    // PostgreSQL notices the dropped connection and rolls the transaction back.
    for (let i = 0; i < 100; i++) {
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY%'`,
        [db.name],
      );
      if (rows[0].n === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const after = await db.pool.query(
      `SELECT (SELECT count(*) FROM bench)::int AS rows, (SELECT count(*) FROM runner.ingested_files WHERE pipeline = 'bench')::int AS ledger`,
    );
    expect(after.rows[0]).toEqual({ rows: 0, ledger: 0 });
    const rerun = await erp(['run', 'bench', '--inline']);
    expect(rerun.code).toBe(0);
    const done = await db.pool.query(`SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM bench`);
    expect(done.rows[0]).toEqual({ n: 300_000, ids: 300_000 });
  }, 120_000);
});
