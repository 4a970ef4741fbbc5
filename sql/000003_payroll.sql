-- Payroll: opening a payroll period, closing it (payroll.close_period), and the read-only views the
-- exports use (register, register lines, bank payments, journal). Rules: docs/payroll.md.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
--
--   payroll.close_period('2026-11')
--     lock payroll.periods row (NOWAIT) ── refuse: missing / closed / run in progress / earlier period
--     │                                     open / fiscal period closed / timesheets unapproved or missing
--     ├─ payroll.runs            one row, in_progress
--     ├─ payroll.payslips        per employee: hours, regular / overtime / salary pay, gross
--     ├─ payroll.payslip_lines   deductions → taxes (on gross − pre-tax deductions) → earnings
--     ├─ gl.journal_entries      one balanced entry: Dr wages = gross; Cr taxes, deductions, net pay
--     └─ run completed, payroll period closed          all in the caller's transaction

-- The pay rate of every employee in effect on p_date (latest effective_from on or before it).
CREATE FUNCTION payroll.rates_on(p_date date) RETURNS SETOF hr.pay_rates
LANGUAGE sql STABLE AS $$
  SELECT DISTINCT ON (pr.employee_no) pr.*
    FROM hr.pay_rates pr
   WHERE pr.effective_from <= p_date
   ORDER BY pr.employee_no, pr.effective_from DESC
$$;

