import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { queryOnce } from '../src/db/pool.js';
import { describeError } from '../src/errors.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { ADMIN_URL } from './helpers/global-setup.js';
import { erp as runErp, killChildren, type Result } from './helpers/runner.js';

/** Database errors, a wrong directory and conflicting options, said in the operator's words. */

let db: TestDatabase;
let home: TestHome;
let empty: string;
const bare = `erp_bare_${process.pid}`;
const urlOf = (name: string): string => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
};
const erp = (args: string[], env: Record<string, string> = {}): Promise<Result> =>
  runErp(args, { DATABASE_URL: db.url, ERP_HOME: home.dir, ...env });

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query(
    'CREATE TABLE amounts (id int PRIMARY KEY, price numeric(5,2), note text); CREATE TABLE plain (name text)',
  );
  await queryOnce(ADMIN_URL, `DROP DATABASE IF EXISTS ${bare}`);
  await queryOnce(ADMIN_URL, `CREATE DATABASE ${bare}`);
  empty = await mkdtemp(path.join(tmpdir(), 'erp-nowhere-'));
  await home.link(['sql']);
  await home.write({
    'pipelines/amounts.yaml': `
source: { kind: file, path: in/amounts.csv }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
sink: { kind: postgres, table: public.amounts }
`,
    // The overflowing row is the COPY's second but the file's line 5: a quoted note spans two
    // lines and line 4 is rejected before the load.
    'in/amounts.csv': 'id,price,note\n1,12.50,"two\nlines"\nx,1.00,bad id\n3,123456.00,big\n',
    'pipelines/secret-amounts.yaml': `
source: { kind: file, path: in/amounts.csv }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
    price: { type: string, sensitive: true }
sink: { kind: postgres, table: public.amounts }
`,
    // The shipped close on a period nobody opened.
    'jobs/close-unopened.yaml': `
params:
  period: { type: period }
steps:
  - sql: jobs/payroll_close.sql
`,
    'jobs/close.yaml': `
params:
  period: { type: period, default: current_month }
steps:
  - sql: jobs/noop.sql
`,
  });
});
afterAll(async () => {
  await killChildren();
  await rm(empty, { recursive: true, force: true });
  await queryOnce(ADMIN_URL, `DROP DATABASE IF EXISTS ${bare}`);
});

describe('operator words', () => {
  it('a database that does not exist: check DATABASE_URL', async () => {
    const r = await erp(['runs'], { DATABASE_URL: urlOf('erp_no_such_database') });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'erp: database "erp_no_such_database" does not exist: check that DATABASE_URL names an existing database (create it, then run erp migrate)\n',
    );
  });

  it('a database without the runner tables: run erp migrate', async () => {
    const r = await erp(['runs'], { DATABASE_URL: urlOf(bare) });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'erp: relation "runner.runs" does not exist: this database has no runner tables; run erp migrate, or check that DATABASE_URL names the right database\n',
    );
  });

  it('the wrong directory: set ERP_HOME', async () => {
    const migrate = await erp(['migrate'], { ERP_HOME: empty });
    expect(migrate.code).toBe(2);
    expect(migrate.stderr).toMatch(
      /no migrations directory .*: run erp from the project directory, or set ERP_HOME to it/,
    );
    const run = await erp(['run', 'payroll-close', '--inline'], { ERP_HOME: empty });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/no jobs\/ or pipelines\/ under .*set ERP_HOME to it/);
    const list = await erp(['list'], { ERP_HOME: empty });
    expect(list.code).toBe(2);
    expect(list.stderr).toMatch(/no jobs or pipelines under .*set ERP_HOME to it/);
  });

  it('a numeric overflow names the file, the line, the column and the value', async () => {
    const r = await erp(['run', 'amounts', '--inline']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `in/amounts.csv line 5, column price: value "123456.00": numeric field overflow (A field with precision 5, scale 2 must round to an absolute value less than 10^3); the value is too large for the column's type; declare its precision and scale in validate.fields so such rows are rejected with their line`,
    );
  });

  it("a sensitive column's value is withheld from the overflow's message, the line still named", async () => {
    const r = await erp(['run', 'secret-amounts', '--inline']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'in/amounts.csv line 5, column price: value "[sensitive 9 chars]": numeric field overflow',
    );
    expect(r.stdout + r.stderr).not.toContain('123456');
    const { rows } = await db.pool.query(
      `SELECT message FROM runner.run_files WHERE pipeline = 'secret-amounts'`,
    );
    expect(JSON.stringify(rows)).not.toContain('123456');
  });

  it('a period nobody opened: the operator is told the erp command that opens it, not a SQL file', async () => {
    const r = await erp(['run', 'close-unopened', '--period', '2031-01', '--inline']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'payroll period 2031-01 does not exist; open it first with erp run open-period --period 2031-01',
    );
    expect(r.stdout).not.toContain('open_period.sql');
  });

  it('an ON CONFLICT without a unique index says what to add', async () => {
    const err = await db.pool
      .query(`INSERT INTO plain (name) VALUES ('a') ON CONFLICT (name) DO NOTHING`)
      .catch((e: unknown) => e);
    expect(describeError(err)).toMatch(
      /^there is no unique or exclusion constraint matching the ON CONFLICT specification: the upsert's key \(sink\.key\) is not the column set of a unique index/,
    );
  });

  it('refuses conflicting parameters and unknown filter values with exit 2', async () => {
    const twice = await erp(['run', 'close', '--period', '2026-10', '--period', '2026-11', '--inline']);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toBe(
      'erp: period is given twice (2026-10 and 2026-11, the second as --period 2026-11); give it once\n',
    );
    const both = await erp(['run', 'close', '--param', 'period=2026-11', '--period', '2026-10', '--inline']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/period is given twice \(2026-11 and 2026-10/);
    const status = await erp(['runs', '--status', 'bogus']);
    expect(status.code).toBe(2);
    expect(status.stderr).toBe(
      'erp: --status expects one of queued, running, succeeded, failed, cancelled; got bogus\n',
    );
    expect((await db.pool.query(`SELECT 1 FROM runner.runs WHERE name = 'close'`)).rowCount).toBe(0);
  });
});
