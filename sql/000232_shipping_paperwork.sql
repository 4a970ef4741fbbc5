-- A shipment's paperwork — carrier, tracking number, bill of lading, packaging, weights, cartons — is
-- not in the ledger, so it can still be completed once the period is closed: an 856 refused for a
-- missing bill of lading (000230) can be fixed and sent after the month-end close. What moves stock
-- or value stays refused in a closed period (000133): a shipment's order, date and location, and a
-- shipment line's order line and quantity; inserting or deleting either.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

DROP TRIGGER shipments_period_open ON sales.shipments;
CREATE TRIGGER shipments_period_open BEFORE INSERT OR DELETE ON sales.shipments
  FOR EACH ROW EXECUTE FUNCTION gl.guard_subledger_period('ship_date', 'a shipment');
CREATE TRIGGER shipments_period_open_update BEFORE UPDATE ON sales.shipments
  FOR EACH ROW
  WHEN ((OLD.id, OLD.shipment_no, OLD.order_id, OLD.ship_date, OLD.location)
        IS DISTINCT FROM (NEW.id, NEW.shipment_no, NEW.order_id, NEW.ship_date, NEW.location))
  EXECUTE FUNCTION gl.guard_subledger_period('ship_date', 'a shipment');

DROP TRIGGER shipment_lines_period_open ON sales.shipment_lines;
CREATE TRIGGER shipment_lines_period_open BEFORE INSERT OR DELETE ON sales.shipment_lines
  FOR EACH ROW EXECUTE FUNCTION gl.guard_subledger_period('-', 'a shipment line', 'sales.shipments', 'shipment_id', 'id', 'ship_date');
CREATE TRIGGER shipment_lines_period_open_update BEFORE UPDATE ON sales.shipment_lines
  FOR EACH ROW
  WHEN ((OLD.shipment_id, OLD.line_no, OLD.order_id, OLD.order_line_no, OLD.quantity)
        IS DISTINCT FROM (NEW.shipment_id, NEW.line_no, NEW.order_id, NEW.order_line_no, NEW.quantity))
  EXECUTE FUNCTION gl.guard_subledger_period('-', 'a shipment line', 'sales.shipments', 'shipment_id', 'id', 'ship_date');
