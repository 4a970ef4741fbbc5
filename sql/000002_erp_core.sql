-- The ERP core data model, one schema per area:
--   gl       chart of accounts, fiscal periods, journal entries and lines (balanced, closed periods locked)
--   hr       employees and their pay rates (effective-dated)
--   payroll  payroll periods, timesheets, deduction and tax tables, runs, payslips and their lines
--   sales    customers, items, sales orders, shipments, invoices, customer payments
--   purch    vendors, purchase orders
--   inv      stock locations, stock movements, on-hand
-- Payroll logic is in 000003_payroll.sql, reports in 000004_erp_views.sql; docs/erp-schema.md describes it all.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
--
-- Conventions
--   Money is numeric(14,2); unit prices and costs numeric(14,4); quantities numeric(14,3). Never float.
--   Files carry natural keys (employee_no, sku, customer_no, vendor_no, account code, period), so the
--   master tables are keyed by them and imports can COPY / upsert straight in; documents (orders,
--   invoices, journal entries, payroll runs) have identity ids plus a human number where one is printed.
--   A business rule that refuses something raises SQLSTATE 'ERP01' with a message for the operator:
--   not retryable, show the message, no stack trace.

CREATE SCHEMA gl;
CREATE SCHEMA hr;
CREATE SCHEMA payroll;
CREATE SCHEMA sales;
CREATE SCHEMA purch;
CREATE SCHEMA inv;

-- Shared by the master tables that imports upsert into.
CREATE FUNCTION public.erp_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

-------------------------------------------------------------------------------------------------------
-- gl: general ledger
-------------------------------------------------------------------------------------------------------

-- First day of a 'YYYY-MM' period; refuses anything else. Immutable, so generated columns can use it.
CREATE FUNCTION gl.period_start(p_period text) RETURNS date
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
  IF p_period !~ '^[0-9]{4}-(0[1-9]|1[0-2])$' THEN
    RAISE EXCEPTION 'a period is written YYYY-MM (for example 2026-11), not ''%''', p_period
      USING ERRCODE = 'ERP01';
  END IF;
  RETURN make_date(substr(p_period, 1, 4)::int, substr(p_period, 6, 2)::int, 1);
END
$$;

-- Last day of a 'YYYY-MM' period.
CREATE FUNCTION gl.period_end(p_period text) RETURNS date
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT (gl.period_start(p_period) + interval '1 month' - interval '1 day')::date
$$;

-- The 'YYYY-MM' period a date falls in (to_char is only stable; this is immutable).
CREATE FUNCTION gl.period_of(p_date date) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT lpad(extract(year FROM p_date)::int::text, 4, '0') || '-' || lpad(extract(month FROM p_date)::int::text, 2, '0')
$$;

CREATE TABLE gl.accounts (
  code           text PRIMARY KEY CHECK (code ~ '^[0-9]{4,10}$'),
  name           text NOT NULL CHECK (name <> ''),
  type           text NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),
  normal_balance text GENERATED ALWAYS AS (CASE WHEN type IN ('asset', 'expense') THEN 'debit' ELSE 'credit' END) STORED,
  active         boolean NOT NULL DEFAULT true
);

