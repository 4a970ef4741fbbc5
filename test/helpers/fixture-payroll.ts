import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import type pg from 'pg';
import { FIXTURE_PERIOD } from '../../scripts/make-fixtures.js';
import { payMonth, ytdOf, type ModelDeduction, type ModelSlip } from './payroll-model.js';

/**
 * The fixture company's payroll (fixtures/company) computed by the independent model
 * (payroll-model.ts), and the closed register read back in the model's shape, so tests compare
 * every payslip.
 */

type Row = (string | null)[];

async function readCsv(name: string): Promise<Row[]> {
  const records = parse(await readFile(path.join('fixtures', 'company', name)), { bom: true }) as string[][];
  return records.slice(1).map((r) => r.map((v) => (v === '' ? null : v)));
}

/** The November payroll of the fixture company, computed by the independent model. */
export async function modelOfFixtures(pool: pg.Pool, openingRows: Row[] = []): Promise<ModelSlip[]> {
  const { rows: employees } = await pool.query(
    `SELECT employee_no, hire_date::text, termination_date::text, hourly_rate, annual_salary FROM hr.employees`,
  );
  const end = `${FIXTURE_PERIOD}-30`;
  const deductions = (await readCsv('employee-deductions.csv'))
    .map(([no, code, from, to, amount, percent]) => ({ no, code, from, to, amount, percent }))
    .filter((d) => d.from! <= end)
    .sort((a, b) => b.from!.localeCompare(a.from!))
    .filter((d, i, all) => all.findIndex((x) => x.no === d.no && x.code === d.code) === i)
    .filter((d) => !d.to || d.to >= end);
  const timesheets = (await readCsv(`timesheets-${FIXTURE_PERIOD}.csv`)).map(([no, date, hours]) => ({
    no: no!,
    date: date!,
    hours: hours!,
  }));
  const ytd = new Map(
    openingRows.map(([no, , gross, taxable, fica]) => [no!, ytdOf(gross!, taxable!, fica!)]),
  );
  return payMonth(
    FIXTURE_PERIOD,
    employees.map((e) => ({
      no: e.employee_no,
      hire: e.hire_date,
      term: e.termination_date ?? undefined,
      hourly: e.hourly_rate ?? undefined,
      salary: e.annual_salary ?? undefined,
    })),
    timesheets,
    deductions.map((d) => ({
      no: d.no!,
      code: d.code as ModelDeduction['code'],
      amount: d.amount ?? undefined,
      percent: d.percent ?? undefined,
    })),
    ytd,
  );
}

/** The closed period's register and lines, in the model's shape. */
export async function registerAsModel(pool: pg.Pool, period: string): Promise<ModelSlip[]> {
  const { rows: slips } = await pool.query(
    `SELECT employee_no, regular_hours, overtime_hours, gross, taxable, fica_wages, taxes, employer_taxes, net
       FROM payroll.register WHERE period = $1 ORDER BY employee_no`,
    [period],
  );
  const { rows: lines } = await pool.query(
    `SELECT employee_no, kind, code, amount FROM payroll.register_lines WHERE period = $1`,
    [period],
  );
  const of = (no: string, kind: string) =>
    Object.fromEntries(
      lines.filter((l) => l.employee_no === no && l.kind === kind).map((l) => [l.code, l.amount]),
    );
  return slips.map((s) => ({
    no: s.employee_no,
    regularHours: s.regular_hours,
    overtimeHours: s.overtime_hours,
    gross: s.gross,
    taxable: s.taxable,
    fica: s.fica_wages,
    taxes: of(s.employee_no, 'tax'),
    employer: of(s.employee_no, 'employer_tax'),
    deductions: of(s.employee_no, 'deduction'),
    totalTaxes: s.taxes,
    totalEmployer: s.employer_taxes,
    net: s.net,
  }));
}
