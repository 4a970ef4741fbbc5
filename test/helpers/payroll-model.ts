/**
 * An independent computation of a monthly payroll, written from the rules (docs/payroll.md) and the
 * law they follow, not from the SQL under test: integer cents and BigInt, rounding half up.
 *
 *   FLSA: fixed Monday–Sunday workweeks, a week paid in the month where it ends; > 40 h at 1.5×.
 *   Salary: annual / 12, prorated by calendar days for a hire or a termination inside the month.
 *   Income tax: monthly brackets on gross − pre-tax deductions.
 *   FICA / FUTA / SUTA: on gross − Section 125 deductions; SS 6.2 % up to 184,500 a year, Medicare
 *   1.45 %, Additional Medicare 0.9 % over 200,000 a year (employee only); employer SS 6.2 %, Medicare
 *   1.45 %, FUTA 0.6 % up to 7,000, SUTA 2.7 % up to 9,000.
 */

/** Cents as a bigint. */
type Cents = bigint;

export interface ModelEmployee {
  no: string;
  hire: string;
  term?: string;
  hourly?: string; // '18.25'
  salary?: string; // '65000.00'
}
export interface ModelDeduction {
  no: string;
  code: 'RET401K' | 'HEALTH' | 'UNION';
  amount?: string;
  percent?: string;
}
export interface ModelYtd {
  gross: Cents;
  taxable: Cents;
  fica: Cents;
}
export interface ModelSlip {
  no: string;
  regularHours: string;
  overtimeHours: string;
  gross: string;
  taxable: string;
  fica: string;
  taxes: Record<string, string>;
  employer: Record<string, string>;
  deductions: Record<string, string>;
  totalTaxes: string;
  totalEmployer: string;
  net: string;
}

const PRE_TAX = new Set(['RET401K', 'HEALTH']);
const SECTION_125 = new Set(['HEALTH']);

/** "12.34" → 1234n; "18.25" with scale 4 → 182500n. */
function fixed(s: string, scale: number): bigint {
  const [i, f = ''] = s.split('.');
  return BigInt(i!) * 10n ** BigInt(scale) + BigInt((f + '0'.repeat(scale)).slice(0, scale));
}
/** round(n / d) half up, n ≥ 0, d > 0. */
function div(n: bigint, d: bigint): bigint {
  return (2n * n + d) / (2n * d);
}
export function money(c: Cents): string {
  const sign = c < 0n ? '-' : '';
  const a = c < 0n ? -c : c;
  return `${sign}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
}
const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);

/** rate as a string of up to 5 decimals ('0.062'): round(base × rate). */
function pct(base: Cents, rate: string): Cents {
  return div(base * fixed(rate, 5), 100000n);
}
/** The part of this month's base between an annual floor and cap, given the year's wages so far. */
function slice(ytd: Cents, month: Cents, floor: Cents, cap: Cents | null): Cents {
  const clamp = (x: Cents) => (cap === null ? max(x, floor) : min(max(x, floor), cap));
  return clamp(ytd + month) - clamp(ytd);
}
function incomeTax(taxable: Cents): Cents {
  const brackets: [Cents, Cents | null, string][] = [
    [100000n, 400000n, '0.10'],
    [400000n, 800000n, '0.22'],
    [800000n, null, '0.32'],
  ];
  // Sum exact products, round once (as the rules say: one rounding per tax).
  let thousandths = 0n;
  for (const [lo, hi, rate] of brackets) {
    const part = max(min(taxable, hi ?? taxable) - lo, 0n);
    thousandths += part * fixed(rate, 5);
  }
  return div(thousandths, 100000n);
}

function days(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000) + 1;
}
function addDays(iso: string, n: number): string {
  return new Date(Date.parse(`${iso}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}
/** The Sunday ending the Monday–Sunday week of iso. */
function sunday(iso: string): string {
  const dow = new Date(`${iso}T00:00:00Z`).getUTCDay(); // 0 = Sunday
  return addDays(iso, (7 - dow) % 7);
}

