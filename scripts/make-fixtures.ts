/**
 * Writes the company fixtures: employees, a month of timesheets, deductions, items, customers.
 *
 *   npx tsx scripts/make-fixtures.ts [outDir]        (default fixtures/company)
 *
 * Deterministic: a seeded PRNG and a fixed clock while the XLSX is zipped, so running it again
 * rewrites identical bytes (test/erp-fixtures.test.ts checks the committed files against it).
 * What each file holds, and its deliberate oddities: fixtures/company/README.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'csv-stringify/sync';
import ExcelJS from 'exceljs';

/** The payroll month the timesheets cover. */
export const FIXTURE_PERIOD = '2026-11';
/** The one timesheet row left unapproved in timesheets-2026-11-unapproved.csv. */
export const UNAPPROVED_ROW = { employee_no: 'E0023', work_date: '2026-11-10' } as const;
/** Thanksgiving: nobody works, so no timesheet rows. */
const HOLIDAY = '2026-11-26';
/** Zip entries and workbook properties are stamped with this time. */
const FIXED_CLOCK = '2026-11-01T00:00:00Z';

/** mulberry32: tiny, fast and good enough for fixtures; the same seed gives the same data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
const pick = <T>(rand: Rand, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const between = (rand: Rand, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const money = (n: number): string => n.toFixed(2);

/** Federal Reserve routing symbols a US bank routing number starts with (00 is the US government). */
// prettier-ignore
const FED_PREFIXES = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
  61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 80,
];

/**
 * A nine-digit routing number with a valid Federal Reserve prefix and ABA check digit (3·7·1
 * weights). The random draws are the same as before the prefix rule, so the other data stay put.
 */
function abaRouting(rand: Rand): string {
  const d = Array.from({ length: 8 }, () => between(rand, 0, 9));
  const prefix = FED_PREFIXES[(d[0]! * 10 + d[1]!) % FED_PREFIXES.length]!;
  d[0] = Math.floor(prefix / 10);
  d[1] = prefix % 10;
  const sum = 3 * (d[0]! + d[3]! + d[6]!) + 7 * (d[1]! + d[4]! + d[7]!) + (d[2]! + d[5]!);
  return d.join('') + String((10 - (sum % 10)) % 10);
}

function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function addDays(iso: string, days: number): string {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return isoDate(d);
}

/** 1 = Monday … 7 = Sunday. */
function isoWeekday(iso: string): number {
  const day = new Date(`${iso}T00:00:00Z`).getUTCDay();
  return day === 0 ? 7 : day;
}

// prettier-ignore
const FIRST_NAMES = [
  'Olivia', 'Liam', 'Emma', 'Noah', 'Ava', 'Elijah', 'Sophia', 'Mateo', 'Isabella', 'Lucas', 'Mia', 'Levi',
  'Amelia', 'Ezra', 'Harper', 'Asher', 'Evelyn', 'James', 'Luna', 'Leo', 'Camila', 'Aiden', 'Gianna',
  'Kai', 'Aria', 'Jack', 'Ella', 'Hudson', 'Nova', 'Wyatt', 'Zoé', 'Malik', 'Priya', 'Chen', 'Fatima',
  'Tomás', 'Ingrid', 'Kwame', 'Yuki', 'Dmitri',
] as const;
// prettier-ignore
const LAST_NAMES = [
  'Garcia', 'Smith', 'Johnson', 'Nguyen', 'Williams', 'Brown', 'Jones', 'Miller', 'Davis', 'Rodriguez',
  'Martinez', 'Hernandez', 'Lopez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
  "O'Brien", 'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sánchez', 'Clark', 'Ramirez', 'Lewis',
  'Kowalski', 'Okafor', 'Haddad', 'Yamamoto', 'Novak', 'Schmidt', 'Rossi', 'Dubois', 'Petrov', 'Kim',
] as const;

