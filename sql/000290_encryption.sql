-- Encryption at rest of bank account numbers and tax ids (issue 19).
-- Append-only: never edit this file once landed; add a new numbered migration instead.
--
-- The values are encrypted by erp in Node (AES-256-GCM, src/compliance/keys.ts) before they reach
-- PostgreSQL: `enc:v1:<key id>:<base64url>`. The keys are never in the database. A value without
-- the prefix is clear text written before encryption (or by SQL outside erp); `erp keys status`
-- counts them and `erp keys rotate` encrypts them.
CREATE SCHEMA IF NOT EXISTS compliance;

-- The columns that hold encrypted values: the loader (sink postgres) encrypts what it writes to
-- them, `erp keys rotate` re-encrypts them, and only an export that declares `decrypt` reads them clear.
CREATE TABLE compliance.encrypted_columns (
  table_name  text NOT NULL CHECK (table_name ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'),
  column_name text NOT NULL CHECK (column_name ~ '^[a-z_][a-z0-9_]*$'),
  PRIMARY KEY (table_name, column_name)
);

ALTER TABLE hr.employees ADD COLUMN tax_id text;
ALTER TABLE sales.customers ADD COLUMN tax_id text;
ALTER TABLE purch.vendors ADD COLUMN tax_id text;

INSERT INTO compliance.encrypted_columns (table_name, column_name) VALUES
  ('hr.employees', 'bank_account'),
  ('hr.employees', 'tax_id'),
  ('payroll.payslips', 'bank_account'),
  ('sales.customers', 'tax_id'),
  ('purch.vendors', 'tax_id');

-- The digits are validated by the pipeline (validate: pattern) before encryption; the table takes
-- the digits (legacy) or an encrypted value.
ALTER TABLE hr.employees DROP CONSTRAINT employees_bank_account_check;
ALTER TABLE hr.employees ADD CONSTRAINT employees_bank_account_stored
  CHECK (bank_account ~ '^[0-9]{4,17}$' OR bank_account ~ '^enc:v1:[A-Za-z0-9_-]{1,32}:[A-Za-z0-9_-]+$');

-- A completed run's payslips stay history, except their bank details: `erp keys rotate`
-- re-encrypts them and `erp erase person` removes them. Nothing else of the payslip may change.
CREATE OR REPLACE FUNCTION payroll.guard_completed_run() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_run_id bigint;
  v_status text;
BEGIN
  IF TG_TABLE_NAME = 'runs' THEN
    IF OLD.status = 'completed' THEN
      RAISE EXCEPTION 'payroll run % (period %) is completed and cannot be changed or deleted', OLD.id, OLD.period
        USING ERRCODE = 'ERP01';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF TG_TABLE_NAME = 'payslips' THEN
    IF TG_OP = 'UPDATE'
       AND (NEW.bank_account, NEW.bank_routing) IS DISTINCT FROM (OLD.bank_account, OLD.bank_routing)
       AND to_jsonb(NEW) - 'bank_account' - 'bank_routing' = to_jsonb(OLD) - 'bank_account' - 'bank_routing' THEN
      RETURN NEW;
    END IF;
    v_run_id := CASE TG_OP WHEN 'INSERT' THEN NEW.run_id ELSE OLD.run_id END;
  ELSE
    SELECT ps.run_id INTO v_run_id FROM payroll.payslips ps
     WHERE ps.id = CASE TG_OP WHEN 'INSERT' THEN NEW.payslip_id ELSE OLD.payslip_id END;
  END IF;
  SELECT r.status INTO v_status FROM payroll.runs r WHERE r.id = v_run_id;
  IF v_status = 'completed' THEN
    RAISE EXCEPTION 'payroll run % is completed: its payslips cannot be added, changed or deleted', v_run_id
      USING ERRCODE = 'ERP01';
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
