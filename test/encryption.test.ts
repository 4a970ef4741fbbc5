import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import ExcelJS from 'exceljs';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../src/app.js';
import {
  decryptValue,
  encryptValue,
  keyIdOf,
  loadKeyring,
  parseKeyring,
  type Keyring,
} from '../src/compliance/keys.js';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { executeRun } from '../src/jobs/execute.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { erp, killChildren, startErp, waitFor } from './helpers/runner.js';

/*
 * Bank account numbers and tax ids are encrypted at rest: the shipped employees pipeline writes
 * only ciphertext (a pg_dump of the database holds none of the workbook's account numbers), the
 * payroll close copies it into the payslips, and the bank file alone carries the accounts clear.
 * `erp keys rotate` is killed with SIGKILL midway and run again: every value ends under the new key,
 * none lost, none changed.
 */
const run = promisify(execFile);
const PG_DUMP = '/usr/lib/postgresql/15/bin/pg_dump';
const key = (id: string): string => `${id}:${randomBytes(32).toString('base64')}`;
const K1 = key('k1');
const K2 = key('k2');

let db: TestDatabase;
let home: TestHome;
let app: App;
let ring: Keyring;
/** The workbook's employees: employee_no → bank account. */
const accounts = new Map<string, string>();

async function runJob(name: string, params: Record<string, string> = {}, files?: string[]): Promise<void> {
  const runnable = await resolveRunnable(app.home, name);
  const outcome = await executeRun(app, {
    runId: null,
    runnable,
    params: resolveParams(runnable.job, params),
    dryRun: false,
    files,
    signal: new AbortController().signal,
  });
  expect(outcome.error, `${name}: ${outcome.error}`).toBeNull();
}

async function dump(): Promise<string> {
  const { stdout } = await run(PG_DUMP, ['--data-only', '--dbname', db.url], { maxBuffer: 256 << 20 });
  return stdout;
}

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await home.link(['sql']);
  for (const dir of ['pipelines', 'jobs', 'mappings', 'fixtures'])
    await symlink(path.resolve(dir), path.join(home.dir, dir));
  await mkdir(path.join(home.dir, 'var', 'exports'), { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, ERP_KEYS: K1, DATABASE_URL: db.url, ERP_HOME: home.dir };
  delete env.ERP_KEYS_FILE;
  ring = loadKeyring(env)!;
  // The loaders read the keys from the environment, as the CLI and the workers do.
  process.env.ERP_KEYS = K1;
  app = createApp({ ...env, ERP_INPUT_DIRS: path.resolve('fixtures') }, pino({ level: 'silent' }));
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.readFile(path.resolve('fixtures/company/employees.xlsx'));
  wb.getWorksheet('Employees')!.eachRow((row, n) => {
    const account = row.getCell(11).value;
    if (n > 1 && account !== null && account !== undefined)
      accounts.set(String(row.getCell(1).value), String(account));
  });
}, 60_000);
afterAll(async () => {
  await killChildren();
  await app?.close();
});

