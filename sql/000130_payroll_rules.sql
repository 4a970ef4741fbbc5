-- Payroll rules a payroll specialist expects (docs/payroll.md):
--   * Section 125 (cafeteria-plan) premiums are exempt from social security, Medicare, FUTA and SUTA:
--     those taxes use the new base 'fica' = gross − Section 125 deductions.
--   * Overtime by fixed 7-day FLSA workweek: a payroll period pays the workweeks that END in it, so a
--     week straddling a month end is paid whole in the month where it ends.
--   * Salaries are prorated by calendar days for a hire or a termination inside the period.
--   * Additional Medicare: 0.9 % of Medicare wages above 200,000.00 in the calendar year (annual_wage_floor).
--   * Opening year-to-date wages (payroll.opening_ytd) count towards wage bases and thresholds.
--   * Employer taxes (social security, Medicare, FUTA, SUTA) are accrued: Dr 6100, Cr their liabilities.
--   * Net pay is disbursed in the ledger (Dr 2100, Cr 1010) by payroll.disburse_net_pay.
-- Replaces payroll.close_period and payroll.assert_timesheet_period_open of 000003.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

INSERT INTO gl.accounts (code, name, type) VALUES
  ('2140', 'FUTA payable', 'liability'),
  ('2150', 'SUTA payable', 'liability'),
  ('2160', 'Additional Medicare withheld', 'liability');

-- The workweek: fixed, seven days, ending on this ISO weekday (7 = Sunday: Monday–Sunday weeks).
-- cash_account pays the net pay out.
ALTER TABLE payroll.settings
  ADD COLUMN workweek_ends_isodow int NOT NULL DEFAULT 7 CHECK (workweek_ends_isodow BETWEEN 1 AND 7),
  ADD COLUMN cash_account text NOT NULL DEFAULT '1010' REFERENCES gl.accounts (code);

-- A Section 125 deduction is pre-tax for income tax and also outside the FICA / FUTA / SUTA base.
ALTER TABLE payroll.deduction_types
  ADD COLUMN section_125 boolean NOT NULL DEFAULT false,
  ADD CONSTRAINT deduction_types_section_125_pre_tax CHECK (NOT section_125 OR pre_tax);
UPDATE payroll.deduction_types SET section_125 = true WHERE code = 'HEALTH';

-- payer 'employer': accrued (expense_account debited), not withheld from net pay.
-- annual_wage_floor: only the part of the year's wages above it is taxed (Additional Medicare).
ALTER TABLE payroll.taxes DROP CONSTRAINT taxes_base_check;
ALTER TABLE payroll.taxes
  ADD CONSTRAINT taxes_base_check CHECK (base IN ('gross', 'taxable', 'fica')),
  ADD COLUMN payer text NOT NULL DEFAULT 'employee' CHECK (payer IN ('employee', 'employer')),
  ADD COLUMN annual_wage_floor numeric(14,2) CHECK (annual_wage_floor >= 0),
  ADD COLUMN expense_account text REFERENCES gl.accounts (code),
  ADD CONSTRAINT taxes_employer_expense CHECK ((payer = 'employer') = (expense_account IS NOT NULL));
UPDATE payroll.taxes SET base = 'fica' WHERE code IN ('SOCSEC', 'MEDICARE');
INSERT INTO payroll.taxes (code, name, base, annual_wage_cap, annual_wage_floor, liability_account, payer, expense_account) VALUES
  ('ADDMED', 'Additional Medicare', 'fica', NULL, 200000.00, '2160', 'employee', NULL),
  ('ER_SOCSEC', 'Social security (employer)', 'fica', 184500.00, NULL, '2120', 'employer', '6100'),
  ('ER_MEDICARE', 'Medicare (employer)', 'fica', NULL, NULL, '2130', 'employer', '6100'),
  ('FUTA', 'Federal unemployment (FUTA)', 'fica', 7000.00, NULL, '2140', 'employer', '6100'),
  ('SUTA', 'State unemployment (SUTA)', 'fica', 9000.00, NULL, '2150', 'employer', '6100');
INSERT INTO payroll.tax_brackets (tax_code, effective_from, lower_bound, rate) VALUES
  ('ADDMED', '2026-01-01', 0.00, 0.00900),
  ('ER_SOCSEC', '2026-01-01', 0.00, 0.06200),
  ('ER_MEDICARE', '2026-01-01', 0.00, 0.01450),
  ('FUTA', '2026-01-01', 0.00, 0.00600),
  ('SUTA', '2026-01-01', 0.00, 0.02700);

-- Employer taxes are payslip lines too (kind 'employer_tax'), outside net pay.
ALTER TABLE payroll.payslip_lines DROP CONSTRAINT payslip_lines_kind_check;
ALTER TABLE payroll.payslip_lines
  ADD CONSTRAINT payslip_lines_kind_check CHECK (kind IN ('earning', 'deduction', 'tax', 'employer_tax'));

-- fica_wages: gross − Section 125 deductions; NULL on runs closed before this migration (gross then).
ALTER TABLE payroll.payslips
  ADD COLUMN fica_wages numeric(14,2),
  ADD COLUMN employer_taxes numeric(14,2) NOT NULL DEFAULT 0,
  ADD COLUMN bank_account_type text CHECK (bank_account_type IN ('checking', 'savings')),
  -- Salaried: days employed in the period and the period's days (proration), NULL when hourly.
  ADD COLUMN days_employed int,
  ADD COLUMN days_in_period int;