export interface FixtureEmployee {
  employee_no: string;
  first_name: string;
  last_name: string;
  email: string;
  hire_date: string;
  pay_type: 'hourly' | 'salaried';
  hourly_rate: number | null;
  annual_salary: number | null;
  department: string;
  bank_routing: string | null;
  bank_account: string | null;
}

/** Salaried staff; E0004–E0006 approve the hourly departments' timesheets. */
const SALARIED: ReadonlyArray<{ department: string; salary: number }> = [
  { department: 'Finance', salary: 118000 },
  { department: 'IT', salary: 96500 },
  { department: 'HR', salary: 74250 },
  { department: 'Sales', salary: 88000 },
  { department: 'Production', salary: 102000 },
  { department: 'Operations', salary: 81500 },
];
// prettier-ignore
const HOURLY_DEPARTMENTS = [
  'Warehouse', 'Warehouse', 'Shipping', 'Production', 'Production', 'Maintenance', 'Customer Service',
];
const APPROVER: Readonly<Record<string, string>> = {
  Warehouse: 'E0006',
  Shipping: 'E0006',
  Production: 'E0005',
  Maintenance: 'E0005',
  'Customer Service': 'E0004',
};
const EMPLOYEE_COUNT = 60;
/** Hired mid-month: timesheets from the hire date only. */
const MID_MONTH_HIRE = { employee_no: 'E0058', hire_date: '2026-11-16' };
/** Hired after the month: no timesheets, and not "missing" either. */
const FUTURE_HIRE = { employee_no: 'E0059', hire_date: '2026-12-01' };
/** Paid by check: no bank details. */
const NO_BANK = new Set(['E0017', 'E0042']);

export function makeEmployees(): FixtureEmployee[] {
  const rand = prng(6001);
  const out: FixtureEmployee[] = [];
  const emails = new Set<string>();
  for (let i = 1; i <= EMPLOYEE_COUNT; i++) {
    const employee_no = `E${String(i).padStart(4, '0')}`;
    const first_name = FIRST_NAMES[(i * 7) % FIRST_NAMES.length]!;
    const last_name = LAST_NAMES[(i * 11 + 3) % LAST_NAMES.length]!;
    const local = `${first_name}.${last_name}`
      .normalize('NFD')
      .replace(/[^A-Za-z.]/g, '')
      .toLowerCase();
    let email = `${local}@example.com`;
    if (emails.has(email)) email = `${local}.${employee_no.toLowerCase()}@example.com`;
    emails.add(email);
    const salaried = SALARIED[i - 1];
    let hire_date = isoDate(new Date(Date.UTC(2014, 0, 1) + Math.floor(rand() * 4640) * 86_400_000));
    if (employee_no === MID_MONTH_HIRE.employee_no) hire_date = MID_MONTH_HIRE.hire_date;
    if (employee_no === FUTURE_HIRE.employee_no) hire_date = FUTURE_HIRE.hire_date;
    const bank = !NO_BANK.has(employee_no);
    const routing = abaRouting(rand);
    const account = String(between(rand, 10_000_000, 999_999_999_999));
    out.push({
      employee_no,
      first_name,
      last_name,
      email,
      hire_date,
      pay_type: salaried ? 'salaried' : 'hourly',
      hourly_rate: salaried ? null : between(rand, 64, 136) / 4,
      annual_salary: salaried ? salaried.salary : null,
      department: salaried ? salaried.department : pick(rand, HOURLY_DEPARTMENTS),
      bank_routing: bank ? routing : null,
      bank_account: bank ? account : null,
    });
  }
  return out;
}

export interface FixtureTimesheet {
  employee_no: string;
  work_date: string;
  hours: string;
  approved_by: string;
  approved_at: string;
}

/**
 * November 2026 for every hourly employee hired by then: weekdays at about 8 hours, no rows on
 * Thanksgiving or on a few vacation days; warehouse and shipping work 10-hour days and a Saturday
 * in the peak week of 16–21 November, part of production works 9-hour days 2–6 November, and a few
 * warehouse staff work Sunday 1 November (an ISO week that began in October). Approved on the
 * Monday after each week.
 */
