-- The payroll-close job's database work, in one transaction: close the period (payslips, one
-- balanced journal entry, period closed), then show the totals per employee and the journal entry.
-- A dry run executes all of it and rolls back, so what it prints is exactly what a real run commits.
-- Parameters: period (YYYY-MM).
SELECT * FROM payroll.close_period(:'period');

SELECT employee_no, last_name, first_name, pay_type, regular_hours, overtime_hours, gross, taxes, deductions, net
  FROM payroll.register
 WHERE period = :'period' AND run_status = 'completed'
 ORDER BY employee_no;

SELECT line_no, account_code, account_name, debit, credit, memo
  FROM payroll.journal
 WHERE period = :'period'
 ORDER BY line_no;
