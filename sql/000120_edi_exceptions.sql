-- EDI inbound, issue 12: business errors held for an operator, unused segments per partner, TA1s,
-- and interchanges held because their ISA13 was reused with different content.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

-- 'held': an interchange whose ISA13 repeats an earlier one's with different content; nothing of
-- it is loaded and it is never acknowledged as accepted, until an operator decides.
ALTER TABLE edi.interchanges DROP CONSTRAINT interchanges_status_check;
ALTER TABLE edi.interchanges ADD CONSTRAINT interchanges_status_check
  CHECK (status IN ('received', 'loaded', 'duplicate', 'rejected', 'held',
                    'sent', 'accepted', 'rejected_by_partner'));
ALTER TABLE edi.interchanges DROP CONSTRAINT interchanges_check;
ALTER TABLE edi.interchanges ADD CONSTRAINT interchanges_check
  CHECK ((direction = 'in') = (status IN ('received', 'loaded', 'duplicate', 'rejected', 'held')));

-- A held interchange does not hold its ISA13: the partial unique index ignores it like a duplicate
-- (receive_interchange's ON CONFLICT names the same predicate, so it is recreated with it).
DROP INDEX edi.interchanges_partner_direction_isa13;
CREATE UNIQUE INDEX interchanges_partner_direction_isa13 ON edi.interchanges (partner, direction, isa13)
  WHERE status NOT IN ('duplicate', 'rejected', 'held');

CREATE OR REPLACE FUNCTION edi.receive_interchange(p_partner text, p_isa13 bigint, p_file_name text, p_sha256 text,
                                                   p_usage text, p_group_count int, p_set_count int)
RETURNS TABLE (id bigint, duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO edi.interchanges AS i (direction, partner, isa13, status, file_name, sha256, usage, group_count, set_count)
  VALUES ('in', p_partner, p_isa13, 'received', p_file_name, p_sha256, p_usage, p_group_count, p_set_count)
  ON CONFLICT (partner, direction, isa13) WHERE status NOT IN ('duplicate', 'rejected', 'held') DO NOTHING
  RETURNING i.id INTO v_id;
  IF v_id IS NOT NULL THEN
    RETURN QUERY SELECT v_id, false;
    RETURN;
  END IF;
  INSERT INTO edi.interchanges AS i (direction, partner, isa13, status, file_name, sha256, usage, group_count, set_count, message)
  VALUES ('in', p_partner, p_isa13, 'duplicate', p_file_name, p_sha256, p_usage, p_group_count, p_set_count,
          format('interchange %s from %s was already received', lpad(p_isa13::text, 9, '0'), p_partner))
  RETURNING i.id INTO v_id;
  RETURN QUERY SELECT v_id, true;
END
$$;

-- in: SHA-256 of the interchange's content from its first GS to its last GE, to tell a re-delivery
-- (same content) from a reused control number (different content).
ALTER TABLE edi.interchanges ADD COLUMN content_sha256 text;
-- out: the partner's TA1 for this interchange (TA104 A/E/R and TA105 note code).
ALTER TABLE edi.interchanges ADD COLUMN ta1_code text;
ALTER TABLE edi.interchanges ADD COLUMN ta1_note text;
ALTER TABLE edi.interchanges ADD COLUMN ta1_at timestamptz;

-- A purchase order that is valid X12 but fails a business rule (unknown item, ship-to…), held
-- because the partner profile says business_errors: hold. Its 997 accepted it; `erp edi reprocess`
-- loads it once master data is fixed (status 'loaded' and order_id set in the same transaction as
-- the order, so it is loaded exactly once).
CREATE TABLE edi.held_orders (
  id             bigserial PRIMARY KEY,
  partner        text NOT NULL,
  interchange_id bigint NOT NULL REFERENCES edi.interchanges (id),
  file_name      text NOT NULL,
  isa13          text NOT NULL,
  gs06           text NOT NULL,
  st02           text NOT NULL,
  customer_po    text,
  -- The set as read: one array of elements per segment (tag first), and its component separator.
  segments       jsonb NOT NULL CHECK (jsonb_typeof(segments) = 'array'),
  component      text NOT NULL,
  problems       text[] NOT NULL,
  status         text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'loaded')),
  order_id       bigint REFERENCES sales.orders (id),
  held_at        timestamptz NOT NULL DEFAULT now(),
  checked_at     timestamptz,
  loaded_at      timestamptz,
  UNIQUE (interchange_id, gs06, st02)
);
CREATE INDEX held_orders_open ON edi.held_orders (partner) WHERE status = 'held';

-- Segments partners send that the mapping does not read: first seen, then counted.
CREATE TABLE edi.unused_segments (
  partner       text NOT NULL,
  -- `SAC` (header) or `PO1/AMT` (inside a line loop).
  segment       text NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  first_file    text NOT NULL,
  times_seen    bigint NOT NULL DEFAULT 0,
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partner, segment)
);
