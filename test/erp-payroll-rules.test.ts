import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { registerAsModel } from './helpers/fixture-payroll.js';
import { testApp } from './helpers/home.js';
import {
  money,
  payMonth,
  ytdOf,
  type ModelDeduction,
  type ModelEmployee,
  type ModelSlip,
  type ModelYtd,
} from './helpers/payroll-model.js';

/*
 * November and December 2026, checked payslip by payslip against test/helpers/payroll-model.ts, an
 * independent computation of the rules (not the SQL under test).
 *
 *   H1  hourly 20.00; 44 h in the week 26 Oct – Sun 1 Nov (November starts on a Sunday: that week
 *       ends in November and is paid there, with 4 h overtime); 44 h in 30 Nov – 4 Dec (straddles the
 *       month end: paid in December, 4 h overtime); Section 125 health 200.00, 401k 5 %.
 *   S1  salaried 120,000.00, hired Mon 16 Nov: 15 of 30 days in November.
 *   S2  salaried 96,000.00, terminated 10 Dec (inactive): full November, 10 of 31 days in December.
 *   S3  salaried 240,000.00, opening YTD 2026 loaded through the opening-ytd pipeline: gross
 *       170,000.00, FICA wages 168,000.00; health 200.00 (Section 125). November crosses the
 *       social-security wage base (184,500.00); December crosses 200,000.00 (Additional Medicare).
 */
let db: TestDatabase;
let home: TestHome;

const EMPLOYEES: ModelEmployee[] = [
  { no: 'H1', hire: '2020-03-01', hourly: '20.00' },
  { no: 'S1', hire: '2026-11-16', salary: '120000.00' },
  { no: 'S2', hire: '2019-05-01', term: '2026-12-10', salary: '96000.00' },
  { no: 'S3', hire: '2015-01-01', salary: '240000.00' },
];
const DEDUCTIONS: ModelDeduction[] = [
  { no: 'H1', code: 'HEALTH', amount: '200.00' },
  { no: 'H1', code: 'RET401K', percent: '5' },
  { no: 'S3', code: 'HEALTH', amount: '200.00' },
];

