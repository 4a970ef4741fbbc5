import { createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { protectValue } from '../src/compliance/sensitive.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { erp as runErp, killChildren, type Result } from './helpers/runner.js';

/**
 * Sensitive fields never leak: a file whose sensitive columns hold bad values is loaded through
 * the built CLI (debug logging on), and every output — stdout, stderr, the reject reports, every
 * table of the database (pg_dump) — is searched for those values. The same file through a pipeline
 * that does not declare them sensitive shows the search finds them when they are there.
 */

const run = promisify(execFile);
let db: TestDatabase;
let home: TestHome;
const KEY = 'test-redaction-key';

/** Bad values of the sensitive columns: each must appear nowhere. */
const SECRETS = ['12345678X9012', '98-7654321Z', '55550000111122223333', '11-2233445'];

const CSV = [
  'employee_no,name,bank_account,tax_id',
  'E1,Ann,123456789012,12-3456789', // fine
  `E2,Bob,${SECRETS[0]},12-3456789`, // bank account fails its pattern
  `E3,Cid,123456789013,${SECRETS[1]}`, // tax id fails its pattern
  `E4,Dee,${SECRETS[2]},12-3456789,EXTRA`, // wrong field count: the raw line holds the account
  `E5,Eve,123456789014,${SECRETS[3]}`, // tax id well formed but unknown: the lookup's reason quotes it
  '',
].join('\n');

const pipeline = (sensitive: boolean): string => `
source: { kind: file, path: 'in/employees.csv' }
format: { kind: csv }
validate:
  fields:
    employee_no: { type: string, required: true }
    name: { type: string }
    bank_account: { type: string, pattern: '[0-9]{8,17}'${sensitive ? ', sensitive: true' : ''} }
    tax_id: { type: string, pattern: '[0-9]{2}-[0-9]{7}' }
transform: { mapping: ${sensitive ? 'emp' : 'emp-plain'} }
sink: { kind: postgres, table: public.employees }
rejects: { max_reject_rate: 0.9 }
`;
const mapping = (sensitive: boolean): string => `
columns:
  employee_no: {}
  name: {}
  bank_account: {}
  tin: { from: tax_id, lookup: { table: public.known_tins, key: tin, value: tin }${sensitive ? ', sensitive: true' : ''} }
`;

/** Values PostgreSQL itself would quote in an error: a unique key, a bad integer, a failing row. */
const DB_SECRETS = ['11-1111111', '98x7', '33-3333333'];
const people = (sensitive: boolean): string => `
source: { kind: file, path: 'in/dup.csv' }
format: { kind: csv }
validate:
  fields:
    employee_no: { type: string, required: true }
    tax_id: { type: string${sensitive ? ', sensitive: true' : ''} }
    pin: { type: string${sensitive ? ', sensitive: true' : ''} }
sink: { kind: postgres, table: public.people }
`;

const erp = (args: string[]): Promise<Result> =>
  runErp(args, { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_REDACT_KEY: KEY, LOG_LEVEL: 'trace' });

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool
    .query(`CREATE TABLE public.employees (employee_no text, name text, bank_account text, tin text);
    CREATE TABLE public.known_tins (tin text PRIMARY KEY); INSERT INTO public.known_tins VALUES ('12-3456789');`);
  await home.write({
    'pipelines/emp.yaml': pipeline(true),
    'pipelines/emp-plain.yaml': pipeline(false),
    'mappings/emp.yaml': mapping(true),
    'mappings/emp-plain.yaml': mapping(false),
    'in/employees.csv': CSV,
    'pipelines/people.yaml': people(true),
    'pipelines/people-plain.yaml': people(false),
    'in/dup.csv': `employee_no,tax_id,pin\nE1,${DB_SECRETS[0]},1\nE2,${DB_SECRETS[0]},2\n`,
    'in/pin.csv': `employee_no,tax_id,pin\nE3,22-0000003,${DB_SECRETS[1]}\n`,
    'in/check.csv': `employee_no,tax_id,pin\nE4,${DB_SECRETS[2]},-5\n`,
  });
  await db.pool.query(
    `CREATE TABLE public.people (employee_no text, tax_id text UNIQUE, pin int CHECK (pin > 0))`,
  );
});
afterAll(killChildren);