export function makeTimesheets(employees: readonly FixtureEmployee[]): FixtureTimesheet[] {
  const rand = prng(6002);
  const out: FixtureTimesheet[] = [];
  const first = `${FIXTURE_PERIOD}-01`;
  const days = Array.from({ length: 30 }, (_, i) => addDays(first, i));
  for (const e of employees) {
    if (e.pay_type !== 'hourly' || e.hire_date > days[days.length - 1]!) continue;
    const peak = (e.department === 'Warehouse' || e.department === 'Shipping') && rand() < 0.7;
    const earlyPush = e.department === 'Production' && rand() < 0.5;
    const sundayShift = e.department === 'Warehouse' && rand() < 0.3;
    const vacationWeek = rand() < 0.2 ? between(rand, 0, 3) : -1;
    for (const day of days) {
      if (day < e.hire_date || day === HOLIDAY) continue;
      const weekday = isoWeekday(day);
      const weekOfMonth = Math.floor((Number(day.slice(8)) + 5) / 7); // 0 = 1 Nov, 1 = 2–8 Nov, …
      let hours: number | null = null;
      if (weekday <= 5) {
        hours = pick(rand, [8, 8, 8, 8, 8, 7.5, 8.5]);
        if (peak && day >= '2026-11-16' && day <= '2026-11-20') hours = 10;
        if (earlyPush && day >= '2026-11-02' && day <= '2026-11-06') hours = 9;
        if (weekOfMonth - 1 === vacationWeek && weekday >= 4) hours = null;
      } else if (weekday === 6 && peak && day === '2026-11-21') {
        hours = 6;
      } else if (weekday === 7 && sundayShift && day === first) {
        hours = 4;
      }
      if (hours === null) continue;
      // Approved the Monday after the week (the week of 30 November on 1 December).
      const approvedOn = day === '2026-11-30' ? '2026-12-01' : addDays(day, 8 - weekday);
      out.push({
        employee_no: e.employee_no,
        work_date: day,
        hours: money(hours),
        approved_by: APPROVER[e.department] ?? 'E0006',
        approved_at: `${approvedOn}T15:00:00Z`,
      });
    }
  }
  return out;
}

export interface FixtureDeduction {
  employee_no: string;
  deduction_code: string;
  effective_from: string;
  effective_to: string;
  amount: string;
  percent: string;
}

/**
 * Standing deductions: 401k percentages, health premiums, union dues for production. Two
 * deliberate history cases: E0010's health plan ended 31 October (does not apply in November) and
 * E0012 raised the 401k rate from 4% to 6% on 1 November (6% applies).
 */
export function makeDeductions(employees: readonly FixtureEmployee[]): FixtureDeduction[] {
  const rand = prng(6003);
  const out: FixtureDeduction[] = [];
  const row = (
    employee_no: string,
    code: string,
    from: string,
    to: string,
    amount: string,
    percent: string,
  ): void => {
    out.push({ employee_no, deduction_code: code, effective_from: from, effective_to: to, amount, percent });
  };
  for (const e of employees) {
    if (e.hire_date > `${FIXTURE_PERIOD}-01`) continue; // new hires enrol later
    const from = e.hire_date > '2026-01-01' ? e.hire_date : '2026-01-01';
    if (e.employee_no === 'E0012') {
      row(e.employee_no, 'RET401K', from, '', '', '4.0000');
      row(e.employee_no, 'RET401K', '2026-11-01', '', '', '6.0000');
    } else if (e.pay_type === 'salaried' || rand() < 0.4) {
      row(e.employee_no, 'RET401K', from, '', '', pick(rand, ['3.0000', '4.0000', '5.0000', '6.0000']));
    }
    if (e.employee_no === 'E0010') {
      row(e.employee_no, 'HEALTH', from, '2026-10-31', '145.00', '');
    } else if (e.pay_type === 'salaried' || rand() < 0.5) {
      row(e.employee_no, 'HEALTH', from, '', pick(rand, ['85.00', '145.00', '210.00']), '');
    }
    if (e.department === 'Production' && e.pay_type === 'hourly')
      row(e.employee_no, 'UNION', from, '', '32.50', '');
  }
  return out;
}

