import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import {
  erp,
  killChildren,
  REDIS_URL,
  startWorkerProcess,
  type Child,
  type Result,
} from './helpers/runner.js';

/**
 * One output for a run wherever it ran: `erp run` following a worker prints what `erp run --inline`
 * prints (rejects with their values in line order, the report path, SQL results), both read from
 * the run's records; `erp runs show` shows parameters typed and the run's options.
 */

let db: TestDatabase;
let home: TestHome;
let prefix: string;
let env: Record<string, string>;
let worker: Child;

const FILES: Record<string, string> = {
  'pipelines/vendors.yaml': `
source: { kind: file, path: in/vendors.csv }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
    name: { type: string, required: true }
    terms: { type: enum, values: [NET30, NET60] }
sink: { kind: postgres, table: public.vendors }
rejects: { max_reject_rate: 0.6 }
`,
  // Line 6's wrong field count is found while tokenizing, ahead of the validation rejects of lines
  // 3 and 4: shown in line order all the same.
  'in/vendors.csv':
    'id,name,terms\n1,Acme,NET30\nx,Bolt Co,NET30\n3,Cogs,NET90\n4,Dyna,NET60\n5,Extra,NET30,oops\n6,Fab,NET30\n',
  'in/bad-vendors.csv': 'id,name,terms\nx,A,NET30\ny,B,NET30\n3,,NET30\n4,D,NET30\n',
  'jobs/vendor-import.yaml': `
description: Stamp the batch, import vendors, count them
params:
  batch: { type: int }
  audited: { type: bool, default: false }
  period: { type: period, default: '2026-11' }
lock: false
steps:
  - sql: stamp.sql
  - pipeline: vendors
  - sql: count.sql
`,
  'sql/stamp.sql': `INSERT INTO batches (batch, audited, period) VALUES (:'batch'::int, :'audited'::boolean, :'period');\n`,
  'sql/count.sql': `SELECT count(*)::int AS vendors, :'batch'::int AS batch FROM vendors;\n`,
};

/** The output with what differs between two runs of the same thing: the run numbers. */
function normalised(r: Result, ...ids: number[]): string {
  let out = r.stdout;
  for (const [i, id] of ids.entries()) {
    out = out.replaceAll(`(run ${id})`, `(run #${i})`).replaceAll(`/runs/${id}/`, `/runs/#${i}/`);
  }
  return out;
}

const runIdOf = (r: Result): number => Number(/\(run (\d+)\)/.exec(r.stdout)?.[1]);

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, { prefix }] = [d, h, q];
  await db.pool.query(`
    CREATE TABLE vendors (id int PRIMARY KEY, name text NOT NULL, terms text);
    CREATE TABLE batches (batch int, audited boolean, period text);`);
  await home.write(FILES);
  env = { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_QUEUE_PREFIX: prefix, REDIS_URL };
  worker = await startWorkerProcess(env);
});
afterAll(killChildren);
beforeEach(async () => {
  await db.pool.query('TRUNCATE vendors, batches; TRUNCATE runner.ingested_files CASCADE');
});

describe('one output for a run', () => {
  it('a job run through a worker prints exactly what the same job prints inline', async () => {
    const inline = await erp(['run', 'vendor-import', '--param', 'batch=7', '--inline'], env);
    expect(inline.code, inline.stderr).toBe(0);
    await db.pool.query('TRUNCATE vendors, batches; TRUNCATE runner.ingested_files CASCADE');
    const queued = await erp(['run', 'vendor-import', '--param', 'batch=7'], env);
    expect(queued.code, queued.stderr).toBe(0);
    expect(queued.stderr).toMatch(/^run \d+ queued: job vendor-import/m);
    const [a, b] = [runIdOf(inline), runIdOf(queued)];
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(a);
    expect(normalised(queued, b)).toBe(normalised(inline, a));
    // What both print: every reject with its value, in line order, and the report path.
    expect(inline.stdout).toBe(
      [
        `vendor-import batch=7 period=2026-11 audited=false (run ${a})`,
        `  sql stamp.sql: INSERT 1`,
        '  in/vendors.csv: loaded — read 6, loaded 3, rejected 3',
        '    line 3, field id: value "x": expected a whole number',
        '    line 4, field terms: value "NET90": expected one of NET30, NET60',
        '    line 6: value "5,Extra,NET30,oops": expected 3 fields, found 4',
        `    reject report: ${home.dir}/var/runs/${a}/rejects-1-vendors.csv`,
        'succeeded: read 6, loaded 3, rejected 3',
        '  sql count.sql: SELECT 1',
        '    vendors  batch',
        '    3        7',
        'succeeded',
        '',
      ].join('\n'),
    );
  });

  it('a reject-policy failure prints the same rejects and report path both ways, and exits 3', async () => {
    const args = ['run', 'vendors', '--file', 'in/bad-vendors.csv', '--force'];
    const inline = await erp([...args, '--inline'], env);
    const queued = await erp(args, env);
    expect([inline.code, queued.code]).toEqual([3, 3]);
    const [a, b] = [runIdOf(inline), runIdOf(queued)];
    expect(normalised(queued, b)).toBe(normalised(inline, a));
    expect(queued.stdout).toContain(
      [
        '  in/bad-vendors.csv: failed — read 4, loaded 0, rejected 3',
        '    in/bad-vendors.csv: 3 of 4 rows rejected (75.0%), above max_reject_rate 0.6; the file was not loaded',
        '    line 2, field id: value "x": expected a whole number',
        '    line 3, field id: value "y": expected a whole number',
        '    line 4, field name: required value is missing',
        `    reject report: ${home.dir}/var/runs/${b}/rejects-1-bad-vendors.csv`,
      ].join('\n'),
    );
    // erp runs show keeps the options the run was given, and the rejects with their values.
    const show = await erp(['runs', 'show', String(b)], env);
    expect(show.stdout).toContain('  parameters: {}\n  options: files in/bad-vendors.csv; force');
    expect(show.stdout).toContain('  in/bad-vendors.csv line 2, id: value "x": expected a whole number\n');
  });

  it('erp runs show keeps every parameter as given, typed', async () => {
    const r = await erp(['run', 'vendor-import', '--param', 'batch=12', '--param', 'audited=true'], env);
    expect(r.code, r.stderr).toBe(0);
    const list = await erp(['runs', '--job', 'vendor-import', '--limit', '1'], env);
    expect(list.stdout.split('\n')[0]).toMatch(/\bBY\s+PARAMETERS$/);
    expect(list.stdout.split('\n')[1]).toMatch(/ batch=12 period=2026-11 audited=true$/);
    const show = await erp(['runs', 'show', String(runIdOf(r))], env);
    expect(show.stdout).toContain('  parameters: {"batch":12,"period":"2026-11","audited":true}\n');
    // The SQL steps tell their own counts.
    expect(show.stdout).toContain(
      '  1. sql stamp.sql: succeeded\n     INSERT 1 (rows affected or returned)\n',
    );
    const { rows } = await db.pool.query('SELECT batch, audited, period FROM batches');
    expect(rows).toEqual([{ batch: 12, audited: true, period: '2026-11' }]);
    expect(worker.process.exitCode).toBeNull();
  });
});
