-- The payroll register of a period's completed run: one row per employee.
-- Parameters: period (YYYY-MM).
SELECT employee_no, last_name, first_name, department, pay_type, hourly_rate, annual_salary,
       regular_hours, overtime_hours, regular_pay, overtime_pay, salary_pay,
       gross, taxable, taxes, deductions, net, payment_method
  FROM payroll.register
 WHERE period = :'period' AND run_status = 'completed'
 ORDER BY employee_no;