const FIXTURE_YEAR = FIXTURE_PERIOD.slice(0, 4);
const OPENING_YTD_COLUMNS = ['employee_no', 'tax_year', 'gross', 'taxable', 'fica_wages'] as const;

/** One employee's wages paid by the previous payroll system in the go-live year. */
export interface FixtureOpeningYtd {
  employee_no: string;
  tax_year: string;
  gross: string;
  taxable: string;
  fica_wages: string;
}

/**
 * The company goes live with the November payroll: January–October of the year were paid by the
 * previous system. Its year-to-date wages per employee employed then: a month's salary (hourly: 170 h
 * at the rate) per month from the hire, less the standing 401k (pre-tax) and health premiums (pre-tax
 * and Section 125) of those months. Cents are computed in integers.
 */
export function makeOpeningYtd(employees: readonly FixtureEmployee[]): FixtureOpeningYtd[] {
  const deductions = makeDeductions(employees);
  const out: FixtureOpeningYtd[] = [];
  for (const e of employees) {
    if (e.hire_date >= `${FIXTURE_PERIOD}-01`) continue;
    let gross = 0;
    let retirement = 0;
    let health = 0;
    for (let m = 1; m <= 10; m++) {
      const month = `${FIXTURE_YEAR}-${String(m).padStart(2, '0')}`;
      if (e.hire_date > `${month}-31`) continue;
      const pay =
        e.pay_type === 'salaried'
          ? Math.round((e.annual_salary! * 100) / 12)
          : Math.round(e.hourly_rate! * 100 * 170);
      gross += pay;
      const active = (code: string) =>
        deductions
          .filter(
            (d) =>
              d.employee_no === e.employee_no &&
              d.deduction_code === code &&
              d.effective_from <= `${month}-28` &&
              (d.effective_to === '' || d.effective_to >= `${month}-28`),
          )
          .sort((a, b) => b.effective_from.localeCompare(a.effective_from))[0];
      const r = active('RET401K');
      if (r) retirement += Math.round((pay * Number(r.percent)) / 100);
      const h = active('HEALTH');
      if (h) health += Math.round(Number(h.amount) * 100);
    }
    if (gross === 0) continue;
    const cents = (c: number) => (c / 100).toFixed(2);
    out.push({
      employee_no: e.employee_no,
      tax_year: FIXTURE_YEAR,
      gross: cents(gross),
      taxable: cents(gross - retirement - health),
      fica_wages: cents(gross - health),
    });
  }
  return out;
}

export interface FixtureItem {
  sku: string;
  description: string;
  uom: string;
  list_price: string;
  category: string;
}

type ItemTemplate = readonly [name: string, uom: string, low: number, high: number];

/**
 * Item catalogue by category; the first items of FASTENERS and STORAGE are the ones the EDI
 * fixtures order (fixtures/edi/partner-*-850.edi), at the prices they quote.
 */
