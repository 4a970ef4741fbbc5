-- Ships every open order in full and invoices each shipment (posting Dr receivables / Cr sales).
-- Stands in for the warehouse and billing systems in the demo and the nightly job.
-- Parameters: ship_date (YYYY-MM-DD).
-- Each order line goes in its own carton with an SSCC-18; a stand-in weight of 1 lb of carton plus
-- 0.5 lb a unit. The bill of lading and tracking number are made up from the order id.
WITH shipped AS (
  INSERT INTO sales.shipments (order_id, ship_date, carrier, tracking_no, bill_of_lading)
  SELECT o.id, :'ship_date', 'UPSN', '1Z' || lpad(o.id::text, 12, '0'), 'BOL' || lpad(o.id::text, 10, '0')
    FROM sales.orders o
   WHERE o.status = 'open'
     AND NOT EXISTS (SELECT 1 FROM sales.shipments s WHERE s.order_id = o.id)
  RETURNING id, order_id
), packed AS (
  INSERT INTO sales.shipment_packages (shipment_id, package_no, weight)
  SELECT shipped.id, l.line_no, round(1 + 0.5 * l.quantity, 3)
    FROM shipped JOIN sales.order_lines l ON l.order_id = shipped.order_id
)
INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity, package_no)
SELECT shipped.id, l.line_no, l.order_id, l.line_no, l.quantity, l.line_no
  FROM shipped JOIN sales.order_lines l ON l.order_id = shipped.order_id;

WITH todo AS MATERIALIZED (
  SELECT s.id FROM sales.shipments s
   WHERE NOT EXISTS (SELECT 1 FROM sales.invoices x WHERE x.shipment_id = s.id)
   ORDER BY s.id
)
SELECT count(sales.invoice_shipment(todo.id, :'ship_date')) AS invoices_created FROM todo;

SELECT i.invoice_no, i.customer_no, i.invoice_date, i.due_date, sum(il.amount) AS amount
  FROM sales.invoices i JOIN sales.invoice_lines il ON il.invoice_id = i.id
 WHERE i.invoice_date = :'ship_date'
 GROUP BY i.invoice_no, i.customer_no, i.invoice_date, i.due_date
 ORDER BY i.invoice_no;
