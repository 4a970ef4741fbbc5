-- The pay date of a payroll period: the first weekday (Monday–Friday) after the period's last day.
-- The NACHA bank file carries it as the effective entry date (pipelines/bank-payments-export.yaml).
-- Append-only: never edit this file once landed; add a new numbered migration instead.
CREATE FUNCTION payroll.pay_date(p_period text) RETURNS date
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT d::date
    FROM generate_series(gl.period_end(p_period) + 1, gl.period_end(p_period) + 7, interval '1 day') AS g(d)
   WHERE extract(isodow FROM d) < 6
   ORDER BY d LIMIT 1
$$;