const CATALOGUE: ReadonlyArray<{ category: string; first: number; templates: readonly ItemTemplate[] }> = [
  {
    category: 'FASTENERS',
    first: 1000,
    templates: [
      ['Hex bolt', 'BX', 6, 40],
      ['Carriage bolt', 'BX', 7, 45],
      ['Lag screw', 'BX', 5, 30],
      ['Machine screw', 'BX', 4, 25],
      ['Lock washer', 'BX', 2, 12],
      ['Wedge anchor', 'BX', 9, 60],
      ['Pop rivet', 'BX', 3, 18],
    ],
  },
  {
    category: 'STORAGE',
    first: 2000,
    templates: [
      ['Wire shelving unit', 'EA', 89, 320],
      ['Stacking tote', 'EA', 6, 28],
      ['Hand truck', 'EA', 79, 260],
      ['Drum dolly', 'EA', 45, 140],
      ['Bin rail', 'EA', 12, 48],
    ],
  },
  {
    category: 'ELECTRICAL',
    first: 3000,
    templates: [
      ['Extension cord', 'EA', 9, 65],
      ['LED bulb', 'PK', 6, 30],
      ['Cable ties', 'PK', 3, 22],
      ['Wire nuts', 'BX', 4, 18],
      ['Duplex outlet', 'EA', 2, 14],
      ['EMT conduit', 'EA', 5, 24],
    ],
  },
  {
    category: 'PLUMBING',
    first: 4000,
    templates: [
      ['PVC pipe', 'EA', 4, 35],
      ['Elbow fitting', 'EA', 1, 9],
      ['Ball valve', 'EA', 8, 55],
      ['Thread seal tape', 'RL', 1, 5],
      ['Hose clamp', 'PK', 3, 16],
    ],
  },
  {
    category: 'TOOLS',
    first: 5000,
    templates: [
      ['Claw hammer', 'EA', 12, 45],
      ['Screwdriver set', 'EA', 15, 80],
      ['Adjustable wrench', 'EA', 11, 48],
      ['Tape measure', 'EA', 8, 35],
      ['Utility knife', 'EA', 5, 22],
      ['Cordless drill', 'EA', 79, 249],
    ],
  },
  {
    category: 'SAFETY',
    first: 6000,
    templates: [
      ['Safety glasses', 'PR', 3, 19],
      ['Nitrile gloves', 'BX', 9, 28],
      ['Hard hat', 'EA', 12, 40],
      ['Ear plugs', 'BX', 14, 45],
      ['Hi-vis vest', 'EA', 6, 25],
      ['First aid kit', 'EA', 25, 120],
    ],
  },
  {
    category: 'PACKAGING',
    first: 7000,
    templates: [
      ['Corrugated box', 'BD', 18, 75],
      ['Stretch film', 'RL', 14, 40],
      ['Packing tape', 'CS', 28, 70],
      ['Bubble wrap', 'RL', 19, 60],
      ['Void fill pillows', 'CS', 30, 85],
    ],
  },
  {
    category: 'JANITORIAL',
    first: 8000,
    templates: [
      ['Trash bags', 'CS', 22, 65],
      ['Mop head', 'EA', 6, 20],
      ['Floor cleaner', 'GA', 9, 35],
      ['Paper towels', 'CS', 25, 70],
      ['Hand soap', 'EA', 4, 18],
    ],
  },
  {
    category: 'OFFICE',
    first: 9000,
    templates: [
      ['Copy paper', 'CS', 32, 60],
      ['Ballpoint pens', 'DZ', 4, 15],
      ['Sticky notes', 'PK', 5, 19],
      ['File folders', 'BX', 9, 28],
      ['Stapler', 'EA', 8, 30],
    ],
  },
];
// prettier-ignore
const SIZES = [
  '1/4" x 1"', '1/4" x 2"', '5/16" x 1-1/2"', '3/8" x 3"', '1/2" x 4"', 'M6 x 20', 'M8 x 30', '½" x 6"',
];
const FINISHES = ['zinc', 'stainless', 'galvanized', 'black oxide'];
const VARIANTS = ['small', 'medium', 'large', 'heavy duty', 'economy', 'premium', '2-pack', 'blue', 'yellow'];
const EDI_ITEMS: readonly FixtureItem[] = [
  { sku: 'SKU-1001', description: 'Steel bolt M8', uom: 'EA', list_price: '12.50', category: 'FASTENERS' },
  { sku: 'SKU-1002', description: 'Hex nut, zinc', uom: 'CA', list_price: '3.20', category: 'FASTENERS' },
  { sku: 'SKU-1003', description: 'Washer', uom: 'EA', list_price: '0.15', category: 'FASTENERS' },
  { sku: 'SKU-2001', description: 'Pallet rack', uom: 'PL', list_price: '450.00', category: 'STORAGE' },
  { sku: 'SKU-2002', description: 'Resin bin', uom: 'EA', list_price: '7.99', category: 'STORAGE' },
];
const ITEMS_PER_CATEGORY = 27;

