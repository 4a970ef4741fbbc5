-- Fiscal periods that stay closed: every subledger refuses rows dated in a closed period, and a
-- closed period is reopened only through gl.reopen_period, which records who, when and why.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

-- Refuses touching a closed period (a period that does not exist is not refused here: a subledger
-- row that posts to the ledger is refused by the posting). FOR SHARE makes a concurrent
-- gl.close_period wait for this transaction, as gl.assert_period_open does for postings.
CREATE FUNCTION gl.assert_period_not_closed(p_period text, p_what text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
BEGIN
  SELECT fp.status INTO v_status FROM gl.fiscal_periods fp WHERE fp.period = p_period FOR SHARE;
  IF v_status = 'closed' THEN
    RAISE EXCEPTION 'fiscal period % is closed: % refused; date it in an open period instead', p_period, p_what
      USING ERRCODE = 'ERP01';
  END IF;
END
$$;

-- Trigger for a subledger table. Arguments: the date column, and what a row is called in messages.
-- Child tables (lines) pass four more: parent table, the child's foreign key column, the parent's key
-- column and the parent's date column; the row is then dated by its parent.
CREATE FUNCTION gl.guard_subledger_period() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_row  jsonb;
  v_date date;
  v_verb text;
BEGIN
  FOREACH v_row IN ARRAY CASE TG_OP WHEN 'INSERT' THEN ARRAY[to_jsonb(NEW)]
                                    WHEN 'DELETE' THEN ARRAY[to_jsonb(OLD)]
                                    ELSE ARRAY[to_jsonb(OLD), to_jsonb(NEW)] END LOOP
    IF TG_NARGS >= 6 THEN
      EXECUTE format('SELECT (%I)::date FROM %s WHERE %I::text = $1', TG_ARGV[5], TG_ARGV[2]::regclass, TG_ARGV[4])
        INTO v_date USING v_row ->> TG_ARGV[3];
    ELSE
      v_date := (v_row ->> TG_ARGV[0])::timestamptz::date;
    END IF;
    CONTINUE WHEN v_date IS NULL;
    v_verb := CASE TG_OP WHEN 'INSERT' THEN 'recording' WHEN 'DELETE' THEN 'deleting' ELSE 'changing' END;
    PERFORM gl.assert_period_not_closed(gl.period_of(v_date),
      format('%s %s dated %s', v_verb, TG_ARGV[1], v_date));
  END LOOP;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER payments_period_open BEFORE INSERT OR UPDATE OR DELETE ON sales.payments
  FOR EACH ROW EXECUTE FUNCTION gl.guard_subledger_period('received_on', 'a customer payment');
CREATE TRIGGER invoices_period_open BEFORE INSERT OR UPDATE OR DELETE ON sales.invoices
  FOR EACH ROW EXECUTE FUNCTION gl.guard_subledger_period('invoice_date', 'an invoice');
CREATE TRIGGER invoice_lines_period_open BEFORE INSERT OR UPDATE OR DELETE ON sales.invoice_lines
  FOR EACH ROW EXECUTE FUNCTION gl.guard_subledger_period('-', 'an invoice line', 'sales.invoices', 'invoice_id', 'id', 'invoice_date');
CREATE TRIGGER shipments_period_open BEFORE INSERT OR UPDATE OR DELETE ON sales.shipments
  FOR EACH ROW EXECUTE FUNCTION gl.guard_subledger_period('ship_date', 'a shipment');
CREATE TRIGGER shipment_lines_period_open BEFORE INSERT OR UPDATE OR DELETE ON sales.shipment_lines
  FOR EACH ROW EXECUTE FUNCTION gl.guard_subledger_period('-', 'a shipment line', 'sales.shipments', 'shipment_id', 'id', 'ship_date');
CREATE TRIGGER stock_movements_period_open BEFORE INSERT OR UPDATE OR DELETE ON inv.stock_movements
  FOR EACH ROW EXECUTE FUNCTION gl.guard_subledger_period('moved_at', 'a stock movement');
-- Payroll: timesheets are guarded by their payroll period (000130), payslips by their completed run,
-- and a run and its disbursements post to the ledger, which refuses a closed period.

-- Every reopening of a closed fiscal period: who, when, why, and the close it undid.
CREATE TABLE gl.period_reopenings (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  period            text NOT NULL REFERENCES gl.fiscal_periods (period),
  reopened_by       text NOT NULL CHECK (reopened_by <> ''),
  reopened_at       timestamptz NOT NULL DEFAULT now(),
  reason            text NOT NULL CHECK (length(btrim(reason)) >= 10),
  was_closed_at     timestamptz NOT NULL,
  was_closed_by     text,
  txid              bigint NOT NULL DEFAULT txid_current()
);
CREATE INDEX period_reopenings_period ON gl.period_reopenings (period, txid);

-- The record is the audit trail: never changed or deleted.
CREATE FUNCTION gl.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is an audit record: rows are never changed or deleted', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME
    USING ERRCODE = 'ERP01';
END
$$;
CREATE TRIGGER period_reopenings_append_only BEFORE UPDATE OR DELETE ON gl.period_reopenings
  FOR EACH ROW EXECUTE FUNCTION gl.refuse_change();

-- A closed period becomes open again only in a transaction that recorded the reopening (which
-- gl.reopen_period does); a closed period is never deleted.
CREATE FUNCTION gl.guard_period_reopen() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status = 'closed' THEN
      RAISE EXCEPTION 'fiscal period % is closed and cannot be deleted', OLD.period USING ERRCODE = 'ERP01';
    END IF;
    RETURN OLD;
  END IF;
  IF OLD.status = 'closed' AND NEW.status <> 'closed'
     AND NOT EXISTS (SELECT 1 FROM gl.period_reopenings r WHERE r.period = OLD.period AND r.txid = txid_current()) THEN
    RAISE EXCEPTION 'fiscal period % is closed: reopen it with gl.reopen_period(period, reopened_by, reason), which records who, when and why', OLD.period
      USING ERRCODE = 'ERP01';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER fiscal_periods_reopen_guard BEFORE UPDATE OR DELETE ON gl.fiscal_periods
  FOR EACH ROW EXECUTE FUNCTION gl.guard_period_reopen();

-- Reopens closed fiscal period p_period, recording who (p_by, default the session user), when and
-- why (p_reason, at least 10 characters). Returns the reopening's id. A period that is open is refused.
CREATE FUNCTION gl.reopen_period(p_period text, p_by text, p_reason text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_fp gl.fiscal_periods%ROWTYPE;
  v_id bigint;
BEGIN
  SELECT * INTO v_fp FROM gl.fiscal_periods fp WHERE fp.period = p_period FOR UPDATE;
  IF v_fp.period IS NULL THEN
    RAISE EXCEPTION 'fiscal period % does not exist', p_period USING ERRCODE = 'ERP01';
  ELSIF v_fp.status <> 'closed' THEN
    RAISE EXCEPTION 'fiscal period % is not closed: nothing to reopen', p_period USING ERRCODE = 'ERP01';
  ELSIF length(btrim(coalesce(p_reason, ''))) < 10 THEN
    RAISE EXCEPTION 'reopening fiscal period % needs a reason (at least 10 characters)', p_period USING ERRCODE = 'ERP01';
  END IF;
  INSERT INTO gl.period_reopenings (period, reopened_by, reason, was_closed_at, was_closed_by)
    VALUES (p_period, coalesce(nullif(btrim(p_by), ''), session_user), btrim(p_reason), v_fp.closed_at, v_fp.closed_by)
    RETURNING id INTO v_id;
  UPDATE gl.fiscal_periods fp SET status = 'open', closed_at = NULL, closed_by = NULL WHERE fp.period = p_period;
  RETURN v_id;
END
$$;

-- The month-end close of a fiscal period: refused while the period's payroll (when there is one) is
-- not closed or its net pay not disbursed, then gl.close_period. Returns 'closed' or 'already closed'.
CREATE FUNCTION gl.month_end_close(p_period text, p_closed_by text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_run    bigint;
  v_owed   numeric;
BEGIN
  SELECT p.status INTO v_status FROM payroll.periods p WHERE p.period = p_period;
  IF v_status = 'open' THEN
    RAISE EXCEPTION 'fiscal period % cannot close: its payroll period is still open; run payroll-close first', p_period
      USING ERRCODE = 'ERP01';
  END IF;
  SELECT r.id INTO v_run FROM payroll.runs r WHERE r.period = p_period AND r.status = 'completed';
  IF v_run IS NOT NULL THEN
    SELECT coalesce(sum(ps.net), 0) - coalesce((SELECT sum(d.amount) FROM payroll.disbursements d WHERE d.run_id = v_run), 0)
      INTO v_owed
      FROM payroll.payslips ps WHERE ps.run_id = v_run;
    IF v_owed <> 0 THEN
      RAISE EXCEPTION 'fiscal period % cannot close: % of net pay of payroll run % is not disbursed yet', p_period, v_owed, v_run
        USING ERRCODE = 'ERP01';
    END IF;
  END IF;
  RETURN gl.close_period(p_period, p_closed_by);
END
$$;
