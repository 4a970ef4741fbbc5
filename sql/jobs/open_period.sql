-- Opens a payroll period and its fiscal period, creating them when missing; a closed period is refused.
-- Parameters: period (YYYY-MM). Returns: period, status ('opened' or 'already open').
SELECT :'period' AS period, payroll.open_period(:'period') AS status;