/** One month's payroll; ytd (by employee) is read and advanced. */
export function payMonth(
  period: string,
  employees: readonly ModelEmployee[],
  timesheets: readonly { no: string; date: string; hours: string }[],
  deductions: readonly ModelDeduction[],
  ytd: Map<string, ModelYtd>,
): ModelSlip[] {
  const start = `${period}-01`;
  const y = Number(period.slice(0, 4));
  const m = Number(period.slice(5, 7));
  const end = new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10);
  const out: ModelSlip[] = [];
  for (const e of employees) {
    let gross = 0n;
    let regular = 0n;
    let overtime = 0n;
    if (e.hourly) {
      const weeks = new Map<string, bigint>();
      for (const t of timesheets) {
        if (t.no !== e.no) continue;
        const week = sunday(t.date);
        if (week < start || week > end) continue;
        weeks.set(week, (weeks.get(week) ?? 0n) + fixed(t.hours, 2));
      }
      if (weeks.size === 0) continue;
      for (const h of weeks.values()) {
        regular += min(h, 4000n);
        overtime += max(h - 4000n, 0n);
      }
      const rate = fixed(e.hourly, 4);
      gross = div(regular * rate, 10000n) + div(overtime * rate * 3n, 20000n);
    } else {
      if (e.hire > end || (e.term && e.term < start)) continue;
      const from = e.hire > start ? e.hire : start;
      const to = e.term && e.term < end ? e.term : end;
      const annual = fixed(e.salary!, 2);
      gross = div(annual * BigInt(days(from, to)), 12n * BigInt(days(start, end)));
    }
    const ded: Record<string, string> = {};
    let preTax = 0n;
    let s125 = 0n;
    let totalDed = 0n;
    for (const d of deductions) {
      if (d.no !== e.no) continue;
      const amount = d.amount ? fixed(d.amount, 2) : div(gross * fixed(d.percent!, 4), 1000000n);
      if (amount === 0n) continue;
      ded[d.code] = money(amount);
      totalDed += amount;
      if (PRE_TAX.has(d.code)) preTax += amount;
      if (SECTION_125.has(d.code)) s125 += amount;
    }
    const taxable = max(gross - preTax, 0n);
    const fica = max(gross - s125, 0n);
    const prior = ytd.get(e.no) ?? { gross: 0n, taxable: 0n, fica: 0n };
    const taxes = {
      INCOME: incomeTax(taxable),
      SOCSEC: pct(slice(prior.fica, fica, 0n, 18450000n), '0.062'),
      MEDICARE: pct(fica, '0.0145'),
      ADDMED: pct(slice(prior.fica, fica, 20000000n, null), '0.009'),
    };
    const employer = {
      ER_SOCSEC: pct(slice(prior.fica, fica, 0n, 18450000n), '0.062'),
      ER_MEDICARE: pct(fica, '0.0145'),
      FUTA: pct(slice(prior.fica, fica, 0n, 700000n), '0.006'),
      SUTA: pct(slice(prior.fica, fica, 0n, 900000n), '0.027'),
    };
    const totalTaxes = Object.values(taxes).reduce((a, b) => a + b, 0n);
    const totalEmployer = Object.values(employer).reduce((a, b) => a + b, 0n);
    ytd.set(e.no, { gross: prior.gross + gross, taxable: prior.taxable + taxable, fica: prior.fica + fica });
    const str = (o: Record<string, Cents>) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, money(v)]));
    out.push({
      no: e.no,
      regularHours: money(regular),
      overtimeHours: money(overtime),
      gross: money(gross),
      taxable: money(taxable),
      fica: money(fica),
      taxes: str(taxes),
      employer: str(employer),
      deductions: ded,
      totalTaxes: money(totalTaxes),
      totalEmployer: money(totalEmployer),
      net: money(gross - totalTaxes - totalDed),
    });
  }
  return out.sort((a, b) => a.no.localeCompare(b.no));
}

/** Opening YTD from strings. */
export function ytdOf(gross: string, taxable: string, fica: string): ModelYtd {
  return { gross: fixed(gross, 2), taxable: fixed(taxable, 2), fica: fixed(fica, 2) };
}
