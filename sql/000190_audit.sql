-- The audit trail: an append-only table of the actions that change what erp does or holds, each
-- row chained to the one before it by SHA-256, so an edited, deleted or reordered row shows.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
CREATE SCHEMA IF NOT EXISTS audit;

-- seq is given under the table lock as the last seq + 1, so the chain is total and gap-free.
-- hash = sha256(audit.payload(seq, at, actor, host, action, subject, detail, prev_hash)); the
-- first row's prev_hash is 64 zeros. `erp audit verify` recomputes every hash in Node.
CREATE TABLE audit.events (
  seq       bigint PRIMARY KEY,
  at        timestamptz NOT NULL,
  actor     text NOT NULL,
  host      text NOT NULL,
  action    text NOT NULL,
  subject   text NOT NULL,
  detail    jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash text NOT NULL,
  hash      text NOT NULL
);
CREATE INDEX events_at ON audit.events (at);

-- The text a row's hash covers: a JSON array of strings, written as JSON.stringify writes it, so
-- a verifier in any language recomputes it from the exported columns.
CREATE FUNCTION audit.payload(
  p_seq bigint, p_at timestamptz, p_actor text, p_host text, p_action text, p_subject text,
  p_detail jsonb, p_prev text
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT '[' || array_to_string(ARRAY[
    to_json(p_seq::text)::text,
    to_json(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text,
    to_json(p_actor)::text, to_json(p_host)::text, to_json(p_action)::text, to_json(p_subject)::text,
    to_json(p_detail::text)::text, to_json(p_prev)::text], ',') || ']'
$$;

-- Appends one event. The SHARE ROW EXCLUSIVE lock conflicts with itself, not with readers: appends
-- are serialised until the appending transaction commits, so no two rows take the same previous hash.
CREATE FUNCTION audit.append(
  p_actor text, p_host text, p_action text, p_subject text, p_detail jsonb DEFAULT '{}'::jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_seq bigint;
  v_prev text;
  v_at timestamptz := date_trunc('microseconds', clock_timestamp());
BEGIN
  LOCK TABLE audit.events IN SHARE ROW EXCLUSIVE MODE;
  SELECT seq + 1, hash INTO v_seq, v_prev FROM audit.events ORDER BY seq DESC LIMIT 1;
  v_seq := coalesce(v_seq, 1);
  v_prev := coalesce(v_prev, repeat('0', 64));
  INSERT INTO audit.events (seq, at, actor, host, action, subject, detail, prev_hash, hash)
  VALUES (v_seq, v_at, p_actor, p_host, p_action, p_subject, coalesce(p_detail, '{}'::jsonb), v_prev,
    encode(sha256(convert_to(audit.payload(v_seq, v_at, p_actor, p_host, p_action, p_subject,
      coalesce(p_detail, '{}'::jsonb), v_prev), 'UTF8')), 'hex'));
  RETURN v_seq;
END
$$;

-- Rows are never changed or removed, whoever asks: the table's owner is refused too.
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit.events is append-only: % refused', TG_OP USING ERRCODE = 'ERP19';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON audit.events
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- Roles that are not the owner may read and append, never change: an application role created
-- here once per cluster gets exactly that.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'erp_app') THEN
    CREATE ROLE erp_app NOLOGIN;
  END IF;
END
$$;
REVOKE ALL ON audit.events FROM PUBLIC;
GRANT USAGE ON SCHEMA audit TO erp_app;
GRANT SELECT, INSERT ON audit.events TO erp_app;
GRANT EXECUTE ON FUNCTION audit.append(text, text, text, text, jsonb) TO erp_app;

-- A file loaded again with --force replaces its ledger row: the only UPDATE of runner.ingested_files.
CREATE FUNCTION audit.on_force_reload() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_by text;
  v_host text;
BEGIN
  SELECT requested_by, host INTO v_by, v_host FROM runner.runs WHERE id = NEW.run_id;
  PERFORM audit.append(coalesce(v_by, 'unknown'), coalesce(v_host, ''), 'file.force_reload',
    'run:' || NEW.run_id,
    jsonb_build_object('pipeline', NEW.pipeline, 'sha256', NEW.sha256, 'file', NEW.file,
      'previous_run', OLD.run_id, 'previous_file', OLD.file));
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER ingested_audit_force AFTER UPDATE OF run_id ON runner.ingested_files
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.run_id IS DISTINCT FROM NEW.run_id) EXECUTE FUNCTION audit.on_force_reload();
