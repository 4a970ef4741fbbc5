-- Every payslip line (earnings, deductions, taxes) of a period's completed run.
-- Parameters: period (YYYY-MM).
SELECT rl.employee_no, rl.kind, rl.code, rl.description, rl.quantity, rl.rate, rl.base, rl.amount
  FROM payroll.register_lines rl
  JOIN payroll.runs r ON r.id = rl.run_id
 WHERE rl.period = :'period' AND r.status = 'completed'
 ORDER BY rl.employee_no, rl.kind_order, rl.code;
