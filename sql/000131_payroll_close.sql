-- payroll.close_period with the rules of 000130 (docs/payroll.md): workweeks paid in the period where
-- they end, salary proration, FICA on gross − Section 125, Additional Medicare, opening YTD wages,
-- employer taxes accrued; and payroll.disburse_net_pay, which clears net pay payable.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
--
--   payroll.close_period('2026-11')
--     lock payroll.periods row (NOWAIT) ── refusals as before (000003)
--     ├─ payroll.payslips        per employee: hours by workweek, regular / overtime / prorated salary
--     ├─ payroll.payslip_lines   deductions → employee taxes, employer taxes (wage bases, YTD) → earnings
--     ├─ gl.journal_entries      Dr 6000 gross, Dr 6100 employer taxes; Cr withholdings, employer
--     │                          tax liabilities, deductions, 2100 net pay
--     └─ run completed, payroll period closed          all in the caller's transaction

CREATE OR REPLACE FUNCTION payroll.close_period(p_period text, p_closed_by text DEFAULT NULL)
RETURNS TABLE (
  run_id           bigint,
  period           text,
  employee_count   int,
  total_gross      numeric,
  total_taxes      numeric,
  total_deductions numeric,
  total_net        numeric,
  journal_entry_id bigint
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_by       text := coalesce(nullif(p_closed_by, ''), session_user);
  v_start    date;
  v_end      date;
  v_from     date;
  v_to       date;
  v_year     int;
  v_period   payroll.periods%ROWTYPE;
  v_run      payroll.runs%ROWTYPE;
  v_items    text[];
  v_problems text[] := '{}';
  v_settings payroll.settings%ROWTYPE;
  v_lines    jsonb;
  v_entry    bigint;
  v_count    int;
BEGIN
  v_start := gl.period_start(p_period);  -- also refuses a malformed period
  v_end := gl.period_end(p_period);
  v_year := extract(year FROM v_start)::int;
  SELECT w.work_from, w.work_to INTO v_from, v_to FROM payroll.pay_window(p_period) w;
  SELECT * INTO v_settings FROM payroll.settings;

  BEGIN
    SELECT * INTO v_period FROM payroll.periods p WHERE p.period = p_period FOR UPDATE NOWAIT;
  EXCEPTION WHEN lock_not_available THEN
    RAISE EXCEPTION 'payroll period % is busy: another session is closing it or loading its timesheets; try again when that has finished', p_period
      USING ERRCODE = 'ERP01';
  END;
  IF v_period.period IS NULL THEN
    RAISE EXCEPTION 'payroll period % does not exist; open it first (sql/jobs/open_period.sql)', p_period
      USING ERRCODE = 'ERP01';
  END IF;
  IF v_period.status = 'closed' THEN
    SELECT * INTO v_run FROM payroll.runs r WHERE r.period = p_period AND r.status = 'completed';
    RAISE EXCEPTION 'payroll period % is already closed (run %, closed % by %); a second close is refused',
      p_period, coalesce(v_run.id::text, '?'), to_char(v_period.closed_at, 'YYYY-MM-DD HH24:MI'), v_period.closed_by
      USING ERRCODE = 'ERP01';
  END IF;
  SELECT * INTO v_run FROM payroll.runs r WHERE r.period = p_period AND r.status <> 'cancelled';
  IF v_run.id IS NOT NULL THEN
    RAISE EXCEPTION 'a payroll run for % is already % (run %, started % by %); a second run is refused',
      p_period, replace(v_run.status, '_', ' '), v_run.id, to_char(v_run.started_at, 'YYYY-MM-DD HH24:MI'), v_run.started_by
      USING ERRCODE = 'ERP01';
  END IF;
  -- Wage caps and floors count the year's earlier runs, so the year's periods close in order.
  SELECT array_agg(p.period ORDER BY p.period) INTO v_items
    FROM payroll.periods p
   WHERE p.status = 'open' AND p.period < p_period AND left(p.period, 4) = left(p_period, 4);
  IF v_items IS NOT NULL THEN
    RAISE EXCEPTION 'payroll period % cannot close before earlier period(s) of its year: % still open',
      p_period, array_to_string(v_items, ', ')
      USING ERRCODE = 'ERP01';
  END IF;
  PERFORM gl.assert_period_open(p_period, format('posting the payroll of %s', p_period));

  -- Timesheets of the workweeks this period pays: all approved, and every active hourly employee has some.
  SELECT array_agg(t.employee_no || ' ' || to_char(t.work_date, 'YYYY-MM-DD') ORDER BY t.employee_no, t.work_date)
    INTO v_items
    FROM payroll.timesheets t
   WHERE t.work_date BETWEEN v_from AND v_to AND t.approved_by IS NULL;
  IF v_items IS NOT NULL THEN
    v_problems := v_problems || ('unapproved timesheets: ' || payroll.list_for_message(v_items));
  END IF;
  SELECT array_agg(e.employee_no ORDER BY e.employee_no) INTO v_items
    FROM hr.employees e
    JOIN payroll.rates_on(v_end) r ON r.employee_no = e.employee_no
   WHERE e.active AND r.pay_type = 'hourly'
     AND e.hire_date <= v_to AND (e.termination_date IS NULL OR e.termination_date >= v_from)
     AND NOT EXISTS (SELECT 1 FROM payroll.timesheets t
                      WHERE t.employee_no = e.employee_no AND t.work_date BETWEEN v_from AND v_to);
  IF v_items IS NOT NULL THEN
    v_problems := v_problems || (format('missing timesheets (active hourly employees with none in %s): ', p_period)
                                 || payroll.list_for_message(v_items));
  END IF;
  SELECT array_agg(DISTINCT t.employee_no ORDER BY t.employee_no) INTO v_items
    FROM payroll.timesheets t
   WHERE t.work_date BETWEEN v_from AND v_to
     AND NOT EXISTS (SELECT 1 FROM payroll.rates_on(v_end) r WHERE r.employee_no = t.employee_no);
  IF v_items IS NOT NULL THEN
    v_problems := v_problems || (format('no pay rate in effect on %s for: ', v_end) || payroll.list_for_message(v_items));
  END IF;
  IF cardinality(v_problems) > 0 THEN
    RAISE EXCEPTION 'payroll period % cannot close: %', p_period, array_to_string(v_problems, '; ')
      USING ERRCODE = 'ERP01',
            HINT = 'approve or load the timesheets (a corrected timesheet file upserts on employee_no, work_date), then close again';
  END IF;

  INSERT INTO payroll.runs (period, started_by) VALUES (p_period, v_by) RETURNING * INTO v_run;

  -- Gross pay. Hourly: per fixed workweek (all seven days, also those in the previous month), the
  -- first 40 hours regular and the rest overtime at 1.5×. Salaried: annual / 12, times the calendar
  -- days employed in the period / the period's days when hired or terminated inside it.
  INSERT INTO payroll.payslips AS ps
    (run_id, employee_no, pay_type, hourly_rate, annual_salary, regular_hours, overtime_hours,
     regular_pay, overtime_pay, salary_pay, gross, taxable, fica_wages, taxes, deductions, net,
     bank_routing, bank_account, bank_account_type, days_employed, days_in_period)
  WITH rate AS (
    SELECT * FROM payroll.rates_on(v_end)
  ), weeks AS (
    SELECT t.employee_no, payroll.week_end(t.work_date, v_settings.workweek_ends_isodow) AS week, sum(t.hours) AS hours
      FROM payroll.timesheets t
     WHERE t.work_date BETWEEN v_from AND v_to
     GROUP BY 1, 2
  ), hourly AS (
    SELECT w.employee_no, 'hourly' AS pay_type, r.hourly_rate, NULL::numeric AS annual_salary,
           sum(least(w.hours, 40)) AS regular_hours, sum(greatest(w.hours - 40, 0)) AS overtime_hours,
           round(sum(least(w.hours, 40)) * r.hourly_rate, 2) AS regular_pay,
           round(sum(greatest(w.hours - 40, 0)) * r.hourly_rate * 1.5, 2) AS overtime_pay,
           0::numeric AS salary_pay, NULL::int AS days_employed, NULL::int AS days_in_period
      FROM weeks w
      JOIN rate r ON r.employee_no = w.employee_no AND r.pay_type = 'hourly'
     GROUP BY w.employee_no, r.hourly_rate
  ), salaried AS (
    SELECT e.employee_no, 'salaried', NULL::numeric, r.annual_salary, 0::numeric, 0::numeric,
           0::numeric, 0::numeric,
           CASE WHEN d.employed = d.total THEN round(r.annual_salary / 12, 2)
                ELSE round(r.annual_salary / 12 * d.employed / d.total, 2) END,
           d.employed, d.total
      FROM hr.employees e
      JOIN rate r ON r.employee_no = e.employee_no AND r.pay_type = 'salaried'
     CROSS JOIN LATERAL (
       SELECT (least(coalesce(e.termination_date, v_end), v_end) - greatest(e.hire_date, v_start) + 1) AS employed,
              (v_end - v_start + 1) AS total) d
     WHERE (e.active OR e.termination_date IS NOT NULL)
       AND e.hire_date <= v_end AND (e.termination_date IS NULL OR e.termination_date >= v_start)
  ), pay AS (
    SELECT * FROM hourly UNION ALL SELECT * FROM salaried
  )
  SELECT v_run.id, pay.employee_no, pay.pay_type, pay.hourly_rate, pay.annual_salary,
         pay.regular_hours, pay.overtime_hours, pay.regular_pay, pay.overtime_pay, pay.salary_pay,
         pay.regular_pay + pay.overtime_pay + pay.salary_pay,
         pay.regular_pay + pay.overtime_pay + pay.salary_pay,
         pay.regular_pay + pay.overtime_pay + pay.salary_pay, 0, 0,
         pay.regular_pay + pay.overtime_pay + pay.salary_pay,
         e.bank_routing, e.bank_account, CASE WHEN e.bank_account IS NOT NULL THEN e.bank_account_type END,
         pay.days_employed, pay.days_in_period
    FROM pay JOIN hr.employees e ON e.employee_no = pay.employee_no;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  IF v_count = 0 THEN
    RAISE EXCEPTION 'payroll period % has nobody to pay: no active salaried employee and no timesheets', p_period
      USING ERRCODE = 'ERP01';
  END IF;

  -- Deductions: fixed amount, or percent of gross rounded to cents.
  INSERT INTO payroll.payslip_lines (payslip_id, kind, code, description, rate, base, amount)
  SELECT ps.id, 'deduction', d.deduction_code, dt.name, d.percent,
         CASE WHEN d.percent IS NOT NULL THEN ps.gross END,
         coalesce(d.amount, round(ps.gross * d.percent / 100, 2))
    FROM payroll.payslips ps
    JOIN (SELECT DISTINCT ON (ed.employee_no, ed.deduction_code) ed.*
            FROM payroll.employee_deductions ed
           WHERE ed.effective_from <= v_end
           ORDER BY ed.employee_no, ed.deduction_code, ed.effective_from DESC) d
      ON d.employee_no = ps.employee_no
    JOIN payroll.deduction_types dt ON dt.code = d.deduction_code
   WHERE ps.run_id = v_run.id
     AND (d.effective_to IS NULL OR d.effective_to >= v_end)
     AND coalesce(d.amount, round(ps.gross * d.percent / 100, 2)) > 0;

  -- The wage bases: taxable = gross − pre-tax deductions, fica = gross − Section 125 deductions.
  UPDATE payroll.payslips ps
     SET taxable = greatest(ps.gross - x.pre_tax, 0), fica_wages = greatest(ps.gross - x.section_125, 0)
    FROM (SELECT p2.id,
                 coalesce(sum(l.amount) FILTER (WHERE dt.pre_tax), 0) AS pre_tax,
                 coalesce(sum(l.amount) FILTER (WHERE dt.section_125), 0) AS section_125
            FROM payroll.payslips p2
            LEFT JOIN payroll.payslip_lines l ON l.payslip_id = p2.id AND l.kind = 'deduction'
            LEFT JOIN payroll.deduction_types dt ON dt.code = l.code
           WHERE p2.run_id = v_run.id
           GROUP BY p2.id) x
   WHERE ps.id = x.id;

  -- Taxes, the employee's and the employer's: the monthly bracket set in effect, applied to the part
  -- of this month's wage base that lies between the tax's annual floor and cap, given the wages of
  -- the year so far (opening YTD + the year's completed runs):
  --   base = clamp(ytd + month) − clamp(ytd),   clamp(x) = least(greatest(x, floor), cap)
  INSERT INTO payroll.payslip_lines (payslip_id, kind, code, description, base, amount)
  WITH slip AS (
    SELECT ps.id, ps.employee_no, ps.gross, ps.taxable, ps.fica_wages
      FROM payroll.payslips ps
     WHERE ps.run_id = v_run.id
  ), bracket_set AS (
    SELECT tb.tax_code, max(tb.effective_from) AS effective_from
      FROM payroll.tax_brackets tb
     WHERE tb.effective_from <= v_end
     GROUP BY tb.tax_code
  ), brackets AS (
    SELECT tb.tax_code, tb.lower_bound, tb.rate,
           lead(tb.lower_bound) OVER (PARTITION BY tb.tax_code ORDER BY tb.lower_bound) AS upper_bound
      FROM payroll.tax_brackets tb
      JOIN bracket_set bs ON bs.tax_code = tb.tax_code AND bs.effective_from = tb.effective_from
  ), year_to_date AS (
    SELECT y.employee_no, sum(y.gross) AS gross, sum(y.taxable) AS taxable, sum(y.fica) AS fica
      FROM (SELECT ps.employee_no, ps.gross, ps.taxable, coalesce(ps.fica_wages, ps.gross) AS fica
              FROM payroll.payslips ps
              JOIN payroll.runs r ON r.id = ps.run_id
             WHERE r.status = 'completed' AND r.period >= left(p_period, 4) || '-01' AND r.period < p_period
            UNION ALL
            SELECT o.employee_no, o.gross, o.taxable, o.fica_wages
              FROM payroll.opening_ytd o WHERE o.tax_year = v_year) y
     GROUP BY y.employee_no
  ), based AS (
    SELECT s.id, tx.code, tx.name, tx.payer, w.month_base, w.ytd,
           coalesce(tx.annual_wage_floor, 0) AS floor, coalesce(tx.annual_wage_cap, 'Infinity'::numeric) AS cap
      FROM slip s
     CROSS JOIN payroll.taxes tx
      LEFT JOIN year_to_date y ON y.employee_no = s.employee_no
     CROSS JOIN LATERAL (
       SELECT CASE tx.base WHEN 'gross' THEN s.gross WHEN 'taxable' THEN s.taxable ELSE s.fica_wages END AS month_base,
              coalesce(CASE tx.base WHEN 'gross' THEN y.gross WHEN 'taxable' THEN y.taxable ELSE y.fica END, 0) AS ytd) w
     WHERE tx.active AND EXISTS (SELECT 1 FROM bracket_set bs WHERE bs.tax_code = tx.code)
  ), capped AS (
    SELECT b.id, b.code, b.name, b.payer,
           CASE WHEN b.floor = 0 AND b.cap = 'Infinity' THEN b.month_base
                ELSE least(greatest(b.ytd + b.month_base, b.floor), b.cap) - least(greatest(b.ytd, b.floor), b.cap)
           END AS base
      FROM based b
  )
  SELECT c.id, CASE c.payer WHEN 'employee' THEN 'tax' ELSE 'employer_tax' END, c.code, c.name, c.base,
         round(coalesce((SELECT sum(br.rate * greatest(least(c.base, coalesce(br.upper_bound, c.base)) - br.lower_bound, 0))
                           FROM brackets br WHERE br.tax_code = c.code), 0), 2)
    FROM capped c;

  -- Net = gross − employee taxes − deductions; never negative.
  SELECT array_agg(format('%s (gross %s, taxes %s, deductions %s)', x.employee_no, x.gross, x.taxes, x.deductions)
                   ORDER BY x.employee_no)
    INTO v_items
    FROM (SELECT ps.employee_no, ps.gross,
                 coalesce(sum(l.amount) FILTER (WHERE l.kind = 'tax'), 0) AS taxes,
                 coalesce(sum(l.amount) FILTER (WHERE l.kind = 'deduction'), 0) AS deductions
            FROM payroll.payslips ps
            LEFT JOIN payroll.payslip_lines l ON l.payslip_id = ps.id
           WHERE ps.run_id = v_run.id
           GROUP BY ps.employee_no, ps.gross) x
   WHERE x.gross - x.taxes - x.deductions < 0;
  IF v_items IS NOT NULL THEN
    RAISE EXCEPTION 'payroll period % cannot close: net pay would be negative for %', p_period, payroll.list_for_message(v_items)
      USING ERRCODE = 'ERP01', HINT = 'lower or end the employees'' fixed deductions for this period';
  END IF;
  UPDATE payroll.payslips ps
     SET taxes = x.taxes, employer_taxes = x.employer_taxes, deductions = x.deductions,
         net = ps.gross - x.taxes - x.deductions
    FROM (SELECT p2.id,
                 coalesce(sum(l.amount) FILTER (WHERE l.kind = 'tax'), 0) AS taxes,
                 coalesce(sum(l.amount) FILTER (WHERE l.kind = 'employer_tax'), 0) AS employer_taxes,
                 coalesce(sum(l.amount) FILTER (WHERE l.kind = 'deduction'), 0) AS deductions
            FROM payroll.payslips p2
            LEFT JOIN payroll.payslip_lines l ON l.payslip_id = p2.id
           WHERE p2.run_id = v_run.id
           GROUP BY p2.id) x
   WHERE ps.id = x.id;

  INSERT INTO payroll.payslip_lines (payslip_id, kind, code, description, quantity, rate, amount)
  SELECT ps.id, 'earning', 'REG', 'Regular hours', ps.regular_hours, ps.hourly_rate, ps.regular_pay
    FROM payroll.payslips ps WHERE ps.run_id = v_run.id AND ps.pay_type = 'hourly'
  UNION ALL
  SELECT ps.id, 'earning', 'OT', 'Overtime hours at 1.5x', ps.overtime_hours, ps.hourly_rate * 1.5, ps.overtime_pay
    FROM payroll.payslips ps WHERE ps.run_id = v_run.id AND ps.pay_type = 'hourly' AND ps.overtime_hours > 0
  UNION ALL
  SELECT ps.id, 'earning', 'SALARY',
         CASE WHEN ps.days_employed = ps.days_in_period THEN 'Monthly salary (annual / 12)'
              ELSE format('Monthly salary (annual / 12) for %s of %s days', ps.days_employed, ps.days_in_period) END,
         NULL, NULL, ps.salary_pay
    FROM payroll.payslips ps WHERE ps.run_id = v_run.id AND ps.pay_type = 'salaried';

  UPDATE payroll.runs r
     SET employee_count = x.n, total_gross = x.gross, total_taxes = x.taxes,
         total_deductions = x.deductions, total_net = x.net, total_employer_taxes = x.employer_taxes
    FROM (SELECT count(*) AS n, sum(ps.gross) AS gross, sum(ps.taxes) AS taxes,
                 sum(ps.deductions) AS deductions, sum(ps.net) AS net, sum(ps.employer_taxes) AS employer_taxes
            FROM payroll.payslips ps WHERE ps.run_id = v_run.id) x
   WHERE r.id = v_run.id
  RETURNING r.* INTO v_run;

  -- One entry: debit wages expense with the gross and each employer tax's expense account with the
  -- employer taxes; credit each tax's and deduction's liability account with what was withheld or
  -- accrued, and net pay payable with the net. Zero amounts get no line.
  SELECT jsonb_agg(jsonb_build_object('account', j.account, 'debit', j.debit, 'credit', j.credit, 'memo', j.memo)
                   ORDER BY j.debit = 0, j.account)
    INTO v_lines
    FROM (
      SELECT v_settings.wages_expense_account AS account, v_run.total_gross AS debit, 0::numeric AS credit,
             'gross pay' AS memo
      UNION ALL
      SELECT tx.expense_account, sum(l.amount), 0, 'employer taxes'
        FROM payroll.payslip_lines l
        JOIN payroll.payslips ps ON ps.id = l.payslip_id
        JOIN payroll.taxes tx ON tx.code = l.code
       WHERE ps.run_id = v_run.id AND l.kind = 'employer_tax'
       GROUP BY tx.expense_account
      UNION ALL
      SELECT c.account, 0, sum(c.amount), string_agg(c.memo, ', ' ORDER BY c.memo)
        FROM (SELECT tx.liability_account AS account, sum(l.amount) AS amount,
                     CASE l.kind WHEN 'tax' THEN 'withheld ' ELSE 'employer ' END || tx.code AS memo
                FROM payroll.payslip_lines l
                JOIN payroll.payslips ps ON ps.id = l.payslip_id
                JOIN payroll.taxes tx ON tx.code = l.code
               WHERE ps.run_id = v_run.id AND l.kind IN ('tax', 'employer_tax')
               GROUP BY tx.liability_account, tx.code, l.kind
              UNION ALL
              SELECT dt.liability_account, sum(l.amount), 'withheld ' || dt.code
                FROM payroll.payslip_lines l
                JOIN payroll.payslips ps ON ps.id = l.payslip_id
                JOIN payroll.deduction_types dt ON dt.code = l.code
               WHERE ps.run_id = v_run.id AND l.kind = 'deduction'
               GROUP BY dt.liability_account, dt.code
              UNION ALL
              SELECT v_settings.net_pay_account, v_run.total_net, 'net pay') c
       GROUP BY c.account
    ) j
   WHERE j.debit > 0 OR j.credit > 0;
  IF v_lines IS NULL THEN
    RAISE EXCEPTION 'payroll period % cannot close: its gross pay is 0.00', p_period USING ERRCODE = 'ERP01';
  END IF;
  v_entry := gl.post_entry(v_end, format('Payroll %s (run %s, %s employees)', p_period, v_run.id, v_run.employee_count),
                           v_lines, 'payroll', v_run.id::text);

  UPDATE payroll.runs r SET status = 'completed', completed_at = now(), journal_entry_id = v_entry WHERE r.id = v_run.id;
  UPDATE payroll.periods p SET status = 'closed', closed_at = now(), closed_by = v_by WHERE p.period = p_period;

  RETURN QUERY
    SELECT r.id, r.period, r.employee_count, r.total_gross, r.total_taxes, r.total_deductions, r.total_net,
           r.journal_entry_id
      FROM payroll.runs r WHERE r.id = v_run.id;
END
$$;

-- Pays out the net pay of period p_period's completed run by p_method ('bank': the employees in the
-- bank file; 'check': those paid by check): one journal entry dated the period's last day, Dr net pay
-- payable, Cr the payroll cash account, recorded in payroll.disbursements. Returns 'disbursed' or
-- 'already disbursed' (a second call posts nothing). A method with nobody to pay records 0.00 and no entry.
CREATE FUNCTION payroll.disburse_net_pay(p_period text, p_method text DEFAULT 'bank', p_by text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_run      payroll.runs%ROWTYPE;
  v_settings payroll.settings%ROWTYPE;
  v_amount   numeric;
  v_count    int;
  v_entry    bigint;
BEGIN
  IF p_method IS NULL OR p_method NOT IN ('bank', 'check') THEN
    RAISE EXCEPTION 'net pay is disbursed by ''bank'' or ''check'', not %', coalesce('''' || p_method || '''', 'NULL')
      USING ERRCODE = 'ERP01';
  END IF;
  SELECT * INTO v_run FROM payroll.runs r WHERE r.period = p_period AND r.status = 'completed';
  IF v_run.id IS NULL THEN
    RAISE EXCEPTION 'payroll period % has no completed run: nothing to disburse; close it first', p_period
      USING ERRCODE = 'ERP01';
  END IF;
  -- Serialises two disbursements of the same run.
  PERFORM pg_advisory_xact_lock(hashtextextended('payroll.disburse ' || v_run.id, 0));
  IF EXISTS (SELECT 1 FROM payroll.disbursements d WHERE d.run_id = v_run.id AND d.method = p_method) THEN
    RETURN 'already disbursed';
  END IF;
  SELECT coalesce(sum(ps.net), 0), count(*) INTO v_amount, v_count
    FROM payroll.payslips ps
   WHERE ps.run_id = v_run.id AND ps.net > 0
     AND (ps.bank_account IS NOT NULL) = (p_method = 'bank');
  SELECT * INTO v_settings FROM payroll.settings;
  IF v_amount > 0 THEN
    v_entry := gl.post_entry(
      gl.period_end(p_period),
      format('Payroll %s net pay paid by %s (run %s, %s employees)', p_period, p_method, v_run.id, v_count),
      jsonb_build_array(
        jsonb_build_object('account', v_settings.net_pay_account, 'debit', v_amount, 'memo', 'net pay ' || p_method),
        jsonb_build_object('account', v_settings.cash_account, 'credit', v_amount, 'memo', 'net pay ' || p_method)),
      'payroll-disbursement', v_run.id || ' ' || p_method);
  END IF;
  INSERT INTO payroll.disbursements (run_id, method, amount, payslip_count, journal_entry_id, disbursed_by)
    VALUES (v_run.id, p_method, v_amount, v_count, v_entry, coalesce(nullif(p_by, ''), session_user));
  RETURN 'disbursed';
END
$$;

-- The payroll register, with the wage bases and employer taxes at the end.
CREATE OR REPLACE VIEW payroll.register AS
  SELECT r.period, r.id AS run_id, r.status AS run_status, ps.employee_no, e.last_name, e.first_name,
         e.department, ps.pay_type, ps.hourly_rate, ps.annual_salary, ps.regular_hours, ps.overtime_hours,
         ps.regular_pay, ps.overtime_pay, ps.salary_pay, ps.gross, ps.taxable, ps.taxes, ps.deductions, ps.net,
         CASE WHEN ps.bank_account IS NULL THEN 'check' ELSE 'bank' END AS payment_method,
         ps.fica_wages, ps.employer_taxes
    FROM payroll.payslips ps
    JOIN payroll.runs r ON r.id = ps.run_id
    JOIN hr.employees e ON e.employee_no = ps.employee_no;

-- Every line of every payslip: earnings, deductions, taxes, employer taxes.
CREATE OR REPLACE VIEW payroll.register_lines AS
  SELECT r.period, r.id AS run_id, ps.employee_no, l.kind, l.code, l.description, l.quantity, l.rate, l.base, l.amount,
         CASE l.kind WHEN 'earning' THEN 1 WHEN 'deduction' THEN 2 WHEN 'tax' THEN 3 ELSE 4 END AS kind_order
    FROM payroll.payslip_lines l
    JOIN payroll.payslips ps ON ps.id = l.payslip_id
    JOIN payroll.runs r ON r.id = ps.run_id;

-- Rows of the bank payment file: the one place the bank exports (CSV and NACHA) read employees' bank
-- details from, as the payslip recorded them at the close. account_type: 'checking' or 'savings'.
CREATE OR REPLACE VIEW payroll.bank_payments AS
  SELECT r.period, r.id AS run_id, ps.employee_no, e.last_name || ', ' || e.first_name AS name,
         ps.bank_routing AS routing, ps.bank_account AS account, ps.net AS amount,
         coalesce(ps.bank_account_type, 'checking') AS account_type
    FROM payroll.payslips ps
    JOIN payroll.runs r ON r.id = ps.run_id
    JOIN hr.employees e ON e.employee_no = ps.employee_no
   WHERE r.status = 'completed' AND ps.net > 0 AND ps.bank_account IS NOT NULL;