export function makeItems(): FixtureItem[] {
  const rand = prng(6004);
  const out: FixtureItem[] = [];
  for (const { category, first, templates } of CATALOGUE) {
    const fixed = EDI_ITEMS.filter((i) => i.category === category);
    out.push(...fixed);
    for (let n = fixed.length + 1; n <= ITEMS_PER_CATEGORY; n++) {
      const [name, uom, low, high] = pick(rand, templates);
      const detail =
        category === 'FASTENERS'
          ? `${pick(rand, FINISHES)}, ${pick(rand, SIZES)}`
          : category === 'PLUMBING' && rand() < 0.5
            ? pick(rand, SIZES.slice(0, 5))
            : pick(rand, VARIANTS);
      const price = low + rand() * (high - low);
      out.push({
        sku: `SKU-${first + n}`,
        description: `${name}, ${detail}`,
        uom,
        list_price: money(Math.round(price * 100) / 100),
        category,
      });
    }
  }
  return out;
}

/** One SKU's opening stock at cost, counted on the eve of go-live. */
export interface FixtureStock {
  sku: string;
  location: string;
  moved_at: string;
  quantity: string;
  unit_cost: string;
  reason: string;
  source_ref: string;
}

/**
 * Opening stock of every item at the main warehouse, counted on 31 October and valued at cost
 * (55–70 % of the list price): the inventory a shipment takes its cost from.
 */
export function makeOpeningStock(items: readonly FixtureItem[]): FixtureStock[] {
  const rand = prng(6006);
  return items.map((i) => ({
    sku: i.sku,
    location: 'MAIN',
    moved_at: `${FIXTURE_PERIOD}-01`,
    quantity: `${between(rand, 20, 120) * 10}.000`,
    unit_cost: (Math.round(Number(i.list_price) * between(rand, 55, 70)) / 100).toFixed(4),
    reason: 'opening',
    source_ref: 'stock count 2026-10-31',
  }));
}

export interface FixtureCustomer {
  customer_no: string;
  name: string;
  x12_qualifier: string;
  x12_id: string;
  email: string;
  phone: string;
  address1: string;
  city: string;
  state: string;
  postal_code: string;
  country: string;
  payment_terms_days: string;
  credit_limit: string;
}

const CITIES: ReadonlyArray<readonly [string, string, string]> = [
  ['Springfield', 'IL', '62701'],
  ['Columbus', 'OH', '43215'],
  ['Austin', 'TX', '78701'],
  ['Denver', 'CO', '80202'],
  ['Portland', 'OR', '97204'],
  ['Raleigh', 'NC', '27601'],
  ['Madison', 'WI', '53703'],
  ['Boise', 'ID', '83702'],
];
// prettier-ignore
const COMPANY_WORDS = [
  'Harbor', 'Summit', 'Prairie', 'Keystone', 'Redwood', 'Beacon', 'Granite', 'Lakeside', 'Pioneer',
  'Cedar', 'Atlas',
];
const COMPANY_KINDS = ['Supply', 'Builders', 'Facilities', 'Hardware', 'Industrial', 'Logistics'];

