-- Ships every open order in full and invoices each shipment (posting Dr receivables / Cr sales).
-- Stands in for the warehouse and billing systems in the demo and the nightly job.
-- Parameters: ship_date (YYYY-MM-DD).
WITH shipped AS (
  INSERT INTO sales.shipments (order_id, ship_date, carrier, tracking_no)
  SELECT o.id, :'ship_date', 'UPSN', '1Z' || lpad(o.id::text, 12, '0')
    FROM sales.orders o
   WHERE o.status = 'open'
     AND NOT EXISTS (SELECT 1 FROM sales.shipments s WHERE s.order_id = o.id)
  RETURNING id, order_id
)
INSERT INTO sales.shipment_lines (shipment_id, line_no, order_id, order_line_no, quantity)
SELECT shipped.id, l.line_no, l.order_id, l.line_no, l.quantity
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
