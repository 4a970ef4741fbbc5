-- Routing numbers a bank accepts: the ABA check digit (hr.is_aba_routing) AND a Federal Reserve
-- routing symbol as the first two digits: 00 (US government), 01–12 (Federal Reserve districts),
-- 21–32 (thrift institutions), 61–72 (electronic transactions), 80 (traveler's checks).
-- Append-only: never edit this file once landed; add a new numbered migration instead.

CREATE FUNCTION hr.is_routing_number(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT hr.is_aba_routing(p)
     AND (substr(p, 1, 2)::int BETWEEN 0 AND 12
       OR substr(p, 1, 2)::int BETWEEN 21 AND 32
       OR substr(p, 1, 2)::int BETWEEN 61 AND 72
       OR substr(p, 1, 2)::int = 80)
$$;

-- NOT VALID: rows already stored are left as they are (correct them with an import); every new or
-- changed row is checked.
ALTER TABLE hr.employees
  ADD CONSTRAINT employees_bank_routing_prefix CHECK (hr.is_routing_number(bank_routing)) NOT VALID;