/** Two EDI trading partners (their ISA ids as in fixtures/edi/partners/), then plain customers. */
export function makeCustomers(): FixtureCustomer[] {
  const rand = prng(6005);
  const out: FixtureCustomer[] = [
    {
      customer_no: 'PARTNERA',
      name: 'Acme Corp',
      x12_qualifier: 'ZZ',
      x12_id: 'ACMEBUY',
      email: 'edi@acme.example.com',
      phone: '217-555-0100',
      address1: '100 Warehouse Way',
      city: 'Springfield',
      state: 'IL',
      postal_code: '62701',
      country: 'US',
      payment_terms_days: '30',
      credit_limit: '250000.00',
    },
    {
      customer_no: 'PARTNERB',
      name: 'Globex Corporation',
      x12_qualifier: '01',
      x12_id: '987654321',
      email: 'ecommerce@globex.example.com',
      phone: '503-555-0199',
      address1: '1 Globex Plaza',
      city: 'Portland',
      state: 'OR',
      postal_code: '97204',
      country: 'US',
      payment_terms_days: '45',
      credit_limit: '400000.00',
    },
  ];
  for (let i = 1; i <= 22; i++) {
    const [city, state, zip] = pick(rand, CITIES);
    const name = `${COMPANY_WORDS[i % COMPANY_WORDS.length]} ${pick(rand, COMPANY_KINDS)}${i % 4 === 0 ? ', Inc.' : ' LLC'}`;
    out.push({
      customer_no: `C${1000 + i}`,
      name,
      x12_qualifier: '',
      x12_id: '',
      email: `ap@${name.split(' ')[0]!.toLowerCase()}${i}.example.com`,
      phone: `555-01${String(i).padStart(2, '0')}`,
      address1: `${between(rand, 10, 9999)} ${pick(rand, ['Main St', 'Industrial Pkwy', 'Commerce Dr', 'Depot Rd'])}`,
      city,
      state,
      postal_code: zip,
      country: 'US',
      payment_terms_days: pick(rand, ['15', '30', '30', '45', '60']),
      credit_limit: money(between(rand, 2, 40) * 2500),
    });
  }
  return out;
}

function csv<T extends object>(rows: readonly T[], columns: ReadonlyArray<keyof T & string>): string {
  return stringify(
    rows.map((r) => columns.map((c) => r[c])),
    { header: true, columns: [...columns], record_delimiter: 'unix' },
  );
}

/**
 * items-bad.csv: good rows around six bad ones, on the lines listed in fixtures/company/README.md.
 * The last line opens a quote that never closes.
 */
export function itemsBadCsv(items: readonly FixtureItem[]): string {
  const good = (i: number): string => {
    const it = items[i]!;
    return [it.sku, `"${it.description.replace(/"/g, '""')}"`, it.uom, it.list_price, it.category].join(',');
  };
  return [
    'sku,description,uom,list_price,category',
    good(10), // line 2
    'SKU-9901,"Hex bolt, zinc, 1/4"" x 2""",BX,12.5O,FASTENERS', // line 3: letter O in the price
    ',Mystery item without a sku,EA,4.99,TOOLS', // line 4: missing sku
    'SKU-9903,Flux capacitor,EA,1210.00,WIDGETS', // line 5: unknown category
    good(40), // line 6
    'SKU-9905,Wire shelving unit,EA,129.00,STORAGE,EXTRA', // line 7: six columns
    'SKU-9906,Copy paper,CS,"1,299.00",OFFICE', // line 8: thousands separator
    good(80), // line 9
    'SKU-9908,"Safety glasses, clear,PR,4.50,SAFETY', // line 10: quote never closed
    '',
  ].join('\n');
}

/** Runs fn with `new Date()` and `Date.now()` frozen, so JSZip stamps every zip entry alike. */
async function withFixedClock<T>(iso: string, fn: () => Promise<T>): Promise<T> {
  const RealDate = Date;
  const fixed = RealDate.parse(iso);
  class FixedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(fixed);
      else super(...(args as [number, number, number, number, number, number, number]));
    }
    static override now(): number {
      return fixed;
    }
  }
  globalThis.Date = FixedDate as DateConstructor;
  try {
    return await fn();
  } finally {
    globalThis.Date = RealDate;
  }
}

const EMPLOYEE_COLUMNS = [
  'employee_no',
  'first_name',
  'last_name',
  'email',
  'hire_date',
  'pay_type',
  'hourly_rate',
  'annual_salary',
  'department',
  'bank_routing',
  'bank_account',
] as const;

