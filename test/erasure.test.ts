import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { startSshd, type TestSshd } from './helpers/sshd.js';
import { erp as runErp, killChildren, type Result } from './helpers/runner.js';

/*
 * `erp erase person` on the fixture company after a real month: employees loaded (bank accounts
 * encrypted), payroll closed with its register and NACHA bank file exported, an import whose
 * reject quotes the person's raw line. After the erasure no table (pg_dump), reject or file holds
 * the person's names, e-mail or bank account; every ledger total is what it was; the audit row
 * says a person was erased without saying who.
 */
const run = promisify(execFile);
const PG_DUMP = '/usr/lib/postgresql/15/bin/pg_dump';
let db: TestDatabase;
let sshd: TestSshd;
let home: TestHome;
let env: Record<string, string>;

interface Who {
  employee_no: string;
  first_name: string;
  last_name: string;
  email: string;
  account: string;
}
let target: Who;
let control: Who;

const erp = (args: string[]): Promise<Result> => runErp(args, env);
async function ok(args: string[]): Promise<Result> {
  const r = await erp(args);
  expect(r.code, `erp ${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
  return r;
}

/** Every text erp holds: the database, and every file under the data directory. */
async function everything(): Promise<string> {
  const { stdout } = await run(PG_DUMP, ['--data-only', '--dbname', db.url], { maxBuffer: 256 << 20 });
  const texts = [stdout];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else texts.push(await readFile(p, 'utf8'));
    }
  };
  await walk(path.join(home.dir, 'var'));
  await walk(sshd.root);
  return texts.join('\n');
}

const ledger = async (): Promise<unknown[]> =>
  (
    await db.pool.query(
      `SELECT account_code, sum(debit)::text AS debit, sum(credit)::text AS credit FROM gl.journal_lines GROUP BY 1
       UNION ALL SELECT 'payslips', sum(gross)::text, sum(net)::text FROM payroll.payslips
       UNION ALL SELECT 'runs', sum(total_gross)::text, sum(total_net)::text FROM payroll.runs ORDER BY 1`,
    )
  ).rows;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  sshd = await startSshd();
  for (const p of ['PARTNERA', 'PARTNERB', 'TIMECLOCK'])
    for (const d of ['inbox', 'outbox', 'archive', 'error'])
      await mkdir(path.join(sshd.root, p, d), { recursive: true });
  await home.link(['sql']);
  await home.write({
    'in/contacts.csv': '',
    'pipelines/contacts.yaml': `
source: { kind: file, path: in/contacts.csv }
format: { kind: csv }
validate:
  fields:
    employee_no: { type: string, required: true }
    first_name: { type: string }
    last_name: { type: string }
    email: { type: string, pattern: '[^@]+@[^@]+' }
sink: { kind: postgres, table: public.contacts }
rejects: { max_reject_rate: 0.9 }
`,
  });
  for (const dir of ['jobs', 'mappings', 'fixtures', 'partners'])
    await symlink(path.resolve(dir), path.join(home.dir, dir));
  for (const f of await readdir('pipelines'))
    await symlink(path.resolve('pipelines', f), path.join(home.dir, 'pipelines', f));
  await mkdir(path.join(home.dir, 'var', 'exports'), { recursive: true });
  await db.pool.query(
    `CREATE TABLE public.contacts (employee_no text, first_name text, last_name text, email text)`,
  );
  env = {
    DATABASE_URL: db.url,
    ERP_HOME: home.dir,
    ERP_INPUT_DIRS: path.resolve('fixtures'),
    ERP_SFTP_PORT: String(sshd.port),
    ERP_SFTP_USER: sshd.user,
    ERP_SFTP_KEY_FILE: sshd.privateKeyPath,
    ERP_SFTP_HOST_KEY_SHA256: sshd.hostKeyFingerprint,
    ERP_SFTP_ROOT: sshd.root,
  };
}, 60_000);
afterAll(async () => {
  await killChildren();
  await sshd?.stop();
});

describe('erp erase person', () => {
  it('sets up a month: employees, payroll closed, bank file and register exported, a reject quoting a person', async () => {
    await ok(['run', 'open-period', '--period', '2026-11', '--inline']);
    for (const p of ['customers', 'items', 'employees', 'employee-deductions', 'opening-ytd'])
      await ok(['run', p, '--inline']);
    await ok(['run', 'timesheets', '--file', 'fixtures/company/timesheets-2026-11.csv', '--inline']);
    await ok(['run', 'payroll-close', '--period', '2026-11', '--inline']);
    const { rows } = await db.pool.query<Who>(
      `SELECT e.employee_no, first_name, last_name, email, bank_account AS account FROM hr.employees e
        WHERE bank_account IS NOT NULL AND email IS NOT NULL
          AND EXISTS (SELECT 1 FROM payroll.payslips p WHERE p.employee_no = e.employee_no) ORDER BY 1 LIMIT 2`,
    );
    const { decryptValue, loadKeyring } = await import('../src/compliance/keys.js');
    const clear = rows.map((r) => ({ ...r, account: decryptValue(loadKeyring()!, r.account, 'x') }));
    target = clear[0]!;
    control = clear[1]!;
    // A contacts file: the target's row has a field too many (its raw line is the reject), the control's is fine.
    await writeFile(
      path.join(home.dir, 'in', 'contacts.csv'),
      `employee_no,first_name,last_name,email\n${target.employee_no},${target.first_name},${target.last_name},${target.email},EXTRA\n` +
        `${control.employee_no},${control.first_name},${control.last_name},${control.email}\n`,
    );
    await ok(['run', 'contacts', '--inline']);
    // Archived partner files: one names the person (the time-clock vendor's contact list), one not.
    await writeFile(
      path.join(sshd.root, 'TIMECLOCK', 'archive', 'contacts-2026-11.csv'),
      `${target.employee_no},${target.first_name} ${target.last_name},${target.email}\n${control.employee_no},${control.email}\n`,
    );
    await writeFile(
      path.join(sshd.root, 'TIMECLOCK', 'archive', 'other.csv'),
      `${control.employee_no},${control.email}\n`,
    );
    await writeFile(
      path.join(sshd.root, 'PARTNERB', 'archive', '850-0001.x12'),
      'ISA*00*          *00*          *01*987654321      *ZZ*ACMEIND        *261110*0900*U*00401*000000001*0*P*>~' +
        'ST*850*0001~N1*ST*Globex Receiving~N3*1 Globex Plaza~N4*Portland*OR*97204~SE*4*0001~',
    );
    const all = await everything();
    // Before: the person is there, in the database, the reject, the register and the bank file.
    expect(all).toContain(target.email);
    expect(all.toUpperCase()).toContain(`${target.last_name}, ${target.first_name}`.toUpperCase());
    expect(all).toContain(target.account);
  }, 240_000);

  it('pseudonymises the person everywhere; the ledger and the other people are untouched', async () => {
    const before = await ledger();
    const r = await ok(['erase', 'person', target.employee_no]);
    const pseudonym = /now (ERASED-[0-9a-f]{10})/.exec(r.stdout)![1]!;
    expect(r.stdout).toMatch(/hr\.employees 1, payroll\.payslips 1, runner\.rejects 1, [3-9]\d* files/);
    expect(await readFile(path.join(sshd.root, 'TIMECLOCK', 'archive', 'contacts-2026-11.csv'), 'utf8')).toBe(
      `${target.employee_no},${pseudonym},${pseudonym}\n${control.employee_no},${control.email}\n`,
    );

    const all = await everything();
    expect(all).not.toContain(target.email);
    expect(all).not.toContain(target.account);
    const upper = all.toUpperCase();
    for (const name of [
      `${target.last_name}, ${target.first_name}`,
      `${target.first_name},${target.last_name}`,
    ])
      expect(upper).not.toContain(name.toUpperCase());
    expect(all).toContain(pseudonym);
    // Others keep their data.
    expect(all).toContain(control.email);
    expect(upper).toContain(`${control.last_name}, ${control.first_name}`.toUpperCase());

    expect(await ledger()).toEqual(before);
    const unbalanced = await db.pool.query(
      `SELECT entry_id FROM gl.journal_lines GROUP BY entry_id HAVING sum(debit) <> sum(credit)`,
    );
    expect(unbalanced.rows).toEqual([]);
    const slip = await db.pool.query(`SELECT gross, net FROM payroll.payslips WHERE employee_no = $1`, [
      target.employee_no,
    ]);
    expect(slip.rows).toHaveLength(1);

    // The bank file is still well formed: fixed-width records, masked in place.
    const ach = await readFile(path.join(home.dir, 'var/exports/bank-payments-2026-11.ach'), 'utf8');
    for (const line of ach.trimEnd().split('\n')) expect(line).toHaveLength(94);

    // The audit trail records the erasure, not the person.
    const { rows } = await db.pool.query(
      `SELECT subject, detail::text AS d FROM audit.events WHERE action = 'person.erased'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].subject).toBe(`person:${pseudonym}`);
    for (const v of [target.employee_no, target.email, target.last_name, target.account])
      expect(JSON.stringify(rows[0])).not.toContain(v);
    expect((await erp(['audit', 'verify'])).code).toBe(0);

    const again = await erp(['erase', 'person', target.employee_no]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`employee ${target.employee_no} was erased already`);
  });

  it('erases a customer: name, contact, address and the ship-to of its orders; invoices stay', async () => {
    await db.pool.query(
      `INSERT INTO sales.orders (customer_no, customer_po, order_date, ship_to_name, ship_to_address1, ship_to_city)
       VALUES ('PARTNERB', 'PO-E1', '2026-11-10', 'Globex Receiving', '1 Globex Plaza', 'Portland')`,
    );
    const r = await ok(['erase', 'person', 'customer:PARTNERB']);
    expect(r.stdout).toMatch(
      /customer customer:PARTNERB erased: now ERASED-[0-9a-f]{10}; rewritten: sales\.customers 1, sales\.orders 1/,
    );
    const all = await everything();
    for (const v of [
      'Globex Corporation',
      'ecommerce@globex.example.com',
      '503-555-0199',
      '1 Globex Plaza',
      'Globex Receiving',
    ])
      expect(all).not.toContain(v);
    expect(all).toContain('Acme Corp');
    const unknown = await erp(['erase', 'person', 'NOBODY']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`no employee or customer 'NOBODY'`);
  });
});
