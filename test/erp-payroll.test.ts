import { beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

/*
 * A hand-made company, paid with the seeded tax tables (000002_erp_core.sql):
 *   INCOME   monthly brackets on taxable pay (gross − pre-tax deductions):
 *            0 – 1000.00: 0 %, 1000.00 – 4000.00: 10 %, 4000.00 – 8000.00: 22 %, above: 32 %
 *   SOCSEC   6.2 % of FICA wages (gross − Section 125 premiums: HEALTH), capped at 184,500.00 a calendar year
 *   MEDICARE 1.45 % of FICA wages; ADDMED 0.9 % of the year's FICA wages above 200,000.00
 *   employer: ER_SOCSEC and ER_MEDICARE as the employee's, FUTA 0.6 % to 7,000.00, SUTA 2.7 % to 9,000.00
 * Every amount is rounded to cents, half up.
 *
 *   T001 Ann   hourly 18.25, hired 2026-11-01, 401k 5 % (pre-tax)            → overtime
 *   S001 Sam   salaried 65,000.00, health 150.00 (pre-tax), union 25.00       → salaried, 22 % bracket
 *   T003 Bo    hourly 25.00, hired 2026-11-01, exactly 40 h a week           → taxable exactly 4000.00
 *   S002 Di    salaried 2,400,000.00, hired 2026-10-01                        → social-security cap
 */
let db: TestDatabase;

const EMPLOYEES = `
  INSERT INTO hr.employees (employee_no, first_name, last_name, email, hire_date, pay_type, hourly_rate, annual_salary,
                            department, bank_routing, bank_account) VALUES
    ('T001', 'Ann', 'Hourly', 'ann@example.com', '2026-11-01', 'hourly', 18.25, NULL, 'Warehouse', '021000021', '1234567'),
    ('S001', 'Sam', 'Salaried', 'sam@example.com', '2020-01-01', 'salaried', NULL, 65000.00, 'Finance', '021000021', '2345678'),
    ('T003', 'Bo', 'Boundary', 'bo@example.com', '2026-11-01', 'hourly', 25.00, NULL, 'Warehouse', NULL, NULL),
    ('S002', 'Di', 'Capped', 'di@example.com', '2026-10-01', 'salaried', NULL, 2400000.00, 'Executive', '011000015', '99990000');
  INSERT INTO payroll.employee_deductions (employee_no, deduction_code, effective_from, amount, percent) VALUES
    ('T001', 'RET401K', '2026-01-01', NULL, 5),
    ('S001', 'HEALTH', '2026-01-01', 150.00, NULL),
    ('S001', 'UNION', '2026-01-01', 25.00, NULL);`;

// T001: Sun 1 Nov 5 h (ISO week of 26 Oct–1 Nov); Mon–Fri 2–6 Nov 9 h and Sun 8 Nov 3 h (week of
// 2–8 Nov: 48 h); Mon–Fri 9–13 Nov 8 h (40 h). Tue 3 Nov is left unapproved at first.
const T001_TIMESHEETS = `
  INSERT INTO payroll.timesheets (employee_no, work_date, hours, approved_by)
  SELECT 'T001', d, CASE WHEN d = '2026-11-01' THEN 5 WHEN d = '2026-11-08' THEN 3 WHEN d <= '2026-11-06' THEN 9 ELSE 8 END,
         CASE WHEN d = '2026-11-03' THEN NULL ELSE 'E0006' END
    FROM generate_series(DATE '2026-11-01', DATE '2026-11-13', interval '1 day') AS g(t), LATERAL (SELECT t::date AS d) x
   WHERE extract(isodow FROM d) < 6 OR d IN ('2026-11-01', '2026-11-08');`;
// T003: Mon–Fri 2–27 Nov, 8 h a day: four weeks of exactly 40 h.
const T003_TIMESHEETS = `
  INSERT INTO payroll.timesheets (employee_no, work_date, hours, approved_by)
  SELECT 'T003', t::date, 8, 'E0006'
    FROM generate_series(DATE '2026-11-02', DATE '2026-11-27', interval '1 day') AS g(t)
   WHERE extract(isodow FROM t) < 6;`;

test.beforeAll(async ({ db: d }) => {
  db = d;
  await db.pool.query(`SELECT payroll.open_period('2026-10'), payroll.open_period('2026-11')`);
  await db.pool.query(EMPLOYEES);
  await db.pool.query(T001_TIMESHEETS);
});

async function count(sql: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(`SELECT (${sql})::int AS n`);
  return rows[0]!.n;
}

const close = (period: string) => db.pool.query(`SELECT * FROM payroll.close_period($1, 'tester')`, [period]);

describe('payroll.close_period', () => {
  it('refuses a period whose earlier periods of the year are still open', async () => {
    await expect(close('2026-11')).rejects.toMatchObject({
      code: 'ERP01',
      message: 'payroll period 2026-11 cannot close before earlier period(s) of its year: 2026-10 still open',
    });
  });

  it('closes October: the salaried staff, social security capped at the annual wage base', async () => {
    const { rows } = await close('2026-10');
    // S001: 65000.00 / 12 = 5416.666… → 5416.67, taxes 981.57, deductions 175.00, net 4260.10 (see November).
    // S002: 2400000.00 / 12 = 200000.00.
    //   INCOME   = 3000.00 × 10 % + 4000.00 × 22 % + 192000.00 × 32 % = 300.00 + 880.00 + 61440.00 = 62620.00
    //   SOCSEC   = min(200000.00, 184500.00 − 0) × 6.2 % = 184500.00 × 0.062 = 11439.00
    //   MEDICARE = 200000.00 × 1.45 % = 2900.00;  ADDMED: the year reaches 200000.00, nothing above → 0.00
    //   net      = 200000.00 − 76959.00 = 123041.00
    // Totals: gross 205416.67, taxes 981.57 + 76959.00 = 77940.57, deductions 175.00, net 127301.10.
    expect(rows).toEqual([
      expect.objectContaining({
        period: '2026-10',
        employee_count: 2,
        total_gross: '205416.67',
        total_taxes: '77940.57',
        total_deductions: '175.00',
        total_net: '127301.10',
      }),
    ]);
    const socsec = await db.pool.query(
      `SELECT base, amount FROM payroll.register_lines WHERE period = '2026-10' AND employee_no = 'S002' AND code = 'SOCSEC'`,
    );
    expect(socsec.rows).toEqual([{ base: '184500.00', amount: '11439.00' }]);
  });

  it('refuses while timesheets are unapproved or missing, listing them, and writes nothing', async () => {
    await expect(close('2026-11')).rejects.toMatchObject({
      code: 'ERP01',
      message:
        'payroll period 2026-11 cannot close: unapproved timesheets: T001 2026-11-03; ' +
        'missing timesheets (active hourly employees with none in 2026-11): T003',
    });
    expect(await count(`SELECT count(*) FROM payroll.runs WHERE period = '2026-11'`)).toBe(0);
    expect(await count(`SELECT count(*) FROM gl.journal_entries WHERE period = '2026-11'`)).toBe(0);
    expect(
      await count(`SELECT count(*) FROM payroll.periods WHERE period = '2026-11' AND status = 'open'`),
    ).toBe(1);
  });

  it('a close in a transaction that is rolled back (a dry run) leaves nothing behind', async () => {
    await db.pool.query(
      `UPDATE payroll.timesheets SET approved_by = 'E0006' WHERE employee_no = 'T001' AND work_date = '2026-11-03'`,
    );
    await db.pool.query(T003_TIMESHEETS);
    const before = await db.pool.query(
      `SELECT (SELECT count(*) FROM payroll.runs) AS runs, (SELECT count(*) FROM payroll.payslips) AS slips,
              (SELECT count(*) FROM payroll.payslip_lines) AS lines, (SELECT count(*) FROM gl.journal_entries) AS entries,
              (SELECT count(*) FROM gl.journal_lines) AS jlines`,
    );
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query(`SELECT * FROM payroll.close_period('2026-11')`);
      expect(rows[0]).toMatchObject({ employee_count: 4, total_gross: '211186.92', total_net: '141812.24' });
      const register = await client.query(
        `SELECT count(*)::int AS n FROM payroll.register WHERE period = '2026-11'`,
      );
      expect(register.rows[0].n).toBe(4);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const after = await db.pool.query(
      `SELECT (SELECT count(*) FROM payroll.runs) AS runs, (SELECT count(*) FROM payroll.payslips) AS slips,
              (SELECT count(*) FROM payroll.payslip_lines) AS lines, (SELECT count(*) FROM gl.journal_entries) AS entries,
              (SELECT count(*) FROM gl.journal_lines) AS jlines`,
    );
    expect(after.rows).toEqual(before.rows);
    expect(
      await count(`SELECT count(*) FROM payroll.periods WHERE period = '2026-11' AND status = 'open'`),
    ).toBe(1);
  });

  it('closes November with the figures computed by hand', async () => {
    const { rows } = await close('2026-11');
    expect(rows).toEqual([
      {
        run_id: expect.any(String),
        period: '2026-11',
        employee_count: 4,
        total_gross: '211186.92',
        total_taxes: '69111.17',
        total_deductions: '263.51',
        total_net: '141812.24',
        journal_entry_id: expect.any(String),
      },
    ]);
    const slips = await db.pool.query(
      `SELECT employee_no, regular_hours, overtime_hours, regular_pay, overtime_pay, salary_pay, gross, taxable, taxes, deductions, net
         FROM payroll.register WHERE period = '2026-11' ORDER BY employee_no`,
    );
    expect(slips.rows).toEqual([
      // S001: salary 65000.00 / 12 = 5416.67; health 150.00 is pre-tax and Section 125 → taxable = FICA wages = 5266.67.
      //   INCOME   = 3000.00 × 0.10 + (5266.67 − 4000.00) × 0.22 = 300.00 + 278.6674 = 578.6674 → 578.67
      //   SOCSEC   = 5266.67 × 0.062  = 326.53354 → 326.53
      //   MEDICARE = 5266.67 × 0.0145 = 76.366715 → 76.37            taxes = 981.57
      //   deductions = 150.00 + 25.00 (union, after tax) = 175.00;   net = 5416.67 − 981.57 − 175.00 = 4260.10
      {
        employee_no: 'S001',
        regular_hours: '0.00',
        overtime_hours: '0.00',
        regular_pay: '0.00',
        overtime_pay: '0.00',
        salary_pay: '5416.67',
        gross: '5416.67',
        taxable: '5266.67',
        taxes: '981.57',
        deductions: '175.00',
        net: '4260.10',
      },
      // S002: gross 200000.00; the year's social-security base is used up in October (184500.00) → SOCSEC 0.00.
      //   The year's wages go from 200000.00 to 400000.00: ADDMED = 200000.00 × 0.9 % = 1800.00.
      //   INCOME 62620.00 + MEDICARE 2900.00 + ADDMED 1800.00 = 67320.00; net = 200000.00 − 67320.00 = 132680.00
      {
        employee_no: 'S002',
        regular_hours: '0.00',
        overtime_hours: '0.00',
        regular_pay: '0.00',
        overtime_pay: '0.00',
        salary_pay: '200000.00',
        gross: '200000.00',
        taxable: '200000.00',
        taxes: '67320.00',
        deductions: '0.00',
        net: '132680.00',
      },
      // T001: week 26 Oct–1 Nov (ends in November, so paid now): 5 h regular; week 2–8 Nov: 48 h = 40 regular + 8 overtime; week 9–13 Nov: 40 regular.
      //   regular  = 85 h × 18.25 = 1551.25;  overtime = 8 h × 18.25 × 1.5 = 219.00;  gross = 1770.25
      //   401k 5 % = 88.5125 → 88.51 (pre-tax) → taxable = 1681.74
      //   INCOME   = (1681.74 − 1000.00) × 0.10 = 68.174 → 68.17
      //   SOCSEC   = 1770.25 × 0.062  = 109.7555 → 109.76
      //   MEDICARE = 1770.25 × 0.0145 = 25.668625 → 25.67          taxes = 203.60
      //   net = 1770.25 − 203.60 − 88.51 = 1478.14
      {
        employee_no: 'T001',
        regular_hours: '85.00',
        overtime_hours: '8.00',
        regular_pay: '1551.25',
        overtime_pay: '219.00',
        salary_pay: '0.00',
        gross: '1770.25',
        taxable: '1681.74',
        taxes: '203.60',
        deductions: '88.51',
        net: '1478.14',
      },
      // T003: 4 weeks × 40 h = 160 h, none overtime (40 h is not over 40); 160 × 25.00 = 4000.00 = taxable,
      // exactly the 10 %/22 % boundary, so the 22 % bracket takes nothing:
      //   INCOME = 3000.00 × 0.10 = 300.00;  SOCSEC = 4000.00 × 0.062 = 248.00;  MEDICARE = 4000.00 × 0.0145 = 58.00
      //   taxes = 606.00;  net = 4000.00 − 606.00 = 3394.00
      {
        employee_no: 'T003',
        regular_hours: '160.00',
        overtime_hours: '0.00',
        regular_pay: '4000.00',
        overtime_pay: '0.00',
        salary_pay: '0.00',
        gross: '4000.00',
        taxable: '4000.00',
        taxes: '606.00',
        deductions: '0.00',
        net: '3394.00',
      },
    ]);
    const t001 = await db.pool.query(
      `SELECT kind, code, quantity, rate, base, amount FROM payroll.register_lines
        WHERE period = '2026-11' AND employee_no = 'T001' ORDER BY kind_order, code`,
    );
    expect(t001.rows).toEqual([
      { kind: 'earning', code: 'OT', quantity: '8.00', rate: '27.37500', base: null, amount: '219.00' },
      { kind: 'earning', code: 'REG', quantity: '85.00', rate: '18.25000', base: null, amount: '1551.25' },
      {
        kind: 'deduction',
        code: 'RET401K',
        quantity: null,
        rate: '5.00000',
        base: '1770.25',
        amount: '88.51',
      },
      { kind: 'tax', code: 'ADDMED', quantity: null, rate: null, base: '0.00', amount: '0.00' },
      { kind: 'tax', code: 'INCOME', quantity: null, rate: null, base: '1681.74', amount: '68.17' },
      { kind: 'tax', code: 'MEDICARE', quantity: null, rate: null, base: '1770.25', amount: '25.67' },
      { kind: 'tax', code: 'SOCSEC', quantity: null, rate: null, base: '1770.25', amount: '109.76' },
      // Employer taxes: not withheld; FUTA 1770.25 × 0.6 % = 10.6215 → 10.62, SUTA × 2.7 % = 47.79675 → 47.80.
      {
        kind: 'employer_tax',
        code: 'ER_MEDICARE',
        quantity: null,
        rate: null,
        base: '1770.25',
        amount: '25.67',
      },
      {
        kind: 'employer_tax',
        code: 'ER_SOCSEC',
        quantity: null,
        rate: null,
        base: '1770.25',
        amount: '109.76',
      },
      { kind: 'employer_tax', code: 'FUTA', quantity: null, rate: null, base: '1770.25', amount: '10.62' },
      { kind: 'employer_tax', code: 'SUTA', quantity: null, rate: null, base: '1770.25', amount: '47.80' },
    ]);
    const bank = await db.pool.query(
      `SELECT employee_no, routing, account, amount FROM payroll.bank_payments WHERE period = '2026-11' ORDER BY employee_no`,
    );
    // T003 has no bank details: paid by check, not in the bank file.
    expect(bank.rows).toEqual([
      { employee_no: 'S001', routing: '021000021', account: '2345678', amount: '4260.10' },
      { employee_no: 'S002', routing: '011000015', account: '99990000', amount: '132680.00' },
      { employee_no: 'T001', routing: '021000021', account: '1234567', amount: '1478.14' },
    ]);
  });

  it("posts one balanced journal entry whose totals are the payslips' totals", async () => {
    const { rows } = await db.pool.query(
      `SELECT account_code, debit, credit FROM payroll.journal WHERE period = '2026-11' ORDER BY line_no`,
    );
    // Debit wages = gross 211186.92. Credits: net 141812.24; INCOME 68.17 + 578.67 + 62620.00 + 300.00 = 63566.84;
    // SOCSEC 109.76 + 326.53 + 0.00 + 248.00 = 684.29; MEDICARE 25.67 + 76.37 + 2900.00 + 58.00 = 3060.04;
    // ADDMED 1800.00 (2160); RET401K 88.51; HEALTH 150.00; UNION 25.00.
    // Employer taxes, debited to 6100: ER_SOCSEC 684.29 and ER_MEDICARE 3060.04 (as the employee's, credited with
    // them to 2120 and 2130); FUTA (2140) S001 (7000.00 − 5266.67 in October) × 0.6 % = 10.39998 → 10.40 + T001 10.62
    // + T003 24.00 + S002 0.00 = 45.02; SUTA (2150) S001 (9000.00 − 5266.67) × 2.7 % = 100.79991 → 100.80 + T001 47.80
    // + T003 108.00 = 256.60. 6100 = 684.29 + 3060.04 + 45.02 + 256.60 = 4045.95.
    // Debits 211186.92 + 4045.95 = 215232.87 = credits.
    expect(rows).toEqual([
      { account_code: '6000', debit: '211186.92', credit: '0.00' },
      { account_code: '6100', debit: '4045.95', credit: '0.00' },
      { account_code: '2100', debit: '0.00', credit: '141812.24' },
      { account_code: '2110', debit: '0.00', credit: '63566.84' },
      { account_code: '2120', debit: '0.00', credit: '1368.58' },
      { account_code: '2130', debit: '0.00', credit: '6120.08' },
      { account_code: '2140', debit: '0.00', credit: '45.02' },
      { account_code: '2150', debit: '0.00', credit: '256.60' },
      { account_code: '2160', debit: '0.00', credit: '1800.00' },
      { account_code: '2210', debit: '0.00', credit: '88.51' },
      { account_code: '2220', debit: '0.00', credit: '150.00' },
      { account_code: '2230', debit: '0.00', credit: '25.00' },
    ]);
    const check = await db.pool.query(`
      SELECT (SELECT sum(debit) FROM payroll.journal WHERE period = '2026-11') AS debits,
             (SELECT sum(credit) FROM payroll.journal WHERE period = '2026-11') AS credits,
             (SELECT sum(gross) FROM payroll.register WHERE period = '2026-11') AS gross,
             (SELECT sum(taxes) + sum(deductions) + sum(net) FROM payroll.register WHERE period = '2026-11') AS withheld_and_net,
             (SELECT sum(employer_taxes) FROM payroll.register WHERE period = '2026-11') AS employer_taxes,
             (SELECT count(*)::int FROM gl.journal_entries WHERE period = '2026-11' AND source = 'payroll') AS entries`);
    expect(check.rows[0]).toEqual({
      debits: '215232.87',
      credits: '215232.87',
      gross: '211186.92',
      withheld_and_net: '211186.92',
      employer_taxes: '4045.95',
      entries: 1,
    });
  });

  it('refuses a second close of the closed period and duplicates nothing', async () => {
    await expect(close('2026-11')).rejects.toMatchObject({
      code: 'ERP01',
      message: expect.stringMatching(
        /^payroll period 2026-11 is already closed \(run \d+, closed \d{4}-\d\d-\d\d \d\d:\d\d by tester\); a second close is refused$/,
      ),
    });
    expect(await count(`SELECT count(*) FROM payroll.runs WHERE period = '2026-11'`)).toBe(1);
    expect(
      await count(
        `SELECT count(*) FROM payroll.payslips ps JOIN payroll.runs r ON r.id = ps.run_id WHERE r.period = '2026-11'`,
      ),
    ).toBe(4);
    expect(await count(`SELECT count(*) FROM gl.journal_entries WHERE source = 'payroll'`)).toBe(2);
  });

  it("keeps the closed period's timesheets and payslips as they were", async () => {
    await expect(
      db.pool.query(
        `UPDATE payroll.timesheets SET hours = 12 WHERE employee_no = 'T001' AND work_date = '2026-11-02'`,
      ),
    ).rejects.toThrow(
      'payroll period 2026-11 is closed: the timesheet of T001 for 2026-11-02 cannot be added, changed or deleted',
    );
    await expect(
      db.pool.query(
        `INSERT INTO payroll.timesheets (employee_no, work_date, hours, approved_by) VALUES ('T003', '2026-11-28', 4, 'E0006')`,
      ),
    ).rejects.toThrow(/payroll period 2026-11 is closed/);
    await expect(
      db.pool.query(`UPDATE payroll.payslips SET net = net WHERE employee_no = 'T001'`),
    ).rejects.toThrow(/payroll run \d+ is completed: its payslips cannot be added, changed or deleted/);
    await expect(db.pool.query(`SELECT payroll.open_period('2026-11')`)).rejects.toThrow(
      'payroll period 2026-11 is closed; a closed payroll period cannot be opened again',
    );
  });
});

describe('payroll.close_period refusals', () => {
  beforeAll(async () => {
    await db.pool.query(`SELECT payroll.open_period('2026-12')`);
  });

  it('refuses a period that does not exist or is malformed', async () => {
    await expect(close('2027-01')).rejects.toThrow(
      'payroll period 2027-01 does not exist; open it first (sql/jobs/open_period.sql)',
    );
    await expect(close('202612')).rejects.toThrow(
      `a period is written YYYY-MM (for example 2026-11), not '202612'`,
    );
  });

  it('refuses while a payroll run for the period is in progress', async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      `INSERT INTO payroll.runs (period, started_by) VALUES ('2026-12', 'someone') RETURNING id`,
    );
    try {
      await expect(close('2026-12')).rejects.toMatchObject({
        code: 'ERP01',
        message: expect.stringMatching(
          new RegExp(
            `^a payroll run for 2026-12 is already in progress \\(run ${rows[0]!.id}, started .* by someone\\); a second run is refused$`,
          ),
        ),
      });
    } finally {
      await db.pool.query(`DELETE FROM payroll.runs WHERE id = $1`, [rows[0]!.id]);
    }
  });

  it('refuses, rather than queues behind, a session that holds the period (a close or a timesheet load)', async () => {
    const loader = await db.pool.connect();
    try {
      await loader.query('BEGIN');
      await loader.query(
        `INSERT INTO payroll.timesheets (employee_no, work_date, hours) VALUES ('T001', '2026-12-01', 8)`,
      );
      await expect(close('2026-12')).rejects.toThrow(
        'payroll period 2026-12 is busy: another session is closing it or loading its timesheets; try again when that has finished',
      );
    } finally {
      await loader.query('ROLLBACK');
      loader.release();
    }
  });

  it('refuses when net pay would be negative, naming the employee and the figures', async () => {
    await db.pool.query(`
      INSERT INTO payroll.timesheets (employee_no, work_date, hours, approved_by) VALUES
        ('T001', '2026-12-01', 1, 'E0006'), ('T003', '2026-12-01', 8, 'E0006');
      INSERT INTO payroll.employee_deductions (employee_no, deduction_code, effective_from, amount) VALUES
        ('T001', 'HEALTH', '2026-12-01', 150.00);`);
    // T001: gross 1 h × 18.25 = 18.25; 401k 0.9125 → 0.91 + health 150.00 = 150.91; taxable max(18.25 − 150.91, 0) = 0;
    //   FICA wages max(18.25 − 150.00 (Section 125), 0) = 0 → SOCSEC and MEDICARE 0.00; taxes 0.00.
    await expect(close('2026-12')).rejects.toMatchObject({
      code: 'ERP01',
      message:
        'payroll period 2026-12 cannot close: net pay would be negative for T001 (gross 18.25, taxes 0.00, deductions 150.91)',
    });
    expect(await count(`SELECT count(*) FROM payroll.runs WHERE period = '2026-12'`)).toBe(0);
  });

  it('pays the rate in effect on the last day of the period', async () => {
    await db.pool.query(
      `INSERT INTO hr.pay_rates (employee_no, effective_from, pay_type, hourly_rate) VALUES ('T001', '2026-12-01', 'hourly', 20.00)`,
    );
    const { rows } = await db.pool.query(
      `SELECT (SELECT hourly_rate FROM payroll.rates_on('2026-11-30') WHERE employee_no = 'T001') AS nov,
              (SELECT hourly_rate FROM payroll.rates_on('2026-12-31') WHERE employee_no = 'T001') AS dec`,
    );
    expect(rows[0]).toEqual({ nov: '18.2500', dec: '20.0000' });
    // A rate changed on the employee master is recorded as effective today (or from the hire date, if later).
    await db.pool.query(`UPDATE hr.employees SET hourly_rate = 26.00 WHERE employee_no = 'T003'`);
    const t003 = await db.pool.query(
      `SELECT effective_from = greatest(current_date, DATE '2026-11-01') AS today, hourly_rate
         FROM hr.pay_rates WHERE employee_no = 'T003' ORDER BY effective_from DESC LIMIT 1`,
    );
    expect(t003.rows[0]).toEqual({ today: true, hourly_rate: '26.0000' });
  });
});
