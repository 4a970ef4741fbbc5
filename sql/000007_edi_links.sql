-- EDI links: which sales order came from which inbound transaction set, which invoice and shipment
-- went out in which interchange (so none is sent twice), and the text of every outbound interchange
-- until it is delivered (so a file committed as sent but not yet uploaded is delivered by the next run).
-- Append-only: never edit this file once landed; add a new numbered migration instead.

-- A sales order created from an inbound 850, with what the 850 said that sales.orders has no
-- column for (ship-to and bill-to codes, the buyer's part numbers per line), for the 810/856 back.
CREATE TABLE edi.inbound_orders (
  order_id       bigint PRIMARY KEY REFERENCES sales.orders (id) ON DELETE CASCADE,
  partner        text NOT NULL,
  interchange_id bigint NOT NULL REFERENCES edi.interchanges (id),
  gs06           text NOT NULL,
  st02           text NOT NULL,
  -- The mapped 850 header (mappings/x12/850-in.yaml field names).
  header         jsonb NOT NULL,
  -- The mapped 850 lines, in order: element n-1 belongs to sales.order_lines line_no n.
  lines          jsonb NOT NULL CHECK (jsonb_typeof(lines) = 'array')
);
CREATE INDEX inbound_orders_interchange ON edi.inbound_orders (interchange_id);

-- An invoice sent as an 810 (once: the primary key). To send one again, delete its row.
CREATE TABLE edi.sent_invoices (
  invoice_id     bigint PRIMARY KEY REFERENCES sales.invoices (id),
  partner        text NOT NULL,
  interchange_id bigint NOT NULL REFERENCES edi.interchanges (id),
  st02           text NOT NULL
);
CREATE INDEX sent_invoices_interchange ON edi.sent_invoices (interchange_id);

-- A shipment sent as an 856 (once: the primary key). To send one again, delete its row.
CREATE TABLE edi.sent_shipments (
  shipment_id    bigint PRIMARY KEY REFERENCES sales.shipments (id),
  partner        text NOT NULL,
  interchange_id bigint NOT NULL REFERENCES edi.interchanges (id),
  st02           text NOT NULL
);
CREATE INDEX sent_shipments_interchange ON edi.sent_shipments (interchange_id);

-- The exact text of each outbound interchange, committed with the interchange record before the
-- upload. delivered_at is set once the file is in the partner's directory; a row without it is
-- delivered by the next outbound run (same name, same control numbers).
CREATE TABLE edi.outbound_files (
  interchange_id bigint PRIMARY KEY REFERENCES edi.interchanges (id) ON DELETE CASCADE,
  partner        text NOT NULL,
  file_name      text NOT NULL,
  content        text NOT NULL,
  remote_path    text,
  delivered_at   timestamptz
);
CREATE INDEX outbound_files_undelivered ON edi.outbound_files (partner) WHERE delivered_at IS NULL;

-- Inbound files that could not be read at all (not X12, a bad ISA, an unknown sender, a cap
-- exceeded): nothing of them was loaded and no interchange was recorded. The file is in the
-- partner's error directory with its .error.txt; `erp edi status` lists these.
CREATE TABLE edi.failed_files (
  id         bigserial PRIMARY KEY,
  partner    text NOT NULL,
  file_name  text NOT NULL,
  sha256     text NOT NULL,
  size       bigint NOT NULL,
  error      text NOT NULL,
  moved_to   text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX failed_files_partner ON edi.failed_files (partner, created_at);