ALTER TABLE payroll.runs ADD COLUMN total_employer_taxes numeric(14,2) NOT NULL DEFAULT 0;

ALTER TABLE hr.employees
  ADD COLUMN bank_account_type text NOT NULL DEFAULT 'checking' CHECK (bank_account_type IN ('checking', 'savings'));

-- Opening year-to-date wages of a company that goes live mid-year: what the earlier payroll system
-- paid each employee in tax_year. They count towards the wage caps (social security, FUTA, SUTA) and
-- floors (Additional Medicare) exactly like this system's own completed runs of that year.
CREATE TABLE payroll.opening_ytd (
  employee_no   text NOT NULL REFERENCES hr.employees (employee_no) ON UPDATE CASCADE,
  tax_year      int NOT NULL CHECK (tax_year BETWEEN 1900 AND 9999),
  gross         numeric(14,2) NOT NULL CHECK (gross >= 0),
  -- gross − pre-tax deductions (income-tax wages).
  taxable       numeric(14,2) NOT NULL CHECK (taxable >= 0),
  -- gross − Section 125 deductions (Medicare wages, before the social-security cap).
  fica_wages    numeric(14,2) NOT NULL CHECK (fica_wages >= 0),
  loaded_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (employee_no, tax_year),
  CONSTRAINT opening_ytd_bases CHECK (taxable <= gross AND fica_wages <= gross)
);

-- Opening figures are frozen once a run of that year paid the employee: changing them would change
-- the wage bases that run already used.
CREATE FUNCTION payroll.assert_opening_ytd_unused(p_employee_no text, p_tax_year int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_run bigint;
BEGIN
  SELECT r.id INTO v_run FROM payroll.runs r JOIN payroll.payslips ps ON ps.run_id = r.id
   WHERE ps.employee_no = p_employee_no AND r.status = 'completed' AND left(r.period, 4)::int = p_tax_year
   ORDER BY r.id LIMIT 1;
  IF v_run IS NOT NULL THEN
    RAISE EXCEPTION 'opening year-to-date wages of % for % cannot change: payroll run % of that year already used them',
      p_employee_no, p_tax_year, v_run
      USING ERRCODE = 'ERP01';
  END IF;
END
$$;

CREATE FUNCTION payroll.guard_opening_ytd() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND (OLD.employee_no, OLD.tax_year, OLD.gross, OLD.taxable, OLD.fica_wages)
                          IS NOT DISTINCT FROM (NEW.employee_no, NEW.tax_year, NEW.gross, NEW.taxable, NEW.fica_wages) THEN
    RETURN NEW;  -- a re-load of the same figures
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM payroll.assert_opening_ytd_unused(OLD.employee_no, OLD.tax_year);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM payroll.assert_opening_ytd_unused(NEW.employee_no, NEW.tax_year);
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER opening_ytd_guard BEFORE INSERT OR UPDATE OR DELETE ON payroll.opening_ytd
  FOR EACH ROW EXECUTE FUNCTION payroll.guard_opening_ytd();

-- Net pay paid out: one row per run and method, with the journal entry (Dr net pay payable, Cr cash).
CREATE TABLE payroll.disbursements (
  run_id           bigint NOT NULL REFERENCES payroll.runs (id),
  method           text NOT NULL CHECK (method IN ('bank', 'check')),
  amount           numeric(14,2) NOT NULL CHECK (amount >= 0),
  payslip_count    int NOT NULL,
  journal_entry_id bigint REFERENCES gl.journal_entries (id),
  disbursed_by     text NOT NULL DEFAULT session_user,
  disbursed_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, method)
);

-- The last day of the fixed workweek that contains p_date (weeks end on ISO weekday p_ends).
CREATE FUNCTION payroll.week_end(p_date date, p_ends int) RETURNS date
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT p_date + ((p_ends - extract(isodow FROM p_date)::int + 7) % 7)
$$;

-- The payroll period that pays the hours worked on p_date: the period where its workweek ends.
CREATE FUNCTION payroll.pay_period_of(p_date date) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
  SELECT gl.period_of(payroll.week_end(p_date, s.workweek_ends_isodow)) FROM payroll.settings s
$$;

-- The work dates period p_period pays: from the first day of the first workweek ending in it to the
-- last workweek end on or before its last day.
CREATE FUNCTION payroll.pay_window(p_period text, OUT work_from date, OUT work_to date)
LANGUAGE sql STABLE STRICT AS $$
  SELECT payroll.week_end(gl.period_start(p_period), s.workweek_ends_isodow) - 6,
         payroll.week_end(gl.period_end(p_period), s.workweek_ends_isodow)
           - CASE WHEN payroll.week_end(gl.period_end(p_period), s.workweek_ends_isodow) > gl.period_end(p_period)
                  THEN 7 ELSE 0 END
    FROM payroll.settings s
$$;

-- A timesheet belongs to the payroll period that pays it (where its workweek ends).
CREATE OR REPLACE FUNCTION payroll.assert_timesheet_period_open(p_employee_no text, p_work_date date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_period text := payroll.pay_period_of(p_work_date);
  v_status text;
BEGIN
  SELECT p.status INTO v_status FROM payroll.periods p WHERE p.period = v_period FOR SHARE;
  IF v_status = 'closed' THEN
    RAISE EXCEPTION 'payroll period % is closed: the timesheet of % for % cannot be added, changed or deleted',
      v_period, p_employee_no, p_work_date
      USING ERRCODE = 'ERP01';
  END IF;
END
$$;