/** Every text erp wrote: the commands' output, the reject reports, and a dump of the whole database. */
async function everything(outputs: Result[]): Promise<string> {
  const parts = outputs.flatMap((r) => [r.stdout, r.stderr]);
  const runs = path.join(home.dir, 'var', 'runs');
  for (const dir of await readdir(runs).catch(() => [])) {
    for (const f of await readdir(path.join(runs, dir)))
      parts.push(await readFile(path.join(runs, dir, f), 'utf8'));
  }
  const dump = await run('/usr/lib/postgresql/15/bin/pg_dump', ['--data-only', '--dbname', db.url], {
    maxBuffer: 64 << 20,
  });
  parts.push(dump.stdout);
  return parts.join('\n');
}

// Each command is a process of the built CLI: on a busy machine each start takes seconds.
describe('sensitive fields', { timeout: 300_000 }, () => {
  it('keep bad values out of every output, showing the last four and a keyed hash instead', async () => {
    const validate = await erp(['validate', 'emp']);
    const load = await erp(['run', 'emp', '--inline']);
    expect(load.code, load.stderr).toBe(0);
    const show = await erp(['runs', 'show', '1']);
    const all = await everything([validate, load, show]);
    for (const secret of SECRETS) expect(all).not.toContain(secret);

    // What an operator sees instead: the line, the field, and a value they can match to the source.
    expect(load.stdout).toContain(
      `line 3, field bank_account: value "${protectValue(SECRETS[0]!, Buffer.from(KEY))}"`,
    );
    expect(protectValue(SECRETS[0]!, Buffer.from(KEY))).toBe(
      `[sensitive ****9012 hmac:${createHmac('sha256', KEY).update(SECRETS[0]!).digest('hex').slice(0, 16)}]`,
    );
    expect(load.stdout).toContain(
      `line 4, field tax_id: value "${protectValue(SECRETS[1]!, Buffer.from(KEY))}"`,
    );
    expect(load.stdout).toMatch(
      /line 5: value "\[sensitive line withheld hmac:[0-9a-f]{16}\]": expected 4 fields, found 5/,
    );
    const tin = protectValue(SECRETS[3]!, Buffer.from(KEY));
    expect(load.stdout).toContain(
      `line 6, field tin: value "${tin}": no row in public.known_tins.tin = '${tin}'`,
    );
    const stored = await db.pool.query('SELECT line::int, field, value FROM runner.rejects ORDER BY line');
    expect(stored.rows.map((r) => r.line)).toEqual([3, 4, 5, 6]);
    expect((await db.pool.query('SELECT employee_no FROM public.employees')).rows).toEqual([
      { employee_no: 'E1' },
    ]);
  });

  it("keep them out of PostgreSQL's own errors too: a unique key's DETAIL, a bad value, a failing row", async () => {
    const outputs: Result[] = [];
    for (const file of ['in/dup.csv', 'in/pin.csv', 'in/check.csv']) {
      const r = await erp(['run', 'people', '--inline', '--file', file]);
      expect(r.code, r.stdout + r.stderr).not.toBe(0);
      outputs.push(r);
    }
    const all = await everything(outputs);
    for (const secret of DB_SECRETS) expect(all).not.toContain(secret);
    // The operator still learns what went wrong, and where.
    const text = outputs.map((o) => o.stdout + o.stderr).join('\n');
    expect(text).toContain('duplicate key value violates unique constraint "people_tax_id_key"');
    expect(text).toMatch(
      /Key \(tax_id\)=\(\[sensitive \*\*\*\*1111 hmac:|key tax_id: value withheld, sensitive/,
    );
    expect(text).toContain('invalid input syntax for type integer: "[sensitive 4 chars hmac:');
    expect(text).toContain('Failing row contains (withheld: the pipeline declares sensitive fields)');
    // Without the declaration the same search finds PostgreSQL quoting them.
    const plain = await erp(['run', 'people-plain', '--inline', '--file', 'in/dup.csv']);
    expect(await everything([plain])).toContain(DB_SECRETS[0]);
  });

  it('the same search finds them when the fields are not declared sensitive', async () => {
    const load = await erp(['run', 'emp-plain', '--inline']);
    expect(load.code, load.stderr).toBe(0);
    const all = await everything([load]);
    for (const secret of SECRETS) expect(all).toContain(secret);
  });
});
