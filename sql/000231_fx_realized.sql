-- Realized exchange differences: a payment on a foreign-currency invoice brings in cash at the rate of
-- the day it is received, and relieves the receivable at the rate the invoice posted at (000134). The
-- difference is a realized exchange gain (credit) or loss (debit), posted in the same entry, so the
-- entry balances, the AR subledger still equals the receivable account, and cash is what the bank
-- credited in the functional currency.
--
--   EUR 1,000.00 invoiced at 1.0835 (receivable 1,083.50), received at 1.0920:
--     Dr 1000 cash 1,092.00   Cr 1200 receivables 1,083.50   Cr 4910 exchange gain 8.50
--
-- Replaces sales.post_payment of 000134 (same trigger).
-- Append-only: never edit this file once landed; add a new numbered migration instead.

INSERT INTO gl.accounts (code, name, type) VALUES
  ('4910', 'Realized exchange gain', 'revenue'),
  ('6910', 'Realized exchange loss', 'expense');

ALTER TABLE gl.settings
  ADD COLUMN fx_gain_account text NOT NULL DEFAULT '4910' REFERENCES gl.accounts (code),
  ADD COLUMN fx_loss_account text NOT NULL DEFAULT '6910' REFERENCES gl.accounts (code);

-- functional_amount (000134) stays what the payment relieves of the receivable; exchange_rate is the
-- rate of the day received, cash_amount the cash in the functional currency at that rate, and
-- exchange_difference = cash_amount - functional_amount (> 0 a gain, < 0 a loss).
ALTER TABLE sales.payments
  ADD COLUMN exchange_rate numeric(18,8) CHECK (exchange_rate > 0),
  ADD COLUMN cash_amount numeric(14,2),
  ADD COLUMN exchange_difference numeric(14,2);

CREATE OR REPLACE FUNCTION sales.post_payment() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  v_inv      sales.invoices%ROWTYPE;
  v_balance  numeric;
  v_settings sales.settings%ROWTYPE;
  v_gl       gl.settings%ROWTYPE;
  v_lines    jsonb;
  v_memo     text;
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
  -- The invoice's currency at the rate declared for the day the money came in.
  NEW.exchange_rate := gl.rate_on(coalesce(v_inv.currency, (SELECT s.functional_currency FROM gl.settings s)), NEW.received_on);
  NEW.cash_amount := round(NEW.amount * NEW.exchange_rate, 2);
  NEW.exchange_difference := NEW.cash_amount - NEW.functional_amount;
  SELECT * INTO v_settings FROM sales.settings;
  SELECT * INTO v_gl FROM gl.settings;
  v_memo := coalesce(NEW.reference, v_inv.invoice_no);
  IF coalesce(v_inv.exchange_rate, 1) = 1 AND NEW.exchange_rate = 1 THEN
    v_lines := jsonb_build_array(
      jsonb_build_object('account', v_settings.cash_account, 'debit', NEW.cash_amount, 'memo', v_memo),
      jsonb_build_object('account', v_settings.receivable_account, 'credit', NEW.functional_amount, 'memo', v_inv.invoice_no));
  ELSE
    v_lines := jsonb_build_array(
      jsonb_build_object('account', v_settings.cash_account, 'debit', NEW.cash_amount, 'memo', v_memo,
                         'currency', v_inv.currency, 'fx_amount', NEW.amount, 'rate', NEW.exchange_rate),
      jsonb_build_object('account', v_settings.receivable_account, 'credit', NEW.functional_amount, 'memo', v_inv.invoice_no,
                         'currency', v_inv.currency, 'fx_amount', NEW.amount, 'rate', v_inv.exchange_rate));
  END IF;
  IF NEW.exchange_difference > 0 THEN
    v_lines := v_lines || jsonb_build_array(jsonb_build_object('account', v_gl.fx_gain_account,
      'credit', NEW.exchange_difference, 'memo', format('exchange gain on %s', v_inv.invoice_no)));
  ELSIF NEW.exchange_difference < 0 THEN
    v_lines := v_lines || jsonb_build_array(jsonb_build_object('account', v_gl.fx_loss_account,
      'debit', -NEW.exchange_difference, 'memo', format('exchange loss on %s', v_inv.invoice_no)));
  END IF;
  NEW.journal_entry_id := gl.post_entry(
    NEW.received_on,
    format('Payment on invoice %s from %s', v_inv.invoice_no, v_inv.customer_no)
      || CASE WHEN NEW.exchange_rate <> 1 THEN format(' (%s %s at %s)', v_inv.currency, NEW.amount, NEW.exchange_rate) ELSE '' END,
    v_lines,
    'sales-payment', NEW.id::text);
  RETURN NEW;
END
$$;
