-- AR aging as of a date: open invoice balances in buckets current / 1-30 / 31-60 / 61-90 / over 90
-- days past due. Parameters: as_of (YYYY-MM-DD).
SELECT customer_no, customer_name, invoice_no, invoice_date, due_date, days_past_due, amount, paid, balance,
       bucket_current, bucket_1_30, bucket_31_60, bucket_61_90, bucket_over_90
  FROM sales.ar_aging(:'as_of');