-- Opens a payroll period (and its fiscal period, which the close posts into). Returns 'opened' or
-- 'already open'; refuses a closed period: a closed payroll is never reopened by a job.
CREATE FUNCTION payroll.open_period(p_period text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  PERFORM gl.period_start(p_period);
  SELECT p.status INTO v_status FROM payroll.periods p WHERE p.period = p_period;
  IF v_status = 'closed' THEN
    RAISE EXCEPTION 'payroll period % is closed; a closed payroll period cannot be opened again', p_period
      USING ERRCODE = 'ERP01';
  ELSIF v_status = 'open' THEN
    RETURN 'already open';
  END IF;
  PERFORM gl.open_period(p_period);
  INSERT INTO payroll.periods (period) VALUES (p_period) ON CONFLICT (period) DO NOTHING;
  RETURN 'opened';
END
$$;

-- "E0007 2026-11-03, E0012 2026-11-20, … and 14 more": the first p_max items of a list for a message.
CREATE FUNCTION payroll.list_for_message(p_items text[], p_max int DEFAULT 25) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT array_to_string(p_items[1:p_max], ', ')
      || CASE WHEN cardinality(p_items) > p_max THEN format(', … and %s more', cardinality(p_items) - p_max) ELSE '' END
$$;

-- Closes payroll period p_period in the caller's transaction: computes and writes the run, payslips
-- and lines, posts one balanced journal entry and closes the period; returns the run's summary.
-- Refusals raise SQLSTATE 'ERP01' and write nothing. Roll the transaction back for a dry run.
CREATE FUNCTION payroll.close_period(p_period text, p_closed_by text DEFAULT NULL)
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

  -- The period row is the close's lock: a second close, or a timesheet load of this period, waits
  -- on it. NOWAIT turns "somebody else is at it" into a refusal instead of a queue.
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
  -- Social-security caps count the year's earlier runs, so the year's periods close in order.
  SELECT array_agg(p.period ORDER BY p.period) INTO v_items
    FROM payroll.periods p
   WHERE p.status = 'open' AND p.period < p_period AND left(p.period, 4) = left(p_period, 4);
  IF v_items IS NOT NULL THEN
    RAISE EXCEPTION 'payroll period % cannot close before earlier period(s) of its year: % still open',
      p_period, array_to_string(v_items, ', ')
      USING ERRCODE = 'ERP01';
  END IF;
  PERFORM gl.assert_period_open(p_period, format('posting the payroll of %s', p_period));

  -- Timesheets: all approved, and every active hourly employee has some.
  SELECT array_agg(t.employee_no || ' ' || to_char(t.work_date, 'YYYY-MM-DD') ORDER BY t.employee_no, t.work_date)
    INTO v_items
    FROM payroll.timesheets t
   WHERE t.work_date BETWEEN v_start AND v_end AND t.approved_by IS NULL;
  IF v_items IS NOT NULL THEN
    v_problems := v_problems || ('unapproved timesheets: ' || payroll.list_for_message(v_items));
  END IF;
  SELECT array_agg(e.employee_no ORDER BY e.employee_no) INTO v_items
    FROM hr.employees e
    JOIN payroll.rates_on(v_end) r ON r.employee_no = e.employee_no
   WHERE e.active AND r.pay_type = 'hourly'
     AND e.hire_date <= v_end AND (e.termination_date IS NULL OR e.termination_date >= v_start)
     AND NOT EXISTS (SELECT 1 FROM payroll.timesheets t
                      WHERE t.employee_no = e.employee_no AND t.work_date BETWEEN v_start AND v_end);
  IF v_items IS NOT NULL THEN
    v_problems := v_problems || (format('missing timesheets (active hourly employees with none in %s): ', p_period)
                                 || payroll.list_for_message(v_items));
  END IF;
  SELECT array_agg(DISTINCT t.employee_no ORDER BY t.employee_no) INTO v_items
    FROM payroll.timesheets t
   WHERE t.work_date BETWEEN v_start AND v_end
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

  -- Gross pay. Hourly: per ISO week (Monday–Sunday; date_trunc('week') is the Monday), counting the
  -- week's days inside the period, hours up to 40 are regular and the rest overtime at 1.5×.
  -- Salaried: annual salary / 12. Each amount is rounded to cents, half away from zero (= half up here).
  INSERT INTO payroll.payslips AS ps
    (run_id, employee_no, pay_type, hourly_rate, annual_salary, regular_hours, overtime_hours,
     regular_pay, overtime_pay, salary_pay, gross, taxable, taxes, deductions, net, bank_routing, bank_account)
  WITH rate AS (
    SELECT * FROM payroll.rates_on(v_end)
  ), weeks AS (
    SELECT t.employee_no, date_trunc('week', t.work_date::timestamp) AS week, sum(t.hours) AS hours
      FROM payroll.timesheets t
     WHERE t.work_date BETWEEN v_start AND v_end
     GROUP BY 1, 2
  ), hourly AS (
    SELECT w.employee_no, 'hourly' AS pay_type, r.hourly_rate, NULL::numeric AS annual_salary,
           sum(least(w.hours, 40)) AS regular_hours, sum(greatest(w.hours - 40, 0)) AS overtime_hours,
           round(sum(least(w.hours, 40)) * r.hourly_rate, 2) AS regular_pay,
           round(sum(greatest(w.hours - 40, 0)) * r.hourly_rate * 1.5, 2) AS overtime_pay,
           0::numeric AS salary_pay
      FROM weeks w
      JOIN rate r ON r.employee_no = w.employee_no AND r.pay_type = 'hourly'
     GROUP BY w.employee_no, r.hourly_rate
  ), salaried AS (
    SELECT e.employee_no, 'salaried', NULL::numeric, r.annual_salary, 0::numeric, 0::numeric,
           0::numeric, 0::numeric, round(r.annual_salary / 12, 2)
      FROM hr.employees e
      JOIN rate r ON r.employee_no = e.employee_no AND r.pay_type = 'salaried'
     WHERE e.active AND e.hire_date <= v_end AND (e.termination_date IS NULL OR e.termination_date >= v_start)
  ), pay AS (
    SELECT * FROM hourly UNION ALL SELECT * FROM salaried
  )
  SELECT v_run.id, pay.employee_no, pay.pay_type, pay.hourly_rate, pay.annual_salary,
         pay.regular_hours, pay.overtime_hours, pay.regular_pay, pay.overtime_pay, pay.salary_pay,
         pay.regular_pay + pay.overtime_pay + pay.salary_pay,
         pay.regular_pay + pay.overtime_pay + pay.salary_pay, 0, 0,
         pay.regular_pay + pay.overtime_pay + pay.salary_pay,
         e.bank_routing, e.bank_account
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

  -- Taxes: the monthly bracket set in effect, on gross or on taxable (gross − pre-tax deductions),
  -- the base capped by what is left of the annual wage cap after the year's completed runs.
  INSERT INTO payroll.payslip_lines (payslip_id, kind, code, description, base, amount)
  WITH slip AS (
    SELECT ps.id, ps.employee_no, ps.gross,
           greatest(ps.gross - coalesce((
             SELECT sum(l.amount) FROM payroll.payslip_lines l
               JOIN payroll.deduction_types dt ON dt.code = l.code
              WHERE l.payslip_id = ps.id AND l.kind = 'deduction' AND dt.pre_tax), 0), 0) AS taxable
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
    SELECT ps.employee_no, l.code, sum(l.base) AS base
      FROM payroll.payslip_lines l
      JOIN payroll.payslips ps ON ps.id = l.payslip_id
      JOIN payroll.runs r ON r.id = ps.run_id
     WHERE l.kind = 'tax' AND r.status = 'completed'
       AND r.period >= left(p_period, 4) || '-01' AND r.period < p_period
     GROUP BY ps.employee_no, l.code
  ), based AS (
    SELECT s.id, tx.code, tx.name,
           CASE WHEN tx.annual_wage_cap IS NULL THEN b.full_base
                ELSE least(b.full_base, greatest(tx.annual_wage_cap - coalesce(y.base, 0), 0)) END AS base
      FROM slip s
     CROSS JOIN payroll.taxes tx
     CROSS JOIN LATERAL (SELECT CASE tx.base WHEN 'gross' THEN s.gross ELSE s.taxable END AS full_base) b
      LEFT JOIN year_to_date y ON y.employee_no = s.employee_no AND y.code = tx.code
     WHERE tx.active AND EXISTS (SELECT 1 FROM bracket_set bs WHERE bs.tax_code = tx.code)
  )
  SELECT b.id, 'tax', b.code, b.name, b.base,
         round(coalesce((SELECT sum(br.rate * greatest(least(b.base, coalesce(br.upper_bound, b.base)) - br.lower_bound, 0))
                           FROM brackets br WHERE br.tax_code = b.code), 0), 2)
    FROM based b;

  -- Net = gross − taxes − deductions; never negative.
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
     SET taxable = greatest(ps.gross - x.pre_tax, 0), taxes = x.taxes, deductions = x.deductions,
         net = ps.gross - x.taxes - x.deductions
    FROM (SELECT p2.id,
                 coalesce(sum(l.amount) FILTER (WHERE l.kind = 'tax'), 0) AS taxes,
                 coalesce(sum(l.amount) FILTER (WHERE l.kind = 'deduction'), 0) AS deductions,
                 coalesce(sum(l.amount) FILTER (WHERE l.kind = 'deduction' AND dt.pre_tax), 0) AS pre_tax
            FROM payroll.payslips p2
            LEFT JOIN payroll.payslip_lines l ON l.payslip_id = p2.id
            LEFT JOIN payroll.deduction_types dt ON l.kind = 'deduction' AND dt.code = l.code
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
  SELECT ps.id, 'earning', 'SALARY', 'Monthly salary (annual / 12)', NULL, NULL, ps.salary_pay
    FROM payroll.payslips ps WHERE ps.run_id = v_run.id AND ps.pay_type = 'salaried';

  UPDATE payroll.runs r
     SET employee_count = x.n, total_gross = x.gross, total_taxes = x.taxes,
         total_deductions = x.deductions, total_net = x.net
    FROM (SELECT count(*) AS n, sum(ps.gross) AS gross, sum(ps.taxes) AS taxes,
                 sum(ps.deductions) AS deductions, sum(ps.net) AS net
            FROM payroll.payslips ps WHERE ps.run_id = v_run.id) x
   WHERE r.id = v_run.id
  RETURNING r.* INTO v_run;

  -- One entry: debit wages expense with the gross; credit each tax's and deduction's liability
  -- account with what was withheld, and net pay payable with the net. Zero amounts get no line.
  SELECT * INTO v_settings FROM payroll.settings;
  SELECT jsonb_agg(jsonb_build_object('account', j.account, 'debit', j.debit, 'credit', j.credit, 'memo', j.memo)
                   ORDER BY j.debit = 0, j.account)
    INTO v_lines
    FROM (
      SELECT v_settings.wages_expense_account AS account, v_run.total_gross AS debit, 0::numeric AS credit,
             'gross pay' AS memo
      UNION ALL
      SELECT c.account, 0, sum(c.amount), string_agg(c.memo, ', ' ORDER BY c.memo)
        FROM (SELECT tx.liability_account AS account, sum(l.amount) AS amount, 'withheld ' || tx.code AS memo
                FROM payroll.payslip_lines l
                JOIN payroll.payslips ps ON ps.id = l.payslip_id
                JOIN payroll.taxes tx ON tx.code = l.code
               WHERE ps.run_id = v_run.id AND l.kind = 'tax'
               GROUP BY tx.liability_account, tx.code
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

-- The payroll register: one row per employee and run.
CREATE VIEW payroll.register AS
  SELECT r.period, r.id AS run_id, r.status AS run_status, ps.employee_no, e.last_name, e.first_name,
         e.department, ps.pay_type, ps.hourly_rate, ps.annual_salary, ps.regular_hours, ps.overtime_hours,
         ps.regular_pay, ps.overtime_pay, ps.salary_pay, ps.gross, ps.taxable, ps.taxes, ps.deductions, ps.net,
         CASE WHEN ps.bank_account IS NULL THEN 'check' ELSE 'bank' END AS payment_method
    FROM payroll.payslips ps
    JOIN payroll.runs r ON r.id = ps.run_id
    JOIN hr.employees e ON e.employee_no = ps.employee_no;

-- Every line of every payslip: earnings, deductions, taxes.
CREATE VIEW payroll.register_lines AS
  SELECT r.period, r.id AS run_id, ps.employee_no, l.kind, l.code, l.description, l.quantity, l.rate, l.base, l.amount,
         CASE l.kind WHEN 'earning' THEN 1 WHEN 'deduction' THEN 2 ELSE 3 END AS kind_order
    FROM payroll.payslip_lines l
    JOIN payroll.payslips ps ON ps.id = l.payslip_id
    JOIN payroll.runs r ON r.id = ps.run_id;

-- Rows of the bank payment file: the net pay of each employee paid by bank transfer in a completed
-- run, to the account the employee master had at the close.
CREATE VIEW payroll.bank_payments AS
  SELECT r.period, r.id AS run_id, ps.employee_no, e.last_name || ', ' || e.first_name AS name,
         ps.bank_routing AS routing, ps.bank_account AS account, ps.net AS amount
    FROM payroll.payslips ps
    JOIN payroll.runs r ON r.id = ps.run_id
    JOIN hr.employees e ON e.employee_no = ps.employee_no
   WHERE r.status = 'completed' AND ps.net > 0 AND ps.bank_account IS NOT NULL;

-- The journal entry each completed run posted.
CREATE VIEW payroll.journal AS
  SELECT r.period, r.id AS run_id, je.id AS entry_id, je.entry_date, jl.line_no, jl.account_code,
         a.name AS account_name, jl.debit, jl.credit, jl.memo
    FROM payroll.runs r
    JOIN gl.journal_entries je ON je.id = r.journal_entry_id
    JOIN gl.journal_lines jl ON jl.entry_id = je.id
    JOIN gl.accounts a ON a.code = jl.account_code;