export async function employeesXlsx(employees: readonly FixtureEmployee[]): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  wb.creator = 'erp make-fixtures';
  wb.lastModifiedBy = 'erp make-fixtures';
  wb.created = new Date(FIXED_CLOCK);
  wb.modified = new Date(FIXED_CLOCK);
  const ws = wb.addWorksheet('Employees', { views: [{ state: 'frozen', ySplit: 1 }] });
  ws.columns = EMPLOYEE_COLUMNS.map((key) => ({
    header: key,
    key,
    width: key === 'email' ? 34 : 16,
    style:
      key === 'hire_date'
        ? { numFmt: 'yyyy-mm-dd' }
        : key === 'hourly_rate' || key === 'annual_salary'
          ? { numFmt: '#,##0.00' }
          : key === 'bank_routing' || key === 'bank_account'
            ? { numFmt: '@' }
            : {},
  }));
  ws.getRow(1).font = { bold: true };
  for (const e of employees) {
    ws.addRow({
      ...e,
      // A real date cell (midnight UTC, which is how Excel serial dates map back).
      hire_date: new Date(`${e.hire_date}T00:00:00Z`),
      hourly_rate: e.hourly_rate ?? undefined,
      annual_salary: e.annual_salary ?? undefined,
      bank_routing: e.bank_routing ?? undefined,
      bank_account: e.bank_account ?? undefined,
    });
  }
  const data = await withFixedClock(FIXED_CLOCK, () => wb.xlsx.writeBuffer());
  return Buffer.from(data as ArrayBuffer);
}

/** The files, by name, with their contents. */
export async function makeFixtureFiles(): Promise<Map<string, string | Buffer>> {
  const employees = makeEmployees();
  const timesheets = makeTimesheets(employees);
  const items = makeItems();
  const tsColumns = ['employee_no', 'work_date', 'hours', 'approved_by', 'approved_at'] as const;
  const unapproved = timesheets.map((t) =>
    t.employee_no === UNAPPROVED_ROW.employee_no && t.work_date === UNAPPROVED_ROW.work_date
      ? { ...t, approved_by: '', approved_at: '' }
      : t,
  );
  if (unapproved.every((t, i) => t === timesheets[i])) {
    throw new Error(
      `no timesheet row for ${UNAPPROVED_ROW.employee_no} ${UNAPPROVED_ROW.work_date} to leave unapproved`,
    );
  }
  const files = new Map<string, string | Buffer>();
  files.set('employees.xlsx', await employeesXlsx(employees));
  files.set(`timesheets-${FIXTURE_PERIOD}.csv`, csv(timesheets, tsColumns));
  files.set(`timesheets-${FIXTURE_PERIOD}-unapproved.csv`, csv(unapproved, tsColumns));
  files.set(
    'employee-deductions.csv',
    csv(makeDeductions(employees), [
      'employee_no',
      'deduction_code',
      'effective_from',
      'effective_to',
      'amount',
      'percent',
    ]),
  );
  files.set(`opening-ytd-${FIXTURE_YEAR}.csv`, csv(makeOpeningYtd(employees), OPENING_YTD_COLUMNS));
  files.set(
    'inventory-opening.csv',
    csv(makeOpeningStock(items), [
      'sku',
      'location',
      'moved_at',
      'quantity',
      'unit_cost',
      'reason',
      'source_ref',
    ]),
  );
  files.set('items.csv', csv(items, ['sku', 'description', 'uom', 'list_price', 'category']));
  files.set('items-bad.csv', itemsBadCsv(items));
  files.set(
    'customers.csv',
    csv(makeCustomers(), [
      'customer_no',
      'name',
      'x12_qualifier',
      'x12_id',
      'email',
      'phone',
      'address1',
      'city',
      'state',
      'postal_code',
      'country',
      'payment_terms_days',
      'credit_limit',
    ]),
  );
  return files;
}

export async function writeFixtures(outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const [name, content] of await makeFixtureFiles()) {
    const file = path.join(outDir, name);
    await writeFile(file, content);
    written.push(file);
  }
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const outDir = process.argv[2] ?? path.join('fixtures', 'company');
  for (const file of await writeFixtures(outDir)) console.log(`wrote ${file}`);
}
