-- Closes a fiscal period at month end: refused while its payroll period is open or its net pay is
-- not disbursed; then every posting and every subledger row dated in it is refused.
-- Parameters: period (YYYY-MM). Returns: period, status ('closed' or 'already closed').
SELECT :'period' AS period, gl.month_end_close(:'period') AS status;