describe('keys and values', () => {
  it('encrypts with a fresh IV under the current key and decrypts under the key the value names', () => {
    const two = parseKeyring(`${K1}\n# the new key\n${K2}\n`, 'keys');
    expect(two.current).toBe('k2');
    const a = encryptValue(two, '123456789');
    const b = encryptValue(two, '123456789');
    expect(a).not.toBe(b);
    expect(keyIdOf(a)).toBe('k2');
    expect(a).not.toContain('123456789');
    expect(decryptValue(two, a, 'x')).toBe('123456789');
    // A value under the old key still decrypts; clear text written before encryption passes through.
    expect(decryptValue(two, encryptValue(parseKeyring(K1, 'k'), '42'), 'x')).toBe('42');
    expect(decryptValue(two, '000111222', 'x')).toBe('000111222');
  });

  it('refuses an altered value, an unknown key and a malformed key file without showing a key', () => {
    const one = parseKeyring(K1, 'keys');
    const v = encryptValue(one, '987654321');
    const body = v.slice(v.lastIndexOf(':') + 1);
    const flipped = `${v.slice(0, v.lastIndexOf(':') + 1)}${body[0] === 'A' ? 'B' : 'A'}${body.slice(1)}`;
    expect(() => decryptValue(one, flipped, 'hr.employees.bank_account')).toThrow(
      /does not decrypt under key 'k1'/,
    );
    expect(() => decryptValue(parseKeyring(K2, 'keys'), v, 'hr.employees.bank_account')).toThrow(
      /hr.employees.bank_account: a value is encrypted under key 'k1', which the configured keys do not hold/,
    );
    const short = 'k3:' + randomBytes(16).toString('base64');
    expect(() => parseKeyring(`${K1}\n${short}`, 'key file keys.txt')).toThrow(
      /key file keys.txt, line 2: key 'k3' is 16 bytes; AES-256 needs 32/,
    );
    try {
      parseKeyring(`${K1}\n${short}`, 'key file keys.txt');
    } catch (err) {
      expect((err as Error).message).not.toContain(short.slice(3));
    }
  });
});

