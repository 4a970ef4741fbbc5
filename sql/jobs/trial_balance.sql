-- Trial balance of a fiscal period: balance brought forward, the period's debits and credits, and
-- the closing balance (debit-positive) per account. sum(debit) = sum(credit), sum(balance) = 0.
-- Parameters: period (YYYY-MM).
SELECT account_code, account_name, account_type, opening_balance, debit, credit, balance
  FROM gl.trial_balance
 WHERE period = :'period'
 ORDER BY account_code;