function addDays(iso: string, n: number): string {
  return new Date(Date.parse(`${iso}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}
/** H1's days: Mon–Fri 8 h from 26 Oct, Sun 1 Nov 4 h, Mon 30 Nov 10 h and Tue–Fri 1–4 Dec 8.5 h, Mon–Fri 8 h to 31 Dec. */
function h1Timesheets(): { no: string; date: string; hours: string }[] {
  const out: { no: string; date: string; hours: string }[] = [];
  for (let d = '2026-10-26'; d <= '2026-12-31'; d = addDays(d, 1)) {
    const dow = new Date(`${d}T00:00:00Z`).getUTCDay();
    let hours: string | null = dow >= 1 && dow <= 5 ? '8.00' : null;
    if (d === '2026-11-01') hours = '4.00';
    if (d === '2026-11-30') hours = '10.00';
    if (d >= '2026-12-01' && d <= '2026-12-04') hours = '8.50';
    if (hours) out.push({ no: 'H1', date: d, hours });
  }
  return out;
}
const TIMESHEETS = h1Timesheets();

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query(`SELECT payroll.open_period('2026-11'), payroll.open_period('2026-12')`);
  await db.pool.query(`
    INSERT INTO hr.employees (employee_no, first_name, last_name, hire_date, termination_date, active, pay_type,
                              hourly_rate, annual_salary, department, bank_routing, bank_account, bank_account_type) VALUES
      ('H1', 'Hal', 'Hourly', '2020-03-01', NULL, true, 'hourly', 20.00, NULL, 'Warehouse', '021000021', '11112222', 'savings'),
      ('S1', 'Sue', 'Newhire', '2026-11-16', NULL, true, 'salaried', NULL, 120000.00, 'Finance', '011000015', '22223333', 'checking'),
      ('S2', 'Sid', 'Leaver', '2019-05-01', '2026-12-10', false, 'salaried', NULL, 96000.00, 'Sales', '021000021', '33334444', 'checking'),
      ('S3', 'Sal', 'Golive', '2015-01-01', NULL, true, 'salaried', NULL, 240000.00, 'Executive', NULL, NULL, 'checking');
    INSERT INTO payroll.employee_deductions (employee_no, deduction_code, effective_from, amount, percent) VALUES
      ('H1', 'HEALTH', '2026-01-01', 200.00, NULL), ('H1', 'RET401K', '2026-01-01', NULL, 5),
      ('S3', 'HEALTH', '2026-01-01', 200.00, NULL);`);
  await db.pool.query(
    `INSERT INTO payroll.timesheets (employee_no, work_date, hours, approved_by)
     SELECT t.no, t.date::date, t.hours::numeric, 'E0006' FROM json_to_recordset($1) AS t(no text, date text, hours text)`,
    [JSON.stringify(TIMESHEETS)],
  );
  await home.link(['sql']);
  await home.write({
    'pipelines/opening-ytd.yaml': await readFile('pipelines/opening-ytd.yaml'),
    'mappings/opening-ytd.yaml': await readFile('mappings/opening-ytd.yaml'),
    'fixtures/company/opening-ytd-2026.csv':
      'employee_no,tax_year,gross,taxable,fica_wages\nS3,2026,170000.00,168000.00,168000.00\n',
  });
});

const ytd = new Map<string, ModelYtd>();

const slipsOf = (period: string): Promise<ModelSlip[]> => registerAsModel(db.pool, period);

describe('payroll rules against an independent computation', () => {
  it('loads opening year-to-date wages through the opening-ytd pipeline', async () => {
    const def = await loadPipeline(home.dir, 'opening-ytd');
    const result = await runPipeline(testApp(db, home.dir), def);
    expect(result).toMatchObject({ status: 'succeeded', rowsLoaded: 1, rowsRejected: 0 });
    ytd.set('S3', ytdOf('170000.00', '168000.00', '168000.00'));
  });

  it('November: the week ending Sun 1 Nov with its overtime, a mid-month hire, the wage base crossed', async () => {
    await db.pool.query(`SELECT * FROM payroll.close_period('2026-11')`);
    const expected = payMonth('2026-11', EMPLOYEES, TIMESHEETS, DEDUCTIONS, ytd);
    expect(await slipsOf('2026-11')).toEqual(expected);
    // The scenario's points are really in the figures (so the comparison above is not vacuous).
    const by = new Map(expected.map((s) => [s.no, s]));
    expect(by.get('H1')!.overtimeHours).toBe('4.00'); // 26 Oct – 1 Nov: 40 + 4
    expect(by.get('H1')!.regularHours).toBe('200.00'); // five weeks, ending 1, 8, 15, 22 and 29 Nov
    expect(by.get('S1')!.gross).toBe('5000.00'); // 10,000.00 × 15 / 30
    expect(by.get('S3')!.taxes.SOCSEC).toBe(money((16_500_00n * 62n) / 1000n)); // 184,500 − 168,000 = 16,500 × 6.2 %
    expect(by.get('H1')!.fica).toBe(money(412000n - 20000n)); // gross 4,120.00 − Section 125; the 401k stays in
  });

  it('lets the closed November refuse a timesheet of its last workweek but not of 30 November', async () => {
    await expect(
      db.pool.query(
        `UPDATE payroll.timesheets SET hours = 9 WHERE employee_no = 'H1' AND work_date = '2026-10-30'`,
      ),
    ).rejects.toThrow('payroll period 2026-11 is closed: the timesheet of H1 for 2026-10-30');
    await db.pool.query(
      `UPDATE payroll.timesheets SET approved_by = 'E0007' WHERE employee_no = 'H1' AND work_date = '2026-11-30'`,
    );
  });

  it('December: the straddling week 30 Nov – 4 Dec with its overtime, a termination, Additional Medicare', async () => {
    await db.pool.query(`SELECT * FROM payroll.close_period('2026-12')`);
    const expected = payMonth('2026-12', EMPLOYEES, TIMESHEETS, DEDUCTIONS, ytd);
    expect(await slipsOf('2026-12')).toEqual(expected);
    const by = new Map(expected.map((s) => [s.no, s]));
    expect(by.get('H1')!.overtimeHours).toBe('4.00'); // 10 + 4 × 8.5 = 44
    expect(by.get('S2')!.gross).toBe('2580.65'); // 8,000.00 × 10 / 31
    expect(by.get('S3')!.taxes.ADDMED).toBe('68.40'); // (168,000 + 19,800 × 2 − 200,000) × 0.9 %
    expect(by.get('S3')!.taxes.SOCSEC).toBe('0.00');
  });

  it('posts employer taxes to 6100 and their liabilities; the journal ties to the payslips', async () => {
    const { rows } = await db.pool.query(`
      SELECT r.period,
             (SELECT sum(ps.employer_taxes) FROM payroll.payslips ps WHERE ps.run_id = r.id) AS employer,
             (SELECT sum(jl.debit) FROM gl.journal_lines jl WHERE jl.entry_id = r.journal_entry_id AND jl.account_code = '6100') AS expense,
             (SELECT sum(jl.credit) FROM gl.journal_lines jl WHERE jl.entry_id = r.journal_entry_id AND jl.account_code IN ('2140', '2150')) AS futa_suta,
             (SELECT sum(l.amount) FROM payroll.payslip_lines l JOIN payroll.payslips ps ON ps.id = l.payslip_id
               WHERE ps.run_id = r.id AND l.code IN ('FUTA', 'SUTA')) AS futa_suta_lines
        FROM payroll.runs r ORDER BY r.period`);
    for (const r of rows) {
      expect(Number(r.employer)).toBeGreaterThan(0);
      expect(r.expense).toBe(r.employer);
      expect(r.futa_suta).toBe(r.futa_suta_lines);
    }
  });

  it('disburses net pay when the bank file goes out and by check, clearing 2100', async () => {
    for (const period of ['2026-11', '2026-12']) {
      expect(
        (await db.pool.query(`SELECT payroll.disburse_net_pay($1, 'bank') AS s`, [period])).rows[0].s,
      ).toBe('disbursed');
      expect(
        (await db.pool.query(`SELECT payroll.disburse_net_pay($1, 'bank') AS s`, [period])).rows[0].s,
      ).toBe('already disbursed');
    }
    const open = await db.pool.query(
      `SELECT coalesce(sum(credit - debit), 0) AS owed FROM gl.journal_lines WHERE account_code = '2100'`,
    );
    const checks = await db.pool.query(
      `SELECT sum(net) AS net FROM payroll.register WHERE payment_method = 'check'`,
    );
    expect(open.rows[0].owed).toBe(checks.rows[0].net); // S3 is paid by check
    for (const period of ['2026-11', '2026-12'])
      await db.pool.query(`SELECT payroll.disburse_net_pay($1, 'check')`, [period]);
    const after = await db.pool.query(
      `SELECT sum(credit - debit) AS owed FROM gl.journal_lines WHERE account_code = '2100'`,
    );
    expect(after.rows[0].owed).toBe('0.00');
    const tb = await db.pool.query(`SELECT sum(balance) AS b FROM gl.trial_balance WHERE period = '2026-12'`);
    expect(tb.rows[0].b).toBe('0.00');
  });

  it('freezes opening YTD once a run of its year used it', async () => {
    await expect(
      db.pool.query(`UPDATE payroll.opening_ytd SET gross = 1 WHERE employee_no = 'S3'`),
    ).rejects.toThrow(
      /opening year-to-date wages of S3 for 2026 cannot change: payroll run \d+ of that year already used them/,
    );
  });
});
