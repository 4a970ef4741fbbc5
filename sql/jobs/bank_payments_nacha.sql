-- Entries of the NACHA bank file (format nacha) for a period's completed payroll run: net pay per
-- employee paid by bank transfer, read from payroll.bank_payments like the CSV file.
-- Parameters: period (YYYY-MM), effective_date (YYYY-MM-DD, or empty for the period's pay date).
SELECT routing, account, account_type, amount, employee_no AS id, name,
       to_char(coalesce(nullif(:'effective_date', '')::date, payroll.pay_date(period)), 'YYYY-MM-DD') AS effective_date
  FROM payroll.bank_payments
 WHERE period = :'period'
 ORDER BY employee_no;
