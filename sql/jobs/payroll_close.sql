-- Closes a payroll period: payslips, one balanced journal entry, period closed (docs/payroll.md).
-- Refusals raise SQLSTATE ERP01 with the reason. Roll the transaction back for a dry run.
-- Parameters: period (YYYY-MM).
-- Returns one row: run_id, period, employee_count, total_gross, total_taxes, total_deductions, total_net, journal_entry_id.
SELECT * FROM payroll.close_period(:'period');