describe('at rest', () => {
  it('the employees pipeline writes bank accounts encrypted: the database holds none clear', async () => {
    expect(accounts.size).toBeGreaterThan(40);
    await runJob('open-period', { period: '2026-11' });
    await runJob('employees');
    const { rows } = await db.pool.query<{ employee_no: string; bank_account: string }>(
      `SELECT employee_no, bank_account FROM hr.employees WHERE bank_account IS NOT NULL`,
    );
    expect(rows).toHaveLength(accounts.size);
    for (const r of rows) {
      expect(keyIdOf(r.bank_account)).toBe('k1');
      expect(decryptValue(ring, r.bank_account, 'x')).toBe(accounts.get(r.employee_no));
    }
  });

  it('payroll copies the ciphertext; the bank file alone has the accounts clear', async () => {
    for (const p of ['employee-deductions', 'opening-ytd']) await runJob(p);
    await runJob('timesheets', {}, ['fixtures/company/timesheets-2026-11.csv']);
    await runJob('payroll-close', { period: '2026-11' });
    const { rows } = await db.pool.query<{ employee_no: string; bank_account: string }>(
      `SELECT employee_no, bank_account FROM payroll.payslips WHERE bank_account IS NOT NULL`,
    );
    expect(rows.length).toBeGreaterThan(40);
    for (const r of rows) expect(decryptValue(ring, r.bank_account, 'x')).toBe(accounts.get(r.employee_no));

    const exports = path.join(home.dir, 'var', 'exports');
    const ach = await readFile(path.join(exports, 'bank-payments-2026-11.ach'), 'utf8');
    const paid = rows.map((r) => accounts.get(r.employee_no)!);
    for (const account of paid) expect(ach).toContain(account.padEnd(17, ' '));

    // Every other output: the payroll register export and the whole database.
    const others = (await readdir(exports)).filter((f) => !f.startsWith('bank-payments'));
    expect(others.length).toBeGreaterThan(0);
    const texts = [
      await dump(),
      ...(await Promise.all(others.map((f) => readFile(path.join(exports, f), 'utf8')))),
    ];
    for (const text of texts) for (const account of accounts.values()) expect(text).not.toContain(account);
  });

  it('an export that does not declare decrypt gets only ciphertext; without a key a load is refused', async () => {
    const { rows } = await db.pool.query<{ account: string }>(`SELECT account FROM payroll.bank_payments`);
    for (const r of rows) expect(r.account.startsWith('enc:v1:k1:')).toBe(true);
    const noKey = await erp(['run', 'employees', '--inline', '--force'], {
      DATABASE_URL: db.url,
      ERP_HOME: home.dir,
      ERP_INPUT_DIRS: path.resolve('fixtures'),
      ERP_KEYS: '',
      ERP_KEYS_FILE: '',
    });
    expect(noKey.code).not.toBe(0);
    expect(noKey.stdout + noKey.stderr, noKey.stdout).toContain(
      'hr.employees.bank_account is encrypted at rest, and no key is configured',
    );
    expect(noKey.stdout + noKey.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('erp keys rotate', () => {
  const N = 20_000;
  const clear = (i: number): string => String(100_000_000 + i * 7);

  it('killed midway with SIGKILL, then run again: every value under the new key, none lost or changed', async () => {
    await db.pool.query(
      `
      INSERT INTO hr.employees (employee_no, first_name, last_name, hire_date, pay_type, annual_salary, department,
                                bank_routing, bank_account)
      SELECT 'R' || i, 'Rot', 'Ation', '2020-01-01', 'salaried', 50000, 'Ops', '091000019', a
        FROM unnest($1::text[]) WITH ORDINALITY AS t (a, i)`,
      [Array.from({ length: N }, (_, i) => encryptValue(ring, clear(i)))],
    );
    const env = { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_KEYS: `${K1},${K2}` };
    const child = startErp(['keys', 'rotate', '--batch', '50'], env);
    await waitFor(
      () => /hr\.employees\.bank_account: [1-9]\d* of \d+/.test(child.stderr()),
      30_000,
      () => child.stderr(),
    );
    child.process.kill('SIGKILL');
    await child.exited;

    const count = async (where: string): Promise<number> =>
      Number((await db.pool.query(`SELECT count(*) AS n FROM hr.employees WHERE ${where}`)).rows[0].n);
    const underK2 = await count(`bank_account LIKE 'enc:v1:k2:%'`);
    expect(underK2).toBeGreaterThan(0);
    expect(underK2).toBeLessThan(N);
    expect(await count(`bank_account LIKE 'enc:v1:k1:%'`)).toBeGreaterThan(0);

    const status = await erp(['keys', 'status'], env);
    expect(status.stdout).toMatch(/hr\.employees\.bank_account\s+k1\s+\d+/);
    expect(status.stdout).toMatch(/hr\.employees\.bank_account\s+k2 \(current\)\s+\d+/);

    const again = await erp(['keys', 'rotate', '--batch', '500'], env);
    // Progress names key ids, never keys.
    for (const k of [K1, K2]) expect(child.stderr() + again.stderr + again.stdout).not.toContain(k.slice(3));
    expect(again.code, again.stderr).toBe(0);
    expect(await count(`bank_account NOT LIKE 'enc:v1:k2:%'`)).toBe(0);
    expect(again.stderr).toMatch(/payroll\.payslips\.bank_account: \d+ of \d+ re-encrypted under key k2/);

    const two = parseKeyring(`${K1},${K2}`, 'k');
    const { rows } = await db.pool.query<{ employee_no: string; bank_account: string }>(
      `SELECT employee_no, bank_account FROM hr.employees`,
    );
    for (const r of rows) {
      const want = r.employee_no.startsWith('R')
        ? clear(Number(r.employee_no.slice(1)) - 1)
        : accounts.get(r.employee_no);
      expect(decryptValue(two, r.bank_account ?? '', 'x')).toBe(want ?? '');
    }
    // The completed payroll's payslips were re-encrypted too, and still pay the same accounts.
    const slips = await db.pool.query<{ employee_no: string; bank_account: string }>(
      `SELECT employee_no, bank_account FROM payroll.payslips WHERE bank_account IS NOT NULL`,
    );
    for (const r of slips.rows) {
      expect(keyIdOf(r.bank_account)).toBe('k2');
      expect(decryptValue(two, r.bank_account, 'x')).toBe(accounts.get(r.employee_no));
    }
    const audit = await db.pool.query<{ action: string }>(
      `SELECT action FROM audit.events WHERE action LIKE 'keys.%' ORDER BY seq`,
    );
    expect(audit.rows.map((r) => r.action)).toEqual([
      'keys.rotation_started',
      'keys.rotation_started',
      'keys.rotated',
    ]);
  }, 120_000);
});
