-- Net pay paid out, after the bank file was written: one entry for the bank transfers, one for the
-- checks (the register lists their payees), each Dr net pay payable, Cr payroll cash. A second run
-- posts nothing. No row when the period has no completed run (a dry run: the close was rolled back).
-- Parameters: period (YYYY-MM).
SELECT r.period,
       payroll.disburse_net_pay(r.period, 'bank') AS bank,
       payroll.disburse_net_pay(r.period, 'check') AS checks
  FROM payroll.runs r
 WHERE r.period = :'period' AND r.status = 'completed';
