-- Closes a fiscal period: the ledger refuses postings into it from then on.
-- Parameters: period (YYYY-MM). Returns: period, status ('closed' or 'already closed').
SELECT :'period' AS period, gl.close_period(:'period') AS status;
