-- Reports over the ERP core: the trial balance per fiscal period, invoice balances and AR aging.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

-- Trial balance: per fiscal period and account, the balance brought forward, the period's debits and
-- credits, and the balance at the period's end. Balances are debit-positive (debits − credits) and
-- cumulative over all earlier periods (there are no year-end closing entries). An account appears in a
-- period when it moved in it or has a balance. For every period sum(debit) = sum(credit) and
-- sum(balance) = 0.
CREATE VIEW gl.trial_balance AS
  WITH movement AS (
    SELECT je.period, jl.account_code, sum(jl.debit) AS debit, sum(jl.credit) AS credit
      FROM gl.journal_lines jl
      JOIN gl.journal_entries je ON je.id = jl.entry_id
     GROUP BY je.period, jl.account_code
  )
  SELECT fp.period, a.code AS account_code, a.name AS account_name, a.type AS account_type,
         b.opening AS opening_balance,
         coalesce(m.debit, 0.00) AS debit,
         coalesce(m.credit, 0.00) AS credit,
         b.opening + coalesce(m.debit, 0) - coalesce(m.credit, 0) AS balance
    FROM gl.fiscal_periods fp
   CROSS JOIN gl.accounts a
    LEFT JOIN movement m ON m.period = fp.period AND m.account_code = a.code
   CROSS JOIN LATERAL (
     SELECT coalesce(sum(e.debit - e.credit), 0.00) AS opening
       FROM movement e
      WHERE e.account_code = a.code AND e.period < fp.period) b
   WHERE m.account_code IS NOT NULL OR b.opening <> 0;

-- Every invoice with its amount, what has been paid and what is still owed (as of now).
CREATE VIEW sales.invoice_balances AS
  SELECT i.id AS invoice_id, i.invoice_no, i.customer_no, i.invoice_date, i.due_date, i.status,
         t.amount, coalesce(p.paid, 0) AS paid, t.amount - coalesce(p.paid, 0) AS balance
    FROM sales.invoices i
   CROSS JOIN LATERAL (SELECT coalesce(sum(il.amount), 0) AS amount FROM sales.invoice_lines il WHERE il.invoice_id = i.id) t
    LEFT JOIN LATERAL (SELECT sum(pm.amount) AS paid FROM sales.payments pm WHERE pm.invoice_id = i.id) p ON true;

-- AR aging as of a date: each invoice dated on or before p_as_of that is not void and still has a
-- balance (payments received after p_as_of do not count), in one bucket by days past due
-- (p_as_of − due_date): current (not yet due, ≤ 0), 1–30, 31–60, 61–90, over 90.
CREATE FUNCTION sales.ar_aging(p_as_of date)
RETURNS TABLE (
  customer_no    text,
  customer_name  text,
  invoice_no     text,
  invoice_date   date,
  due_date       date,
  days_past_due  int,
  amount         numeric,
  paid           numeric,
  balance        numeric,
  bucket_current numeric,
  bucket_1_30    numeric,
  bucket_31_60   numeric,
  bucket_61_90   numeric,
  bucket_over_90 numeric
)
LANGUAGE sql STABLE AS $$
  SELECT x.customer_no, x.customer_name, x.invoice_no, x.invoice_date, x.due_date,
         greatest(x.days, 0), x.amount, x.paid, x.balance,
         CASE WHEN x.days <= 0 THEN x.balance ELSE 0.00 END,
         CASE WHEN x.days BETWEEN 1 AND 30 THEN x.balance ELSE 0.00 END,
         CASE WHEN x.days BETWEEN 31 AND 60 THEN x.balance ELSE 0.00 END,
         CASE WHEN x.days BETWEEN 61 AND 90 THEN x.balance ELSE 0.00 END,
         CASE WHEN x.days > 90 THEN x.balance ELSE 0.00 END
    FROM (SELECT c.customer_no, c.name AS customer_name, i.invoice_no, i.invoice_date, i.due_date,
                 p_as_of - i.due_date AS days, t.amount, coalesce(p.paid, 0) AS paid,
                 t.amount - coalesce(p.paid, 0) AS balance
            FROM sales.invoices i
            JOIN sales.customers c ON c.customer_no = i.customer_no
           CROSS JOIN LATERAL (SELECT coalesce(sum(il.amount), 0) AS amount
                                 FROM sales.invoice_lines il WHERE il.invoice_id = i.id) t
            LEFT JOIN LATERAL (SELECT sum(pm.amount) AS paid
                                 FROM sales.payments pm
                                WHERE pm.invoice_id = i.id AND pm.received_on <= p_as_of) p ON true
           WHERE i.status <> 'void' AND i.invoice_date <= p_as_of) x
   WHERE x.balance <> 0
   ORDER BY x.customer_no, x.due_date, x.invoice_no
$$;
