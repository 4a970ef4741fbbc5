-- Rows of the bank payment file for a period's completed payroll run: net pay per employee paid by
-- bank transfer (employees without bank details are paid by check and are not in it).
-- Parameters: period (YYYY-MM).
SELECT employee_no, name, routing, account, amount
  FROM payroll.bank_payments
 WHERE period = :'period'
 ORDER BY employee_no;
