-- X12 EDI: control number counters, the interchange ledger (inbound and outbound), and the
-- functions that allocate control numbers, record receipts and apply partners' 997/999s.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
CREATE SCHEMA IF NOT EXISTS edi;

-- Last control numbers used per partner. Allocation is one INSERT … ON CONFLICT DO UPDATE …
-- RETURNING (edi.allocate_control_numbers): the row lock serialises concurrent workers, and the
-- numbers are committed with the statement, so they survive restarts.
-- Wrap-around: each counter runs 1 … 999999999 (ISA13 is 9 digits, GS06 at most 9, ST02 4–9),
-- then continues at 1. A counter value of 0 means "none used yet".
CREATE TABLE edi.control_numbers (
  partner    text PRIMARY KEY,
  isa13      bigint NOT NULL DEFAULT 0 CHECK (isa13 BETWEEN 0 AND 999999999),
  gs06       bigint NOT NULL DEFAULT 0 CHECK (gs06 BETWEEN 0 AND 999999999),
  st02       bigint NOT NULL DEFAULT 0 CHECK (st02 BETWEEN 0 AND 999999999),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Allocates one ISA13, p_groups GS06 and p_sets ST02 for p_partner; returns the last number of
-- each range. The numbers of a range of k ending at L are L-k+1 … L, modulo the wrap-around.
-- Call it in its own (autocommitted) statement, not inside a transaction that may roll back
-- after the file was sent: gaps are harmless, repeats are not.
CREATE FUNCTION edi.allocate_control_numbers(p_partner text, p_groups int, p_sets int)
RETURNS TABLE (isa13 bigint, gs06 bigint, st02 bigint)
LANGUAGE sql AS $$
  INSERT INTO edi.control_numbers AS c (partner, isa13, gs06, st02)
  VALUES (p_partner, 1, ((p_groups - 1) % 999999999) + 1, ((p_sets - 1) % 999999999) + 1)
  ON CONFLICT (partner) DO UPDATE SET
    isa13 = (c.isa13 % 999999999) + 1,
    gs06 = ((c.gs06 + p_groups - 1) % 999999999) + 1,
    st02 = ((c.st02 + p_sets - 1) % 999999999) + 1,
    updated_at = now()
  RETURNING c.isa13, c.gs06, c.st02
$$;

-- One row per interchange received or sent.
--   in:  received → loaded | rejected, or duplicate (same partner and ISA13 already received)
--   out: sent → accepted | rejected_by_partner (from the partner's 997/999)
CREATE TABLE edi.interchanges (
  id              bigserial PRIMARY KEY,
  direction       text NOT NULL CHECK (direction IN ('in', 'out')),
  partner         text NOT NULL,
  isa13           bigint NOT NULL CHECK (isa13 BETWEEN 0 AND 999999999),
  status          text NOT NULL CHECK (status IN ('received', 'loaded', 'duplicate', 'rejected',
                                                  'sent', 'accepted', 'rejected_by_partner')),
  file_name       text NOT NULL,
  sha256          text,
  usage           text CHECK (usage IN ('P', 'T', 'I')),
  group_count     int NOT NULL DEFAULT 0,
  set_count       int NOT NULL DEFAULT 0,
  -- in: ISA13 of the 997/999 we sent back; out: ISA13 of the partner's 997/999.
  ack_isa13       bigint,
  message         text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  sent_at         timestamptz,
  acknowledged_at timestamptz,
  CHECK ((direction = 'in') = (status IN ('received', 'loaded', 'duplicate', 'rejected')))
);
-- An interchange is received (or sent) once per partner and ISA13. Re-deliveries are recorded as
-- status 'duplicate' rows, and a rejected interchange may be sent again with the same ISA13,
-- so those two statuses are outside the constraint.
CREATE UNIQUE INDEX interchanges_partner_direction_isa13 ON edi.interchanges (partner, direction, isa13)
  WHERE status NOT IN ('duplicate', 'rejected');
CREATE INDEX interchanges_awaiting_ack ON edi.interchanges (partner, sent_at) WHERE status = 'sent';

-- Functional groups of each interchange (partners' 997/999s refer to our GS06).
CREATE TABLE edi.groups (
  id              bigserial PRIMARY KEY,
  interchange_id  bigint NOT NULL REFERENCES edi.interchanges (id) ON DELETE CASCADE,
  partner         text NOT NULL,
  direction       text NOT NULL CHECK (direction IN ('in', 'out')),
  functional_id   text NOT NULL,
  gs06            bigint NOT NULL,
  version         text NOT NULL,
  set_count       int NOT NULL DEFAULT 0,
  status          text NOT NULL CHECK (status IN ('received', 'loaded', 'rejected', 'sent', 'accepted',
                                                  'partially_accepted', 'rejected_by_partner')),
  -- AK901: the code we sent (in) or received (out).
  ack_code        text,
  acknowledged_at timestamptz,
  UNIQUE (interchange_id, gs06)
);
CREATE INDEX groups_lookup ON edi.groups (partner, direction, functional_id, gs06);

-- Transaction sets of each group, with the business key they carry (PO or invoice number).
CREATE TABLE edi.transaction_sets (
  id            bigserial PRIMARY KEY,
  group_id      bigint NOT NULL REFERENCES edi.groups (id) ON DELETE CASCADE,
  st01          text NOT NULL,
  st02          text NOT NULL,
  document_key  text,
  status        text NOT NULL CHECK (status IN ('received', 'loaded', 'rejected', 'sent', 'accepted',
                                                'rejected_by_partner')),
  -- AK502–AK506 / IK502–IK506 codes.
  ack_codes     text[] NOT NULL DEFAULT '{}',
  UNIQUE (group_id, st02)
);

-- Records an inbound interchange: status 'received', or a 'duplicate' row when the partner's ISA13
-- is already held by a received/loaded one. Returns the new row's id and whether it is a duplicate.
CREATE FUNCTION edi.receive_interchange(p_partner text, p_isa13 bigint, p_file_name text, p_sha256 text,
                                        p_usage text, p_group_count int, p_set_count int)
RETURNS TABLE (id bigint, duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO edi.interchanges AS i (direction, partner, isa13, status, file_name, sha256, usage, group_count, set_count)
  VALUES ('in', p_partner, p_isa13, 'received', p_file_name, p_sha256, p_usage, p_group_count, p_set_count)
  ON CONFLICT (partner, direction, isa13) WHERE status NOT IN ('duplicate', 'rejected') DO NOTHING
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

-- Applies one group of a partner's 997/999 to our outbound interchange: the group's AK901 code
-- (A/E accepted, P partially accepted, anything else rejected) and per set AK501/IK501 codes
-- (p_sets: {"0001": "A", "0002": "R"}; a set the ack does not list follows the group: accepted
-- unless the group is rejected). The interchange becomes 'accepted' once all its groups are
-- accepted, 'rejected_by_partner' once all are acknowledged and any is not. Returns the
-- interchange id, or NULL when no outbound group matches (an ack for something we never sent).
CREATE FUNCTION edi.apply_functional_ack(p_partner text, p_functional_id text, p_gs06 bigint, p_group_code text,
                                         p_sets jsonb, p_ack_isa13 bigint)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_group edi.groups%ROWTYPE;
  v_group_accepted boolean := p_group_code IN ('A', 'E');
  v_pending int;
  v_bad int;
BEGIN
  SELECT g.* INTO v_group FROM edi.groups g
   WHERE g.partner = p_partner AND g.direction = 'out' AND g.functional_id = p_functional_id AND g.gs06 = p_gs06
   ORDER BY g.id DESC LIMIT 1
   FOR UPDATE;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  UPDATE edi.transaction_sets s SET
    status = CASE
      WHEN p_sets ? s.st02 THEN CASE WHEN p_sets ->> s.st02 IN ('A', 'E') THEN 'accepted' ELSE 'rejected_by_partner' END
      WHEN p_group_code IN ('A', 'E', 'P') THEN 'accepted'
      ELSE 'rejected_by_partner' END
   WHERE s.group_id = v_group.id;
  UPDATE edi.groups g SET
    status = CASE WHEN v_group_accepted THEN 'accepted'
                  WHEN p_group_code = 'P' THEN 'partially_accepted'
                  ELSE 'rejected_by_partner' END,
    ack_code = p_group_code,
    acknowledged_at = now()
   WHERE g.id = v_group.id;
  SELECT count(*) FILTER (WHERE g.acknowledged_at IS NULL),
         count(*) FILTER (WHERE g.status <> 'accepted')
    INTO v_pending, v_bad
    FROM edi.groups g WHERE g.interchange_id = v_group.interchange_id;
  UPDATE edi.interchanges i SET
    status = CASE WHEN v_pending > 0 THEN i.status
                  WHEN v_bad = 0 THEN 'accepted'
                  ELSE 'rejected_by_partner' END,
    ack_isa13 = p_ack_isa13,
    acknowledged_at = CASE WHEN v_pending = 0 THEN now() ELSE i.acknowledged_at END,
    updated_at = now()
   WHERE i.id = v_group.interchange_id;
  RETURN v_group.interchange_id;
END
$$;
