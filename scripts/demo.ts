/**
 * `npm run demo`: the whole story on the shipped fixtures, on a fresh database.
 *
 *   migrate ─► imports (CSV, XLSX) ─► opening stock and YTD wages ─► EDI: partners drop 850s on SFTP
 *     ─► orders + 997/999 back ─► ship & invoice ─► 810/856 out ─► timesheets over SFTP ─► payroll
 *     close (dry run, real with NACHA file and disbursement, refused again) ─► nightly exports (trial
 *     balance XLSX, AR aging CSV) ─► month-end close ─► summary
 *
 * Everything runs through the same `erp` commands an operator uses: a worker pool executes the
 * runs; `erp run` queues and follows them. An OpenSSH sshd on a loopback port plays the partners'
 * SFTP servers, with its host key pinned.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, cp, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { queryOnce } from '../src/db/pool.js';
import { startSshd } from '../test/helpers/sshd.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const ADMIN_URL = process.env.DEMO_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
const DB = process.env.DEMO_DATABASE ?? 'erp_demo';
const OUT = path.join(ROOT, 'var', 'demo');
const EXPORTS = path.join(ROOT, 'var', 'exports');
const PERIOD = '2026-11';

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function erp(env: NodeJS.ProcessEnv, args: string[], expectCode = 0): void {
  console.log(bold(`\n$ erp ${args.join(' ')}`));
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), ...args], {
    env,
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (r.status !== expectCode) {
    throw new Error(`erp ${args.join(' ')} exited ${r.status}, expected ${expectCode}`);
  }
}

async function main(): Promise<void> {
  await queryOnce(ADMIN_URL, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await queryOnce(ADMIN_URL, `CREATE DATABASE ${DB}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${DB}`;
  await rm(OUT, { recursive: true, force: true });
  await mkdir(OUT, { recursive: true });
  // The export pipelines write into var/exports (their sink's dir).
  await rm(EXPORTS, { recursive: true, force: true });
  await mkdir(EXPORTS, { recursive: true });

  const sshd = await startSshd();
  let worker: ChildProcess | null = null;
  try {
    for (const p of ['PARTNERA', 'PARTNERB', 'TIMECLOCK']) {
      for (const d of ['inbox', 'outbox', 'archive', 'error'])
        await mkdir(path.join(sshd.root, p, d), { recursive: true });
    }
    const env: NodeJS.ProcessEnv = {
      // Bank accounts and tax ids are encrypted at rest: the demo's database gets a key of its own.
      ERP_KEYS: `demo:${randomBytes(32).toString('base64')}`,
      ...process.env,
      DATABASE_URL: url.toString(),
      ERP_HOME: ROOT,
      ERP_DATA_DIR: path.relative(ROOT, OUT),
      ERP_QUEUE_PREFIX: `erp-demo-${randomBytes(3).toString('hex')}`,
      LOG_LEVEL: 'warn',
      ERP_SFTP_PORT: String(sshd.port),
      ERP_SFTP_USER: sshd.user,
      ERP_SFTP_KEY_FILE: sshd.privateKeyPath,
      ERP_SFTP_HOST_KEY_SHA256: sshd.hostKeyFingerprint,
      ERP_SFTP_ROOT: sshd.root,
    };
    console.log(
      bold('erp demo') +
        ` — database ${DB}, SFTP server 127.0.0.1:${sshd.port} (host key ${sshd.hostKeyFingerprint})`,
    );

    erp(env, ['migrate']);
    worker = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'worker', '--concurrency', '2'], {
      env,
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });

    // Master data: CSV and Excel imports, through the worker pool.
    erp(env, ['run', 'customers']);
    erp(env, ['run', 'items']);
    erp(env, ['run', 'items', '--file', 'fixtures/company/items-bad.csv']);
    erp(env, ['run', 'employees']);
    erp(env, ['run', 'employee-deductions']);
    erp(env, ['run', 'items'], 0); // the same file again: recognised and skipped

    // Go-live in November: the month opens; the opening stock at cost and the year-to-date wages
    // the previous payroll system paid come in.
    erp(env, ['run', 'open-period', '--period', PERIOD]);
    erp(env, ['run', 'inventory-opening']);
    erp(env, ['run', 'opening-ytd']);

    // EDI: two partners drop purchase orders; orders are loaded and acknowledged, then shipped
    // (inventory relieved at cost, COGS posted), invoiced, and the 856 ship notices and 810 invoices go back.
    await copyFile('fixtures/edi/partner-a-850.edi', path.join(sshd.root, 'PARTNERA/inbox/po-0001.edi'));
    await copyFile('fixtures/edi/partner-b-850.edi', path.join(sshd.root, 'PARTNERB/inbox/po-0002.edi'));
    await copyFile('fixtures/edi/bad-se-count.edi', path.join(sshd.root, 'PARTNERA/inbox/po-0003.edi'));
    erp(env, ['run', 'edi-inbound']);
    erp(env, ['run', 'ship-and-invoice', '--param', 'ship_date=2026-11-27']);
    erp(env, ['run', 'edi-outbound']);
    erp(env, ['edi', 'status']);

    // Payroll: the time clock drops a month of timesheets on SFTP; one is not approved yet.
    await copyFile(
      'fixtures/company/timesheets-2026-11-unapproved.csv',
      path.join(sshd.root, 'TIMECLOCK/inbox/timesheets-2026-11-a.csv'),
    );
    erp(env, ['run', 'timesheets']);
    erp(env, ['run', 'payroll-close', '--period', PERIOD], 1); // refused: an unapproved timesheet
    await copyFile(
      'fixtures/company/timesheets-2026-11.csv',
      path.join(sshd.root, 'TIMECLOCK/inbox/timesheets-2026-11-b.csv'),
    );
    erp(env, ['run', 'timesheets']);
    erp(env, ['run', 'payroll-close', '--period', PERIOD, '--dry-run']);
    erp(env, ['run', 'payroll-close', '--period', PERIOD]);
    // A closed period is never closed twice: refused before anything runs (exit 2), since its bank
    // file is already there and is never overwritten.
    erp(env, ['run', 'payroll-close', '--period', PERIOD], 2);

    // The nightly batch: every import again (all skipped: nothing new), EDI, and the exports.
    erp(env, ['run', 'nightly', '--param', `period=${PERIOD}`, '--param', 'as_of=2026-11-30']);
    // Month end: payroll closed and paid, so the fiscal period closes; the ledger and every
    // subledger refuse November from now on.
    erp(env, ['run', 'month-end-close', '--period', PERIOD]);
    erp(env, ['runs', '--limit', '30']);

    // What is where.
    await cp(sshd.root, path.join(OUT, 'sftp'), { recursive: true });
    const files = async (dir: string): Promise<string[]> =>
      (await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)))
        .sort();
    const pool = new pg.Pool({ connectionString: url.toString() });
    const q = async (sql: string): Promise<string> =>
      String(Object.values((await pool.query(sql)).rows[0] ?? {})[0]);
    console.log(bold('\nSummary'));
    console.log(`  runs recorded:          ${await q('SELECT count(*) FROM runner.runs')}`);
    console.log(
      `  items / employees:      ${await q('SELECT count(*) FROM sales.items')} / ${await q('SELECT count(*) FROM hr.employees')}`,
    );
    console.log(`  timesheets:             ${await q('SELECT count(*) FROM payroll.timesheets')}`);
    console.log(
      `  payroll ${PERIOD}:        ${await q(`SELECT 'net ' || total_net || ' for ' || employee_count || ' employees' FROM payroll.runs WHERE period = '${PERIOD}' AND status = 'completed'`)}`,
    );
    console.log(`  sales orders from EDI:  ${await q('SELECT count(*) FROM sales.orders')}`);
    console.log(
      `  ledger ${PERIOD}:         ${await q(`SELECT 'trial balance ' || sum(balance) || ', AR ' || (SELECT sum(balance) FROM sales.ar_subledger) || ' = GL 1200 ' || (SELECT sum(debit - credit) FROM gl.journal_lines WHERE account_code = '1200') || ', inventory ' || (SELECT sum(value) FROM inv.valuation) || ' = GL 1300 ' || (SELECT sum(debit - credit) FROM gl.journal_lines WHERE account_code = '1300') || ', net pay payable ' || (SELECT coalesce(sum(credit - debit), 0) FROM gl.journal_lines WHERE account_code = '2100') FROM gl.trial_balance WHERE period = '${PERIOD}'`)}`,
    );
    console.log(
      `  EDI interchanges:       ${await q(`SELECT string_agg(direction || ' ' || status || ' ' || n, ', ') FROM (SELECT direction, status, count(*) n FROM edi.interchanges GROUP BY 1, 2 ORDER BY 1, 2) x`)}`,
    );
    console.log(`  rejected rows reported: ${await q('SELECT count(*) FROM runner.rejects')}`);
    await pool.end();
    console.log(bold('\nOutput files'));
    for (const f of [
      ...(await files(EXPORTS)),
      ...(await files(path.join(OUT, 'runs')).catch(() => [])),
      ...(await files(path.join(OUT, 'sftp'))),
    ]) {
      if (!f.includes('/.ssh') && !f.endsWith('_key') && !f.includes('sshd')) console.log(`  ${f}`);
    }
  } finally {
    if (worker) {
      worker.kill('SIGTERM');
      await new Promise((r) => worker!.once('exit', r));
    }
    await sshd.stop();
  }
}

await main();
