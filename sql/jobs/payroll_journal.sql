-- The journal entry a period's payroll run posted (what a dry run shows before rolling back).
-- Parameters: period (YYYY-MM).
SELECT entry_id, entry_date, line_no, account_code, account_name, debit, credit, memo
  FROM payroll.journal
 WHERE period = :'period'
 ORDER BY line_no;