CREATE TABLE gl.fiscal_periods (
  period    text PRIMARY KEY CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
  starts_on date GENERATED ALWAYS AS (gl.period_start(period)) STORED,
  ends_on   date GENERATED ALWAYS AS (gl.period_end(period)) STORED,
  status    text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  opened_at timestamptz NOT NULL DEFAULT now(),
  closed_at timestamptz,
  closed_by text,
  CONSTRAINT fiscal_periods_closed_at CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

CREATE TABLE gl.journal_entries (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  entry_date  date NOT NULL,
  period      text GENERATED ALWAYS AS (gl.period_of(entry_date)) STORED NOT NULL
              REFERENCES gl.fiscal_periods (period),
  description text NOT NULL CHECK (description <> ''),
  -- What produced the entry ('manual', 'payroll', 'sales', …) and its document there (run id,
  -- invoice no): a source document is posted at most once.
  source      text NOT NULL DEFAULT 'manual',
  source_ref  text,
  created_by  text NOT NULL DEFAULT session_user,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT journal_entries_source_once UNIQUE (source, source_ref)
);
CREATE INDEX journal_entries_period ON gl.journal_entries (period);

CREATE TABLE gl.journal_lines (
  entry_id     bigint NOT NULL REFERENCES gl.journal_entries (id) ON DELETE CASCADE,
  line_no      int NOT NULL CHECK (line_no > 0),
  account_code text NOT NULL REFERENCES gl.accounts (code),
  debit        numeric(14,2) NOT NULL DEFAULT 0 CHECK (debit >= 0),
  credit       numeric(14,2) NOT NULL DEFAULT 0 CHECK (credit >= 0),
  memo         text,
  PRIMARY KEY (entry_id, line_no),
  CONSTRAINT journal_lines_one_side CHECK ((debit > 0) <> (credit > 0))
);
CREATE INDEX journal_lines_account ON gl.journal_lines (account_code);

-- Refuses to touch a period that is closed or does not exist. FOR SHARE makes a concurrent
-- gl.close_period wait for this transaction, so nothing lands in a period after it closed.
CREATE FUNCTION gl.assert_period_open(p_period text, p_what text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  SELECT fp.status INTO v_status FROM gl.fiscal_periods fp WHERE fp.period = p_period FOR SHARE;
  IF v_status IS NULL THEN
    RAISE EXCEPTION 'fiscal period % does not exist: % refused; open it first (sql/jobs/open_period.sql)', p_period, p_what
      USING ERRCODE = 'ERP01';
  ELSIF v_status = 'closed' THEN
    RAISE EXCEPTION 'fiscal period % is closed: % refused; post into an open period instead', p_period, p_what
      USING ERRCODE = 'ERP01';
  END IF;
END
$$;

CREATE FUNCTION gl.guard_entry_period() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- In a BEFORE trigger the generated column NEW.period is not computed yet: derive it.
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM gl.assert_period_open(OLD.period, format('%s journal entry %s', CASE TG_OP WHEN 'UPDATE' THEN 'changing' ELSE 'deleting' END, OLD.id));
  END IF;
  IF TG_OP = 'INSERT' THEN
    PERFORM gl.assert_period_open(gl.period_of(NEW.entry_date), format('posting journal entry ''%s''', NEW.description));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM gl.assert_period_open(gl.period_of(NEW.entry_date), format('moving journal entry %s', NEW.id));
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER journal_entries_period_open BEFORE INSERT OR UPDATE OR DELETE ON gl.journal_entries
  FOR EACH ROW EXECUTE FUNCTION gl.guard_entry_period();

CREATE FUNCTION gl.guard_line_period() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_period text;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    -- Not found when the entry itself is being deleted (cascade); its own trigger checked the period.
    SELECT je.period INTO v_period FROM gl.journal_entries je WHERE je.id = OLD.entry_id;
    IF v_period IS NOT NULL THEN
      PERFORM gl.assert_period_open(v_period, format('changing journal entry %s', OLD.entry_id));
    END IF;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    SELECT je.period INTO v_period FROM gl.journal_entries je WHERE je.id = NEW.entry_id;
    IF v_period IS NOT NULL THEN
      PERFORM gl.assert_period_open(v_period, format('posting to journal entry %s', NEW.entry_id));
    END IF;
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER journal_lines_period_open BEFORE INSERT OR UPDATE OR DELETE ON gl.journal_lines
  FOR EACH ROW EXECUTE FUNCTION gl.guard_line_period();

-- Raises unless entry p_entry_id has lines and its debits equal its credits. An entry that no
-- longer exists passes (it was deleted with its lines).
CREATE FUNCTION gl.assert_entry_balanced(p_entry_id bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_debit  numeric;
  v_credit numeric;
  v_lines  bigint;
BEGIN
  PERFORM 1 FROM gl.journal_entries je WHERE je.id = p_entry_id;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT count(*), coalesce(sum(jl.debit), 0), coalesce(sum(jl.credit), 0)
    INTO v_lines, v_debit, v_credit
    FROM gl.journal_lines jl WHERE jl.entry_id = p_entry_id;
  IF v_lines = 0 THEN
    RAISE EXCEPTION 'journal entry % has no lines; an entry needs at least one debit and one credit', p_entry_id
      USING ERRCODE = 'ERP01';
  END IF;
  IF v_debit <> v_credit THEN
    RAISE EXCEPTION 'journal entry % does not balance: debits %, credits % (difference %)',
      p_entry_id, v_debit, v_credit, v_debit - v_credit
      USING ERRCODE = 'ERP01';
  END IF;
END
$$;

CREATE FUNCTION gl.check_entry_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'journal_entries' THEN
    PERFORM gl.assert_entry_balanced(NEW.id);
    RETURN NULL;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM gl.assert_entry_balanced(NEW.entry_id);
  END IF;
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.entry_id <> NEW.entry_id) THEN
    PERFORM gl.assert_entry_balanced(OLD.entry_id);
  END IF;
  RETURN NULL;
END
$$;
-- Checked at commit (deferred), so the lines of an entry can be inserted one by one.
CREATE CONSTRAINT TRIGGER journal_entry_balanced AFTER INSERT OR UPDATE OR DELETE ON gl.journal_lines
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gl.check_entry_balanced();
CREATE CONSTRAINT TRIGGER journal_entry_has_lines AFTER INSERT ON gl.journal_entries
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION gl.check_entry_balanced();

-- Posts one journal entry and checks it balances now (the constraint trigger checks again at commit).
-- p_lines: [{"account": "6000", "debit": 100.00, "credit": 0, "memo": "…"}, …]; line numbers follow
-- the array order. Returns the entry id.
CREATE FUNCTION gl.post_entry(
  p_entry_date  date,
  p_description text,
  p_lines       jsonb,
  p_source      text DEFAULT 'manual',
  p_source_ref  text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  IF jsonb_typeof(p_lines) IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'journal entry lines must be a JSON array of {account, debit, credit, memo}'
      USING ERRCODE = 'ERP01';
  END IF;
  INSERT INTO gl.journal_entries (entry_date, description, source, source_ref)
    VALUES (p_entry_date, p_description, p_source, p_source_ref)
    RETURNING id INTO v_id;
  INSERT INTO gl.journal_lines (entry_id, line_no, account_code, debit, credit, memo)
    SELECT v_id, l.n, l.account, coalesce(l.debit, 0), coalesce(l.credit, 0), l.memo
      FROM ROWS FROM (jsonb_to_recordset(p_lines) AS (account text, debit numeric, credit numeric, memo text))
           WITH ORDINALITY AS l(account, debit, credit, memo, n);
  PERFORM gl.assert_entry_balanced(v_id);
  RETURN v_id;
END
$$;

-- Creates the fiscal period (open) if it does not exist. Returns 'opened' or 'already open';
-- refuses a closed period (reopening is not a job: it needs an accountant's decision).
CREATE FUNCTION gl.open_period(p_period text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  PERFORM gl.period_start(p_period);
  INSERT INTO gl.fiscal_periods (period) VALUES (p_period) ON CONFLICT (period) DO NOTHING;
  IF FOUND THEN
    RETURN 'opened';
  END IF;
  SELECT fp.status INTO v_status FROM gl.fiscal_periods fp WHERE fp.period = p_period;
  IF v_status = 'closed' THEN
    RAISE EXCEPTION 'fiscal period % is closed; it cannot be opened again by a job', p_period
      USING ERRCODE = 'ERP01';
  END IF;
  RETURN 'already open';
END
$$;

-- Closes a fiscal period: it refuses postings from then on. Returns 'closed' or 'already closed'.
CREATE FUNCTION gl.close_period(p_period text, p_closed_by text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  SELECT fp.status INTO v_status FROM gl.fiscal_periods fp WHERE fp.period = p_period FOR UPDATE;
  IF v_status IS NULL THEN
    RAISE EXCEPTION 'fiscal period % does not exist', p_period USING ERRCODE = 'ERP01';
  ELSIF v_status = 'closed' THEN
    RETURN 'already closed';
  END IF;
  UPDATE gl.fiscal_periods fp
     SET status = 'closed', closed_at = now(), closed_by = coalesce(nullif(p_closed_by, ''), session_user)
   WHERE fp.period = p_period;
  RETURN 'closed';
END
$$;

INSERT INTO gl.accounts (code, name, type) VALUES
  ('1000', 'Cash - operating', 'asset'),
  ('1010', 'Cash - payroll', 'asset'),
  ('1200', 'Accounts receivable', 'asset'),
  ('1300', 'Inventory', 'asset'),
  ('1500', 'Equipment', 'asset'),
  ('2000', 'Accounts payable', 'liability'),
  ('2100', 'Net pay payable', 'liability'),
  ('2110', 'Income tax withheld', 'liability'),
  ('2120', 'Social security payable', 'liability'),
  ('2130', 'Medicare payable', 'liability'),
  ('2210', 'Retirement plan contributions payable', 'liability'),
  ('2220', 'Health insurance premiums payable', 'liability'),
  ('2230', 'Union dues payable', 'liability'),
  ('2300', 'Sales tax payable', 'liability'),
  ('3000', 'Share capital', 'equity'),
  ('3900', 'Retained earnings', 'equity'),
  ('4000', 'Sales revenue', 'revenue'),
  ('4900', 'Other income', 'revenue'),
  ('5000', 'Cost of goods sold', 'expense'),
  ('6000', 'Wages and salaries', 'expense'),
  ('6100', 'Employer payroll taxes', 'expense'),
  ('6200', 'Rent', 'expense'),
  ('6300', 'Utilities', 'expense'),
  ('6900', 'Other operating expenses', 'expense');

-------------------------------------------------------------------------------------------------------
-- hr: employees and pay rates
-------------------------------------------------------------------------------------------------------

-- An ABA routing number: nine digits, 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) divisible by 10.
CREATE FUNCTION hr.is_aba_routing(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE WHEN p ~ '^[0-9]{9}$' THEN
    (3 * (substr(p, 1, 1)::int + substr(p, 4, 1)::int + substr(p, 7, 1)::int)
   + 7 * (substr(p, 2, 1)::int + substr(p, 5, 1)::int + substr(p, 8, 1)::int)
   +     (substr(p, 3, 1)::int + substr(p, 6, 1)::int + substr(p, 9, 1)::int)) % 10 = 0
  ELSE false END
$$;

-- The employee master, as the HR export (fixtures/company/employees.xlsx) carries it. The rate columns
-- are the current rate; hr.pay_rates keeps their history and is what payroll reads.
CREATE TABLE hr.employees (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  employee_no      text NOT NULL UNIQUE CHECK (employee_no ~ '^[A-Z0-9][A-Z0-9_-]{0,19}$'),
  first_name       text NOT NULL CHECK (first_name <> ''),
  last_name        text NOT NULL CHECK (last_name <> ''),
  email            text CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
  hire_date        date NOT NULL,
  termination_date date,
  pay_type         text NOT NULL CHECK (pay_type IN ('hourly', 'salaried')),
  hourly_rate      numeric(10,4) CHECK (hourly_rate > 0),
  annual_salary    numeric(14,2) CHECK (annual_salary > 0),
  department       text NOT NULL CHECK (department <> ''),
  bank_routing     text CHECK (hr.is_aba_routing(bank_routing)),
  bank_account     text CHECK (bank_account ~ '^[0-9]{4,17}$'),
  active           boolean NOT NULL DEFAULT true,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT employees_rate_for_pay_type
    CHECK (CASE pay_type WHEN 'hourly' THEN hourly_rate IS NOT NULL ELSE annual_salary IS NOT NULL END),
  CONSTRAINT employees_bank_complete CHECK ((bank_routing IS NULL) = (bank_account IS NULL)),
  CONSTRAINT employees_terminated_after_hire CHECK (termination_date IS NULL OR termination_date >= hire_date)
);
CREATE INDEX employees_department ON hr.employees (department);
CREATE TRIGGER employees_updated_at BEFORE UPDATE ON hr.employees
  FOR EACH ROW EXECUTE FUNCTION public.erp_touch_updated_at();

-- Pay rate history. Payroll for a period uses the row in effect on the period's last day.
CREATE TABLE hr.pay_rates (
  employee_no    text NOT NULL REFERENCES hr.employees (employee_no) ON UPDATE CASCADE ON DELETE CASCADE,
  effective_from date NOT NULL,
  pay_type       text NOT NULL CHECK (pay_type IN ('hourly', 'salaried')),
  hourly_rate    numeric(10,4) CHECK (hourly_rate > 0),
  annual_salary  numeric(14,2) CHECK (annual_salary > 0),
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (employee_no, effective_from),
  CONSTRAINT pay_rates_rate_for_pay_type
    CHECK (CASE pay_type WHEN 'hourly' THEN hourly_rate IS NOT NULL ELSE annual_salary IS NOT NULL END)
);

-- Keeps hr.pay_rates in step with the employee master, so an employee import stays a one-table upsert:
-- a new employee's rate is effective from the hire date, a changed rate from today (or the hire date
-- if that is later). Insert into hr.pay_rates directly to date a change otherwise.
CREATE FUNCTION hr.record_pay_rate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND (NEW.pay_type, NEW.hourly_rate, NEW.annual_salary) IS NOT DISTINCT FROM (OLD.pay_type, OLD.hourly_rate, OLD.annual_salary)
  THEN
    RETURN NULL;
  END IF;
  INSERT INTO hr.pay_rates AS pr (employee_no, effective_from, pay_type, hourly_rate, annual_salary)
  VALUES (NEW.employee_no,
          CASE TG_OP WHEN 'INSERT' THEN NEW.hire_date ELSE greatest(current_date, NEW.hire_date) END,
          NEW.pay_type, NEW.hourly_rate, NEW.annual_salary)
  ON CONFLICT (employee_no, effective_from) DO UPDATE
    SET pay_type = EXCLUDED.pay_type, hourly_rate = EXCLUDED.hourly_rate,
        annual_salary = EXCLUDED.annual_salary, recorded_at = now();
  RETURN NULL;
END
$$;
CREATE TRIGGER employees_pay_rate AFTER INSERT OR UPDATE OF pay_type, hourly_rate, annual_salary ON hr.employees
  FOR EACH ROW EXECUTE FUNCTION hr.record_pay_rate();

-------------------------------------------------------------------------------------------------------
-- payroll: periods, timesheets, deduction and tax tables, runs, payslips
-------------------------------------------------------------------------------------------------------

-- Which accounts the payroll journal entry uses (one row). Tax and deduction liabilities are per
-- tax / deduction type, below.
CREATE TABLE payroll.settings (
  id                    boolean PRIMARY KEY DEFAULT true CHECK (id),
  wages_expense_account text NOT NULL REFERENCES gl.accounts (code),
  net_pay_account       text NOT NULL REFERENCES gl.accounts (code)
);
INSERT INTO payroll.settings (wages_expense_account, net_pay_account) VALUES ('6000', '2100');

-- A payroll period needs its fiscal period: the close posts into it.
CREATE TABLE payroll.periods (
  period    text PRIMARY KEY REFERENCES gl.fiscal_periods (period),
  starts_on date GENERATED ALWAYS AS (gl.period_start(period)) STORED,
  ends_on   date GENERATED ALWAYS AS (gl.period_end(period)) STORED,
  status    text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  opened_at timestamptz NOT NULL DEFAULT now(),
  closed_at timestamptz,
  closed_by text,
  CONSTRAINT periods_closed_at CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

-- One row per employee and day worked, as the timesheet CSV carries it. Approved when approved_by
-- is set; approved_at defaults to the load time then.
CREATE TABLE payroll.timesheets (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  employee_no text NOT NULL REFERENCES hr.employees (employee_no) ON UPDATE CASCADE,
  work_date   date NOT NULL,
  hours       numeric(5,2) NOT NULL CHECK (hours >= 0 AND hours <= 24),
  approved_by text,
  approved_at timestamptz,
  note        text,
  loaded_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT timesheets_one_per_day UNIQUE (employee_no, work_date),
  CONSTRAINT timesheets_approval CHECK (approved_at IS NULL OR approved_by IS NOT NULL)
);
CREATE INDEX timesheets_work_date ON payroll.timesheets (work_date);

-- Refuses a timesheet change in a closed payroll period. FOR SHARE on the period row makes a
-- timesheet load and a payroll close of the same period wait for each other.
CREATE FUNCTION payroll.assert_timesheet_period_open(p_employee_no text, p_work_date date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  SELECT p.status INTO v_status FROM payroll.periods p WHERE p.period = gl.period_of(p_work_date) FOR SHARE;
  IF v_status = 'closed' THEN
    RAISE EXCEPTION 'payroll period % is closed: the timesheet of % for % cannot be added, changed or deleted',
      gl.period_of(p_work_date), p_employee_no, p_work_date
      USING ERRCODE = 'ERP01';
  END IF;
END
$$;

-- Normalises the approval (an empty approved_by is no approval) and guards closed periods.
CREATE FUNCTION payroll.guard_timesheet() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM payroll.assert_timesheet_period_open(OLD.employee_no, OLD.work_date);
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  PERFORM payroll.assert_timesheet_period_open(NEW.employee_no, NEW.work_date);
  NEW.approved_by := nullif(btrim(NEW.approved_by), '');
  IF NEW.approved_by IS NULL THEN
    NEW.approved_at := NULL;
  ELSIF NEW.approved_at IS NULL THEN
    NEW.approved_at := now();
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER timesheets_guard BEFORE INSERT OR UPDATE OR DELETE ON payroll.timesheets
  FOR EACH ROW EXECUTE FUNCTION payroll.guard_timesheet();

CREATE TABLE payroll.deduction_types (
  code              text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_]{1,20}$'),
  name              text NOT NULL,
  -- A pre-tax deduction lowers the income-tax base (taxes with base 'taxable').
  pre_tax           boolean NOT NULL,
  liability_account text NOT NULL REFERENCES gl.accounts (code)
);
INSERT INTO payroll.deduction_types (code, name, pre_tax, liability_account) VALUES
  ('RET401K', 'Retirement plan (401k)', true, '2210'),
  ('HEALTH', 'Health insurance', true, '2220'),
  ('UNION', 'Union dues', false, '2230');

-- An employee's standing deductions: a fixed amount per month or a percent of gross pay. The row with
-- the latest effective_from on or before the period's last day applies, unless it ended before that day.
CREATE TABLE payroll.employee_deductions (
  employee_no    text NOT NULL REFERENCES hr.employees (employee_no) ON UPDATE CASCADE ON DELETE CASCADE,
  deduction_code text NOT NULL REFERENCES payroll.deduction_types (code),
  effective_from date NOT NULL,
  effective_to   date,
  amount         numeric(14,2) CHECK (amount > 0),
  percent        numeric(7,4) CHECK (percent > 0 AND percent <= 100),
  PRIMARY KEY (employee_no, deduction_code, effective_from),
  CONSTRAINT employee_deductions_amount_or_percent CHECK ((amount IS NULL) <> (percent IS NULL)),
  CONSTRAINT employee_deductions_dates CHECK (effective_to IS NULL OR effective_to >= effective_from)
);

-- Employee taxes withheld. base 'taxable' = gross − pre-tax deductions; 'gross' = gross pay. With an
-- annual_wage_cap, the base is limited so the calendar year's bases (completed runs) stay within the cap.
CREATE TABLE payroll.taxes (
  code              text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_]{1,20}$'),
  name              text NOT NULL,
  base              text NOT NULL CHECK (base IN ('gross', 'taxable')),
  annual_wage_cap   numeric(14,2) CHECK (annual_wage_cap > 0),
  liability_account text NOT NULL REFERENCES gl.accounts (code),
  active            boolean NOT NULL DEFAULT true
);

-- MONTHLY brackets, applied to the month's base: each bracket taxes the part of the base between its
-- lower_bound and the next bracket's lower_bound at its rate. A flat tax is one bracket from 0. The
-- set with the latest effective_from on or before the period's last day applies.
CREATE TABLE payroll.tax_brackets (
  tax_code       text NOT NULL REFERENCES payroll.taxes (code),
  effective_from date NOT NULL,
  lower_bound    numeric(14,2) NOT NULL CHECK (lower_bound >= 0),
  rate           numeric(7,5) NOT NULL CHECK (rate >= 0 AND rate < 1),
  PRIMARY KEY (tax_code, effective_from, lower_bound)
);

INSERT INTO payroll.taxes (code, name, base, annual_wage_cap, liability_account) VALUES
  ('INCOME', 'Income tax', 'taxable', NULL, '2110'),
  ('SOCSEC', 'Social security', 'gross', 184500.00, '2120'),
  ('MEDICARE', 'Medicare', 'gross', NULL, '2130');
INSERT INTO payroll.tax_brackets (tax_code, effective_from, lower_bound, rate) VALUES
  ('INCOME', '2026-01-01', 0.00, 0.00000),
  ('INCOME', '2026-01-01', 1000.00, 0.10000),
  ('INCOME', '2026-01-01', 4000.00, 0.22000),
  ('INCOME', '2026-01-01', 8000.00, 0.32000),
  ('SOCSEC', '2026-01-01', 0.00, 0.06200),
  ('MEDICARE', '2026-01-01', 0.00, 0.01450);

CREATE TABLE payroll.runs (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  period           text NOT NULL REFERENCES payroll.periods (period),
  status           text NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'completed', 'cancelled')),
  started_by       text NOT NULL DEFAULT session_user,
  started_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz,
  employee_count   int NOT NULL DEFAULT 0,
  total_gross      numeric(14,2) NOT NULL DEFAULT 0,
  total_taxes      numeric(14,2) NOT NULL DEFAULT 0,
  total_deductions numeric(14,2) NOT NULL DEFAULT 0,
  total_net        numeric(14,2) NOT NULL DEFAULT 0,
  journal_entry_id bigint UNIQUE REFERENCES gl.journal_entries (id),
  CONSTRAINT runs_totals CHECK (total_net = total_gross - total_taxes - total_deductions),
  CONSTRAINT runs_completed CHECK ((status = 'completed') = (completed_at IS NOT NULL AND journal_entry_id IS NOT NULL))
);
-- At most one live run per period: a second close can never duplicate a payroll.
CREATE UNIQUE INDEX runs_one_per_period ON payroll.runs (period) WHERE status <> 'cancelled';

CREATE TABLE payroll.payslips (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id         bigint NOT NULL REFERENCES payroll.runs (id),
  employee_no    text NOT NULL REFERENCES hr.employees (employee_no) ON UPDATE CASCADE,
  pay_type       text NOT NULL CHECK (pay_type IN ('hourly', 'salaried')),
  hourly_rate    numeric(10,4),
  annual_salary  numeric(14,2),
  regular_hours  numeric(7,2) NOT NULL DEFAULT 0,
  overtime_hours numeric(7,2) NOT NULL DEFAULT 0,
  regular_pay    numeric(14,2) NOT NULL DEFAULT 0,
  overtime_pay   numeric(14,2) NOT NULL DEFAULT 0,
  salary_pay     numeric(14,2) NOT NULL DEFAULT 0,
  gross          numeric(14,2) NOT NULL,
  -- gross − pre-tax deductions (never below 0): the base of taxes with base 'taxable'.
  taxable        numeric(14,2) NOT NULL,
  taxes          numeric(14,2) NOT NULL,
  deductions     numeric(14,2) NOT NULL,
  net            numeric(14,2) NOT NULL,
  -- Where the net pay went, as the employee master said at the close.
  bank_routing   text,
  bank_account   text,
  UNIQUE (run_id, employee_no),
  CONSTRAINT payslips_gross CHECK (gross = regular_pay + overtime_pay + salary_pay),
  CONSTRAINT payslips_net CHECK (net = gross - taxes - deductions),
  CONSTRAINT payslips_net_not_negative CHECK (net >= 0)
);
CREATE INDEX payslips_employee ON payroll.payslips (employee_no);

CREATE TABLE payroll.payslip_lines (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payslip_id  bigint NOT NULL REFERENCES payroll.payslips (id),
  kind        text NOT NULL CHECK (kind IN ('earning', 'deduction', 'tax')),
  -- earnings: REG, OT, SALARY; otherwise the deduction or tax code.
  code        text NOT NULL,
  description text NOT NULL,
  quantity    numeric(7,2),   -- hours, for hourly earnings
  rate        numeric(14,5),  -- hourly rate (1.5× for OT), or the deduction percent
  base        numeric(14,2),  -- what a tax or percent deduction was computed on
  amount      numeric(14,2) NOT NULL CHECK (amount >= 0),
  UNIQUE (payslip_id, kind, code)
);

-- A completed run is history: its payslips and lines can no longer change.
CREATE FUNCTION payroll.guard_completed_run() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_run_id bigint;
  v_status text;
BEGIN
  IF TG_TABLE_NAME = 'runs' THEN
    IF OLD.status = 'completed' THEN
      RAISE EXCEPTION 'payroll run % (period %) is completed and cannot be changed or deleted', OLD.id, OLD.period
        USING ERRCODE = 'ERP01';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF TG_TABLE_NAME = 'payslips' THEN
    v_run_id := CASE TG_OP WHEN 'INSERT' THEN NEW.run_id ELSE OLD.run_id END;
  ELSE
    SELECT ps.run_id INTO v_run_id FROM payroll.payslips ps
     WHERE ps.id = CASE TG_OP WHEN 'INSERT' THEN NEW.payslip_id ELSE OLD.payslip_id END;
  END IF;
  SELECT r.status INTO v_status FROM payroll.runs r WHERE r.id = v_run_id;
  IF v_status = 'completed' THEN
    RAISE EXCEPTION 'payroll run % is completed: its payslips cannot be added, changed or deleted', v_run_id
      USING ERRCODE = 'ERP01';
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER runs_completed_guard BEFORE UPDATE OR DELETE ON payroll.runs
  FOR EACH ROW EXECUTE FUNCTION payroll.guard_completed_run();
CREATE TRIGGER payslips_completed_guard BEFORE INSERT OR UPDATE OR DELETE ON payroll.payslips
  FOR EACH ROW EXECUTE FUNCTION payroll.guard_completed_run();
CREATE TRIGGER payslip_lines_completed_guard BEFORE INSERT OR UPDATE OR DELETE ON payroll.payslip_lines
  FOR EACH ROW EXECUTE FUNCTION payroll.guard_completed_run();

-------------------------------------------------------------------------------------------------------
-- sales: customers, items, orders, shipments, invoices, payments
-------------------------------------------------------------------------------------------------------

CREATE TABLE sales.settings (
  id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
  receivable_account text NOT NULL REFERENCES gl.accounts (code),
  revenue_account    text NOT NULL REFERENCES gl.accounts (code)
);
INSERT INTO sales.settings (receivable_account, revenue_account) VALUES ('1200', '4000');

-- x12_qualifier / x12_id: the partner's interchange id (ISA05/ISA06 on what they send us) for
-- customers that trade by EDI; unique, so an inbound interchange finds its customer.
CREATE TABLE sales.customers (
  customer_no        text PRIMARY KEY CHECK (customer_no ~ '^[A-Z0-9][A-Z0-9_-]{0,19}$'),
  name               text NOT NULL CHECK (name <> ''),
  x12_qualifier      text CHECK (x12_qualifier ~ '^[0-9A-Z]{2}$'),
  x12_id             text UNIQUE CHECK (x12_id ~ '^[!-~]([ -~]{0,14})$'),
  email              text,
  phone              text,
  address1           text,
  address2           text,
  city               text,
  state              text,
  postal_code        text,
  country            text NOT NULL DEFAULT 'US' CHECK (country ~ '^[A-Z]{2}$'),
  payment_terms_days int NOT NULL DEFAULT 30 CHECK (payment_terms_days >= 0),
  credit_limit       numeric(14,2) CHECK (credit_limit >= 0),
  active             boolean NOT NULL DEFAULT true,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT customers_x12_pair CHECK ((x12_id IS NULL) = (x12_qualifier IS NULL))
);
CREATE TRIGGER customers_updated_at BEFORE UPDATE ON sales.customers
  FOR EACH ROW EXECUTE FUNCTION public.erp_touch_updated_at();

CREATE TABLE sales.item_categories (
  code text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{0,29}$'),
  name text NOT NULL
);
INSERT INTO sales.item_categories (code, name) VALUES
  ('FASTENERS', 'Fasteners'),
  ('ELECTRICAL', 'Electrical'),
  ('PLUMBING', 'Plumbing'),
  ('TOOLS', 'Hand and power tools'),
  ('SAFETY', 'Safety equipment'),
  ('STORAGE', 'Storage and material handling'),
  ('PACKAGING', 'Packaging'),
  ('JANITORIAL', 'Janitorial supplies'),
  ('OFFICE', 'Office supplies');

-- The item master, as the item CSV carries it. uom is an X12 unit-of-measure code (EA, BX, CS, …).
CREATE TABLE sales.items (
  sku         text PRIMARY KEY CHECK (sku ~ '^[A-Z0-9][A-Z0-9._/-]{0,47}$'),
  description text NOT NULL CHECK (description <> ''),
  uom         text NOT NULL CHECK (uom ~ '^[A-Z0-9]{2}$'),
  list_price  numeric(14,2) NOT NULL CHECK (list_price >= 0),
  category    text NOT NULL REFERENCES sales.item_categories (code),
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_category ON sales.items (category);
CREATE TRIGGER items_updated_at BEFORE UPDATE ON sales.items
  FOR EACH ROW EXECUTE FUNCTION public.erp_touch_updated_at();

-- A customer's own part numbers for our items (X12 PO1 qualifier BP): translates an inbound order
-- line that names the buyer's part rather than our sku.
CREATE TABLE sales.customer_items (
  customer_no   text NOT NULL REFERENCES sales.customers (customer_no) ON UPDATE CASCADE ON DELETE CASCADE,
  customer_item text NOT NULL CHECK (customer_item <> ''),
  sku           text NOT NULL REFERENCES sales.items (sku) ON UPDATE CASCADE,
  PRIMARY KEY (customer_no, customer_item)
);

CREATE SEQUENCE sales.order_no_seq;
CREATE TABLE sales.orders (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_no            text NOT NULL UNIQUE DEFAULT 'SO' || lpad(nextval('sales.order_no_seq')::text, 6, '0'),
  customer_no         text NOT NULL REFERENCES sales.customers (customer_no) ON UPDATE CASCADE,
  -- The customer's purchase order number (X12 850 BEG03): one order per customer PO.
  customer_po         text CHECK (customer_po <> ''),
  order_date          date NOT NULL DEFAULT current_date,
  requested_ship_date date,
  status              text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'partially_shipped', 'shipped', 'invoiced', 'cancelled')),
  currency            text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  ship_to_name        text,
  ship_to_address1    text,
  ship_to_city        text,
  ship_to_state       text,
  ship_to_postal_code text,
  ship_to_country     text,
  -- Where the order came from ('manual', 'edi', 'import') and a reference there (file, control numbers).
  source              text NOT NULL DEFAULT 'manual',
  source_ref          text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT orders_customer_po_once UNIQUE (customer_no, customer_po)
);
CREATE INDEX orders_status ON sales.orders (status) WHERE status NOT IN ('invoiced', 'cancelled');

CREATE TABLE sales.order_lines (
  order_id          bigint NOT NULL REFERENCES sales.orders (id) ON DELETE CASCADE,
  line_no           int NOT NULL CHECK (line_no > 0),
  sku               text NOT NULL REFERENCES sales.items (sku) ON UPDATE CASCADE,
  -- The customer's line number (X12 PO101), echoed on 810/856.
  customer_line_ref text,
  quantity          numeric(14,3) NOT NULL CHECK (quantity > 0),
  uom               text NOT NULL CHECK (uom ~ '^[A-Z0-9]{2}$'),
  unit_price        numeric(14,4) NOT NULL CHECK (unit_price >= 0),
  amount            numeric(14,2) GENERATED ALWAYS AS (round(quantity * unit_price, 2)) STORED,
  PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_sku ON sales.order_lines (sku);

CREATE TABLE inv.locations (
  code text PRIMARY KEY CHECK (code ~ '^[A-Z0-9_-]{1,20}$'),
  name text NOT NULL
);
INSERT INTO inv.locations (code, name) VALUES ('MAIN', 'Main warehouse');

CREATE SEQUENCE sales.shipment_no_seq;
CREATE TABLE sales.shipments (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  shipment_no text NOT NULL UNIQUE DEFAULT 'SH' || lpad(nextval('sales.shipment_no_seq')::text, 6, '0'),
  order_id    bigint NOT NULL REFERENCES sales.orders (id),
  ship_date   date NOT NULL DEFAULT current_date,
  location    text NOT NULL DEFAULT 'MAIN' REFERENCES inv.locations (code),
  carrier     text,  -- SCAC code
  tracking_no text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (id, order_id)
);
CREATE INDEX shipments_order ON sales.shipments (order_id);

-- order_id repeats the shipment's order, so both foreign keys hold a line to that order's lines.
CREATE TABLE sales.shipment_lines (
  shipment_id   bigint NOT NULL,
  line_no       int NOT NULL CHECK (line_no > 0),
  order_id      bigint NOT NULL,
  order_line_no int NOT NULL,
  quantity      numeric(14,3) NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (shipment_id, line_no),
  FOREIGN KEY (shipment_id, order_id) REFERENCES sales.shipments (id, order_id) ON DELETE CASCADE,
  FOREIGN KEY (order_id, order_line_no) REFERENCES sales.order_lines (order_id, line_no)
);
CREATE INDEX shipment_lines_order_line ON sales.shipment_lines (order_id, order_line_no);

CREATE SEQUENCE sales.invoice_no_seq;
CREATE TABLE sales.invoices (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  invoice_no       text NOT NULL UNIQUE DEFAULT 'INV' || lpad(nextval('sales.invoice_no_seq')::text, 6, '0'),
  customer_no      text NOT NULL REFERENCES sales.customers (customer_no) ON UPDATE CASCADE,
  order_id         bigint REFERENCES sales.orders (id),
  shipment_id      bigint UNIQUE REFERENCES sales.shipments (id),
  invoice_date     date NOT NULL,
  due_date         date NOT NULL,
  status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'void')),
  currency         text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  journal_entry_id bigint REFERENCES gl.journal_entries (id),
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT invoices_due_after_date CHECK (due_date >= invoice_date)
);
CREATE INDEX invoices_customer ON sales.invoices (customer_no, due_date);

CREATE TABLE sales.invoice_lines (
  invoice_id    bigint NOT NULL REFERENCES sales.invoices (id) ON DELETE CASCADE,
  line_no       int NOT NULL CHECK (line_no > 0),
  sku           text REFERENCES sales.items (sku) ON UPDATE CASCADE,
  description   text NOT NULL,
  order_line_no int,
  quantity      numeric(14,3) NOT NULL CHECK (quantity > 0),
  uom           text NOT NULL CHECK (uom ~ '^[A-Z0-9]{2}$'),
  unit_price    numeric(14,4) NOT NULL CHECK (unit_price >= 0),
  amount        numeric(14,2) GENERATED ALWAYS AS (round(quantity * unit_price, 2)) STORED,
  PRIMARY KEY (invoice_id, line_no)
);

-- Customer payments, each applied to one invoice.
CREATE TABLE sales.payments (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  invoice_id  bigint NOT NULL REFERENCES sales.invoices (id),
  received_on date NOT NULL,
  amount      numeric(14,2) NOT NULL CHECK (amount > 0),
  reference   text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_invoice ON sales.payments (invoice_id);

-------------------------------------------------------------------------------------------------------
-- purch: vendors and purchase orders
-------------------------------------------------------------------------------------------------------

CREATE TABLE purch.vendors (
  vendor_no          text PRIMARY KEY CHECK (vendor_no ~ '^[A-Z0-9][A-Z0-9_-]{0,19}$'),
  name               text NOT NULL CHECK (name <> ''),
  x12_qualifier      text CHECK (x12_qualifier ~ '^[0-9A-Z]{2}$'),
  x12_id             text UNIQUE,
  email              text,
  payment_terms_days int NOT NULL DEFAULT 30 CHECK (payment_terms_days >= 0),
  active             boolean NOT NULL DEFAULT true,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER vendors_updated_at BEFORE UPDATE ON purch.vendors
  FOR EACH ROW EXECUTE FUNCTION public.erp_touch_updated_at();

CREATE SEQUENCE purch.po_no_seq;
CREATE TABLE purch.orders (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  po_no         text NOT NULL UNIQUE DEFAULT 'PO' || lpad(nextval('purch.po_no_seq')::text, 6, '0'),
  vendor_no     text NOT NULL REFERENCES purch.vendors (vendor_no) ON UPDATE CASCADE,
  order_date    date NOT NULL DEFAULT current_date,
  expected_date date,
  status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'received', 'closed', 'cancelled')),
  currency      text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE purch.order_lines (
  po_id     bigint NOT NULL REFERENCES purch.orders (id) ON DELETE CASCADE,
  line_no   int NOT NULL CHECK (line_no > 0),
  sku       text NOT NULL REFERENCES sales.items (sku) ON UPDATE CASCADE,
  quantity  numeric(14,3) NOT NULL CHECK (quantity > 0),
  uom       text NOT NULL CHECK (uom ~ '^[A-Z0-9]{2}$'),
  unit_cost numeric(14,4) NOT NULL CHECK (unit_cost >= 0),
  amount    numeric(14,2) GENERATED ALWAYS AS (round(quantity * unit_cost, 2)) STORED,
  PRIMARY KEY (po_id, line_no)
);

-------------------------------------------------------------------------------------------------------
-- inv: stock movements and on-hand
-------------------------------------------------------------------------------------------------------

-- Signed quantities: receipts and opening balances add, shipments take away. Append-only by habit:
-- correct with an 'adjustment', do not edit.
CREATE TABLE inv.stock_movements (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sku        text NOT NULL REFERENCES sales.items (sku) ON UPDATE CASCADE,
  location   text NOT NULL DEFAULT 'MAIN' REFERENCES inv.locations (code),
  moved_at   timestamptz NOT NULL DEFAULT now(),
  quantity   numeric(14,3) NOT NULL CHECK (quantity <> 0),
  reason     text NOT NULL CHECK (reason IN ('opening', 'receipt', 'shipment', 'adjustment', 'transfer')),
  unit_cost  numeric(14,4) CHECK (unit_cost >= 0),
  -- The document that moved the stock: 'shipment SH000012 line 1', 'PO000003 line 2', …
  source_ref text
);
CREATE INDEX stock_movements_sku_location ON inv.stock_movements (sku, location);

CREATE VIEW inv.on_hand AS
  SELECT sm.sku, sm.location, sum(sm.quantity) AS quantity, max(sm.moved_at) AS last_moved_at
    FROM inv.stock_movements sm
   GROUP BY sm.sku, sm.location;

-- A shipment line: never more than was ordered, takes the stock out of the shipping location, and
-- moves the order to partially_shipped / shipped.
CREATE FUNCTION sales.on_shipment_line() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_ordered numeric;
  v_shipped numeric;
  v_sku     text;
  v_ship    sales.shipments%ROWTYPE;
BEGIN
  SELECT ol.quantity, ol.sku INTO v_ordered, v_sku
    FROM sales.order_lines ol WHERE ol.order_id = NEW.order_id AND ol.line_no = NEW.order_line_no
     FOR UPDATE;
  SELECT coalesce(sum(sl.quantity), 0) INTO v_shipped
    FROM sales.shipment_lines sl WHERE sl.order_id = NEW.order_id AND sl.order_line_no = NEW.order_line_no;
  IF v_shipped > v_ordered THEN
    RAISE EXCEPTION 'order % line % would ship % but only % were ordered', NEW.order_id, NEW.order_line_no, v_shipped, v_ordered
      USING ERRCODE = 'ERP01';
  END IF;
  SELECT * INTO v_ship FROM sales.shipments s WHERE s.id = NEW.shipment_id;
  INSERT INTO inv.stock_movements (sku, location, moved_at, quantity, reason, source_ref)
    VALUES (v_sku, v_ship.location, v_ship.ship_date, -NEW.quantity, 'shipment',
            format('shipment %s line %s', v_ship.shipment_no, NEW.line_no));
  UPDATE sales.orders o
     SET status = CASE WHEN NOT EXISTS (
                    SELECT 1 FROM sales.order_lines ol
                     WHERE ol.order_id = o.id
                       AND ol.quantity > (SELECT coalesce(sum(sl.quantity), 0) FROM sales.shipment_lines sl
                                           WHERE sl.order_id = ol.order_id AND sl.order_line_no = ol.line_no))
                  THEN 'shipped' ELSE 'partially_shipped' END
   WHERE o.id = NEW.order_id AND o.status IN ('open', 'partially_shipped');
  RETURN NULL;
END
$$;
CREATE TRIGGER shipment_lines_effects AFTER INSERT ON sales.shipment_lines
  FOR EACH ROW EXECUTE FUNCTION sales.on_shipment_line();

-- Invoices a shipment: one invoice for what it shipped, at the order's prices, due after the
-- customer's terms, posted to the ledger (debit receivables, credit revenue) in the invoice date's
-- fiscal period. Refuses a shipment already invoiced. Returns the invoice id.
CREATE FUNCTION sales.invoice_shipment(p_shipment_id bigint, p_invoice_date date DEFAULT current_date)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_ship     sales.shipments%ROWTYPE;
  v_order    sales.orders%ROWTYPE;
  v_terms    int;
  v_invoice  sales.invoices%ROWTYPE;
  v_existing text;
  v_total    numeric;
  v_settings sales.settings%ROWTYPE;
  v_entry    bigint;
BEGIN
  SELECT * INTO v_ship FROM sales.shipments s WHERE s.id = p_shipment_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'shipment % does not exist', p_shipment_id USING ERRCODE = 'ERP01';
  END IF;
  SELECT i.invoice_no INTO v_existing FROM sales.invoices i WHERE i.shipment_id = p_shipment_id;
  IF v_existing IS NOT NULL THEN
    RAISE EXCEPTION 'shipment % is already invoiced (%)', v_ship.shipment_no, v_existing USING ERRCODE = 'ERP01';
  END IF;
  SELECT * INTO v_order FROM sales.orders o WHERE o.id = v_ship.order_id;
  SELECT c.payment_terms_days INTO v_terms FROM sales.customers c WHERE c.customer_no = v_order.customer_no;
  INSERT INTO sales.invoices (customer_no, order_id, shipment_id, invoice_date, due_date, currency)
    VALUES (v_order.customer_no, v_order.id, v_ship.id, p_invoice_date, p_invoice_date + v_terms, v_order.currency)
    RETURNING * INTO v_invoice;
  INSERT INTO sales.invoice_lines (invoice_id, line_no, sku, description, order_line_no, quantity, uom, unit_price)
    SELECT v_invoice.id, row_number() OVER (ORDER BY sl.line_no), ol.sku, it.description, ol.line_no,
           sl.quantity, ol.uom, ol.unit_price
      FROM sales.shipment_lines sl
      JOIN sales.order_lines ol ON ol.order_id = sl.order_id AND ol.line_no = sl.order_line_no
      JOIN sales.items it ON it.sku = ol.sku
     WHERE sl.shipment_id = p_shipment_id;
  SELECT coalesce(sum(il.amount), 0) INTO v_total FROM sales.invoice_lines il WHERE il.invoice_id = v_invoice.id;
  IF v_total = 0 THEN
    RAISE EXCEPTION 'shipment % has nothing to invoice', v_ship.shipment_no USING ERRCODE = 'ERP01';
  END IF;
  SELECT * INTO v_settings FROM sales.settings;
  v_entry := gl.post_entry(
    p_invoice_date,
    format('Invoice %s to %s', v_invoice.invoice_no, v_order.customer_no),
    jsonb_build_array(
      jsonb_build_object('account', v_settings.receivable_account, 'debit', v_total, 'memo', v_invoice.invoice_no),
      jsonb_build_object('account', v_settings.revenue_account, 'credit', v_total, 'memo', v_invoice.invoice_no)),
    'sales', v_invoice.invoice_no);
  UPDATE sales.invoices i SET journal_entry_id = v_entry WHERE i.id = v_invoice.id;
  UPDATE sales.orders o SET status = 'invoiced'
   WHERE o.id = v_order.id AND o.status = 'shipped'
     AND NOT EXISTS (SELECT 1 FROM sales.shipments s
                      WHERE s.order_id = o.id AND NOT EXISTS (SELECT 1 FROM sales.invoices i WHERE i.shipment_id = s.id));
  RETURN v_invoice.id;
END
$$;
