-- The sales and inventory subledgers post to the ledger, so each ties to its control account:
--   * currency: the ledger keeps the functional currency (gl.settings); an invoice in another currency
--     posts at the rate declared for its date (gl.exchange_rates), the rate recorded on the invoice
--     and on its journal lines (currency, fx_amount, fx_rate);
--   * customer payments post Dr cash, Cr receivables (at the invoice's rate): AR subledger = GL 1200;
--   * every stock movement carries its value at cost and posts it: receipts and opening stock at their
--     unit cost, shipments at the moving average cost (Dr 5000 COGS, Cr 1300): inventory at cost = GL 1300.
-- Replaces gl.post_entry and sales.invoice_shipment of 000002.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

INSERT INTO gl.accounts (code, name, type) VALUES ('3950', 'Opening balance equity', 'equity');

CREATE TABLE gl.settings (
  id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
  functional_currency text NOT NULL CHECK (functional_currency ~ '^[A-Z]{3}$')
);
INSERT INTO gl.settings (functional_currency) VALUES ('USD');

-- Declared exchange rates: 1 unit of currency = rate units of the functional currency, from rate_date
-- until the next declared date.
CREATE TABLE gl.exchange_rates (
  currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  rate_date   date NOT NULL,
  rate        numeric(18,8) NOT NULL CHECK (rate > 0),
  declared_by text NOT NULL DEFAULT session_user,
  declared_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (currency, rate_date)
);

-- The rate of p_currency on p_date: 1 for the functional currency, else the latest declared on or
-- before p_date; refuses when none is declared.
CREATE FUNCTION gl.rate_on(p_currency text, p_date date) RETURNS numeric
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_rate numeric;
BEGIN
  IF p_currency = (SELECT s.functional_currency FROM gl.settings s) THEN
    RETURN 1;
  END IF;
  SELECT r.rate INTO v_rate FROM gl.exchange_rates r
   WHERE r.currency = p_currency AND r.rate_date <= p_date ORDER BY r.rate_date DESC LIMIT 1;
  IF v_rate IS NULL THEN
    RAISE EXCEPTION 'no exchange rate for % declared on or before %; declare one in gl.exchange_rates (currency, rate_date, rate)',
      p_currency, p_date
      USING ERRCODE = 'ERP01';
  END IF;
  RETURN v_rate;
END
$$;

-- A line in a foreign currency keeps the original amount and the rate beside the functional amounts.
ALTER TABLE gl.journal_lines
  ADD COLUMN currency text CHECK (currency ~ '^[A-Z]{3}$'),
  ADD COLUMN fx_amount numeric(14,2),
  ADD COLUMN fx_rate numeric(18,8) CHECK (fx_rate > 0),
  ADD CONSTRAINT journal_lines_fx CHECK ((currency IS NULL) = (fx_amount IS NULL) AND (currency IS NULL) = (fx_rate IS NULL));

-- As 000002's, and a line may carry "currency", "fx_amount" and "rate" (its debit / credit are then
-- the functional amounts).
CREATE OR REPLACE FUNCTION gl.post_entry(
  p_entry_date  date,
  p_description text,
  p_lines       jsonb,
  p_source      text DEFAULT 'manual',
  p_source_ref  text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  IF jsonb_typeof(p_lines) IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'journal entry lines must be a JSON array of {account, debit, credit, memo}'
      USING ERRCODE = 'ERP01';
  END IF;
  INSERT INTO gl.journal_entries (entry_date, description, source, source_ref)
    VALUES (p_entry_date, p_description, p_source, p_source_ref)
    RETURNING id INTO v_id;
  INSERT INTO gl.journal_lines (entry_id, line_no, account_code, debit, credit, memo, currency, fx_amount, fx_rate)
    SELECT v_id, l.n, l.account, coalesce(l.debit, 0), coalesce(l.credit, 0), l.memo, l.currency, l.fx_amount, l.rate
      FROM ROWS FROM (jsonb_to_recordset(p_lines)
                        AS (account text, debit numeric, credit numeric, memo text, currency text, fx_amount numeric, rate numeric))
           WITH ORDINALITY AS l(account, debit, credit, memo, currency, fx_amount, rate, n);
  PERFORM gl.assert_entry_balanced(v_id);
  RETURN v_id;
END
$$;

ALTER TABLE sales.settings ADD COLUMN cash_account text NOT NULL DEFAULT '1000' REFERENCES gl.accounts (code);

-- exchange_rate: the rate the invoice posted at; functional_amount: its total in the functional currency.
ALTER TABLE sales.invoices
  ADD COLUMN exchange_rate numeric(18,8) CHECK (exchange_rate > 0),
  ADD COLUMN functional_amount numeric(14,2);
ALTER TABLE sales.payments
  ADD COLUMN functional_amount numeric(14,2),
  ADD COLUMN journal_entry_id bigint REFERENCES gl.journal_entries (id);

-- Invoices a shipment (as 000002's) in the order's currency, posting the functional amounts at the
-- rate declared for the invoice date, the rate recorded on the invoice and the journal lines.
CREATE OR REPLACE FUNCTION sales.invoice_shipment(p_shipment_id bigint, p_invoice_date date DEFAULT current_date)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_ship       sales.shipments%ROWTYPE;
  v_order      sales.orders%ROWTYPE;
  v_terms      int;
  v_invoice    sales.invoices%ROWTYPE;
  v_existing   text;
  v_total      numeric;
  v_rate       numeric;
  v_functional numeric;
  v_settings   sales.settings%ROWTYPE;
  v_fx         jsonb := '{}';
  v_entry      bigint;
BEGIN
  SELECT * INTO v_ship FROM sales.shipments s WHERE s.id = p_shipment_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'shipment % does not exist', p_shipment_id USING ERRCODE = 'ERP01';
  END IF;
  SELECT i.invoice_no INTO v_existing FROM sales.invoices i WHERE i.shipment_id = p_shipment_id;
  IF v_existing IS NOT NULL THEN
    RAISE EXCEPTION 'shipment % is already invoiced (%)', v_ship.shipment_no, v_existing USING ERRCODE = 'ERP01';
  END IF;
  SELECT * INTO v_order FROM sales.orders o WHERE o.id = v_ship.order_id;
  v_rate := gl.rate_on(v_order.currency, p_invoice_date);
  SELECT c.payment_terms_days INTO v_terms FROM sales.customers c WHERE c.customer_no = v_order.customer_no;
  INSERT INTO sales.invoices (customer_no, order_id, shipment_id, invoice_date, due_date, currency, exchange_rate)
    VALUES (v_order.customer_no, v_order.id, v_ship.id, p_invoice_date, p_invoice_date + v_terms, v_order.currency, v_rate)
    RETURNING * INTO v_invoice;
  INSERT INTO sales.invoice_lines (invoice_id, line_no, sku, description, order_line_no, quantity, uom, unit_price)
    SELECT v_invoice.id, row_number() OVER (ORDER BY sl.line_no), ol.sku, it.description, ol.line_no,
           sl.quantity, ol.uom, ol.unit_price
      FROM sales.shipment_lines sl
      JOIN sales.order_lines ol ON ol.order_id = sl.order_id AND ol.line_no = sl.order_line_no
      JOIN sales.items it ON it.sku = ol.sku
     WHERE sl.shipment_id = p_shipment_id;
  SELECT coalesce(sum(il.amount), 0) INTO v_total FROM sales.invoice_lines il WHERE il.invoice_id = v_invoice.id;
  IF v_total = 0 THEN
    RAISE EXCEPTION 'shipment % has nothing to invoice', v_ship.shipment_no USING ERRCODE = 'ERP01';
  END IF;
  v_functional := round(v_total * v_rate, 2);
  IF v_rate <> 1 THEN
    v_fx := jsonb_build_object('currency', v_order.currency, 'fx_amount', v_total, 'rate', v_rate);
  END IF;
  SELECT * INTO v_settings FROM sales.settings;
  v_entry := gl.post_entry(
    p_invoice_date,
    format('Invoice %s to %s', v_invoice.invoice_no, v_order.customer_no)
      || CASE WHEN v_rate <> 1 THEN format(' (%s %s at %s)', v_order.currency, v_total, v_rate) ELSE '' END,
    jsonb_build_array(
      jsonb_build_object('account', v_settings.receivable_account, 'debit', v_functional, 'memo', v_invoice.invoice_no) || v_fx,
      jsonb_build_object('account', v_settings.revenue_account, 'credit', v_functional, 'memo', v_invoice.invoice_no) || v_fx),
    'sales', v_invoice.invoice_no);
  UPDATE sales.invoices i SET journal_entry_id = v_entry, functional_amount = v_functional WHERE i.id = v_invoice.id;
  UPDATE sales.orders o SET status = 'invoiced'
   WHERE o.id = v_order.id AND o.status = 'shipped'
     AND NOT EXISTS (SELECT 1 FROM sales.shipments s
                      WHERE s.order_id = o.id AND NOT EXISTS (SELECT 1 FROM sales.invoices i WHERE i.shipment_id = s.id));
  RETURN v_invoice.id;
END
$$;

-- A customer payment on a posted invoice posts Dr cash, Cr receivables, in the functional currency at
-- the invoice's rate (no exchange difference is booked). A payment is never more than the invoice's
-- balance, and once recorded it is not changed or deleted (record a correcting entry instead).
-- Payments on invoices that never posted (made outside sales.invoice_shipment) post nothing.
CREATE FUNCTION sales.post_payment() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_inv      sales.invoices%ROWTYPE;
  v_balance  numeric;
  v_settings sales.settings%ROWTYPE;
  v_fx       jsonb := '{}';
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'customer payment % is recorded: it cannot be changed or deleted; record a correction instead', OLD.id
      USING ERRCODE = 'ERP01';
  END IF;
  SELECT * INTO v_inv FROM sales.invoices i WHERE i.id = NEW.invoice_id FOR UPDATE;
  SELECT b.balance INTO v_balance FROM sales.invoice_balances b WHERE b.invoice_id = NEW.invoice_id;
  IF NEW.amount > v_balance THEN
    RAISE EXCEPTION 'payment of % on invoice % is more than its balance of %', NEW.amount, v_inv.invoice_no, v_balance
      USING ERRCODE = 'ERP01';
  END IF;
  NEW.functional_amount := CASE WHEN NEW.amount = v_balance AND v_inv.functional_amount IS NOT NULL
                                -- The last payment clears the invoice to the cent in the functional currency too.
                                THEN v_inv.functional_amount - coalesce((SELECT sum(p.functional_amount) FROM sales.payments p
                                                                          WHERE p.invoice_id = NEW.invoice_id), 0)
                                ELSE round(NEW.amount * coalesce(v_inv.exchange_rate, 1), 2) END;
  IF v_inv.journal_entry_id IS NULL THEN
    RETURN NEW;
  END IF;
  IF coalesce(v_inv.exchange_rate, 1) <> 1 THEN
    v_fx := jsonb_build_object('currency', v_inv.currency, 'fx_amount', NEW.amount, 'rate', v_inv.exchange_rate);
  END IF;
  SELECT * INTO v_settings FROM sales.settings;
  NEW.journal_entry_id := gl.post_entry(
    NEW.received_on,
    format('Payment on invoice %s from %s', v_inv.invoice_no, v_inv.customer_no),
    jsonb_build_array(
      jsonb_build_object('account', v_settings.cash_account, 'debit', NEW.functional_amount, 'memo', coalesce(NEW.reference, v_inv.invoice_no)) || v_fx,
      jsonb_build_object('account', v_settings.receivable_account, 'credit', NEW.functional_amount, 'memo', v_inv.invoice_no) || v_fx),
    'sales-payment', NEW.id::text);
  RETURN NEW;
END
$$;
CREATE TRIGGER payments_post BEFORE INSERT OR UPDATE OR DELETE ON sales.payments
  FOR EACH ROW EXECUTE FUNCTION sales.post_payment();

-- The AR subledger in the functional currency: each posted invoice's functional amount less its
-- payments. Its total equals the balance of the receivable account.
CREATE VIEW sales.ar_subledger AS
  SELECT i.id AS invoice_id, i.invoice_no, i.customer_no, i.currency, i.exchange_rate,
         i.functional_amount AS amount,
         coalesce((SELECT sum(p.functional_amount) FROM sales.payments p WHERE p.invoice_id = i.id), 0) AS paid,
         i.functional_amount - coalesce((SELECT sum(p.functional_amount) FROM sales.payments p WHERE p.invoice_id = i.id), 0) AS balance
    FROM sales.invoices i
   WHERE i.journal_entry_id IS NOT NULL;

-------------------------------------------------------------------------------------------------------
-- inventory at cost
-------------------------------------------------------------------------------------------------------

-- The account each kind of stock movement posts against inventory (transfers move value between
-- locations and post nothing).
CREATE TABLE inv.settings (
  id                boolean PRIMARY KEY DEFAULT true CHECK (id),
  inventory_account text NOT NULL REFERENCES gl.accounts (code)
);
INSERT INTO inv.settings (inventory_account) VALUES ('1300');
CREATE TABLE inv.movement_accounts (
  reason  text PRIMARY KEY CHECK (reason IN ('opening', 'receipt', 'shipment', 'adjustment')),
  account text NOT NULL REFERENCES gl.accounts (code)
);
INSERT INTO inv.movement_accounts (reason, account) VALUES
  ('opening', '3950'), ('receipt', '2000'), ('shipment', '5000'), ('adjustment', '6900');

-- value: the movement at cost (signed like quantity), what it posted to the inventory account.
ALTER TABLE inv.stock_movements
  ADD COLUMN value numeric(14,2),
  ADD COLUMN journal_entry_id bigint REFERENCES gl.journal_entries (id);

-- Values and posts a stock movement. Stock coming in needs its unit cost; stock going out is taken at
-- the SKU's moving average cost (all locations) and never below zero on hand at its location. The
-- last unit out takes the remaining value, so a SKU with nothing on hand has no value left.
-- Movements are append-only: correct with an 'adjustment'.
CREATE FUNCTION inv.value_movement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_qty      numeric;
  v_value    numeric;
  v_here     numeric;
  v_account  text;
  v_inv      text;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'stock movement % is recorded: it cannot be changed or deleted; record an adjustment instead', OLD.id
      USING ERRCODE = 'ERP01';
  END IF;
  IF NEW.reason = 'transfer' THEN
    RETURN NEW;
  END IF;
  -- One SKU's movements are valued one at a time.
  PERFORM pg_advisory_xact_lock(hashtextextended('inv.stock ' || NEW.sku, 0));
  IF NEW.quantity > 0 THEN
    IF NEW.unit_cost IS NULL THEN
      RAISE EXCEPTION 'stock % of % (%) needs its unit_cost: inventory is kept at cost', NEW.reason, NEW.sku, NEW.quantity
        USING ERRCODE = 'ERP01';
    END IF;
    NEW.value := round(NEW.quantity * NEW.unit_cost, 2);
  ELSE
    SELECT coalesce(sum(m.quantity), 0), coalesce(sum(m.value), 0) INTO v_qty, v_value
      FROM inv.stock_movements m WHERE m.sku = NEW.sku;
    SELECT coalesce(sum(m.quantity), 0) INTO v_here
      FROM inv.stock_movements m WHERE m.sku = NEW.sku AND m.location = NEW.location;
    IF v_here + NEW.quantity < 0 THEN
      RAISE EXCEPTION '% of % cannot leave %: only % on hand', -NEW.quantity, NEW.sku, NEW.location, v_here
        USING ERRCODE = 'ERP01', HINT = 'receive the stock (or load the opening stock at cost) first';
    END IF;
    NEW.unit_cost := round(v_value / v_qty, 4);
    NEW.value := CASE WHEN v_qty + NEW.quantity = 0 THEN -v_value ELSE round(NEW.quantity * v_value / v_qty, 2) END;
  END IF;
  SELECT ma.account INTO v_account FROM inv.movement_accounts ma WHERE ma.reason = NEW.reason;
  SELECT s.inventory_account INTO v_inv FROM inv.settings s;
  IF NEW.value <> 0 THEN
    NEW.journal_entry_id := gl.post_entry(
      NEW.moved_at::date,
      format('Stock %s: %s %s at %s', NEW.reason, NEW.quantity, NEW.sku, NEW.location),
      CASE WHEN NEW.value > 0 THEN
        jsonb_build_array(
          jsonb_build_object('account', v_inv, 'debit', NEW.value, 'memo', coalesce(NEW.source_ref, NEW.reason)),
          jsonb_build_object('account', v_account, 'credit', NEW.value, 'memo', coalesce(NEW.source_ref, NEW.reason)))
      ELSE
        jsonb_build_array(
          jsonb_build_object('account', v_account, 'debit', -NEW.value, 'memo', coalesce(NEW.source_ref, NEW.reason)),
          jsonb_build_object('account', v_inv, 'credit', -NEW.value, 'memo', coalesce(NEW.source_ref, NEW.reason)))
      END,
      'inventory', 'movement ' || NEW.id);
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER stock_movements_value BEFORE INSERT OR UPDATE OR DELETE ON inv.stock_movements
  FOR EACH ROW EXECUTE FUNCTION inv.value_movement();

-- Inventory at cost per SKU and location; its total equals the balance of the inventory account.
CREATE VIEW inv.valuation AS
  SELECT m.sku, m.location, sum(m.quantity) AS quantity, coalesce(sum(m.value), 0) AS value
    FROM inv.stock_movements m
   GROUP BY m.sku, m.location;
