-- Approvals (segregation of duties) and the definitions each run used.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

-- A run of a job that requires approval waits, recorded but not queued, until a second person
-- approves it (then it is queued) or rejects it, or its approval expires (then it is cancelled).
ALTER TABLE runner.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runner.runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('awaiting_approval', 'queued', 'running', 'succeeded', 'failed', 'cancelled'));

-- The SHA-256 of every definition the run uses: [{kind, name, path, sha256}], taken when it is
-- requested, so an auditor can tell which version of a mapping loaded which rows.
ALTER TABLE runner.runs ADD COLUMN definitions jsonb NOT NULL DEFAULT '[]'::jsonb;

CREATE TABLE runner.approvals (
  run_id           bigint PRIMARY KEY REFERENCES runner.runs (id) ON DELETE CASCADE,
  distinct_from_requester boolean NOT NULL,
  requested_at     timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz,
  -- The dry run's report, shown to the approver.
  dry_run          text NOT NULL,
  decision         text CHECK (decision IN ('approved', 'rejected', 'expired')),
  decided_by       text,
  decided_at       timestamptz,
  reason           text
);
CREATE INDEX approvals_pending ON runner.approvals (expires_at) WHERE decision IS NULL;

-- A run requested (by anyone, from anywhere: CLI, worker, schedule) is audited by the insert
-- itself, at commit, so the audit lock is held only for the commit, not the transaction.
CREATE FUNCTION audit.on_run_requested() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT NEW.dry_run THEN
    PERFORM audit.append(NEW.requested_by, NEW.host,
      CASE WHEN NEW.status = 'awaiting_approval' THEN 'run.approval_requested' ELSE 'run.requested' END,
      'run:' || NEW.id,
      jsonb_build_object('kind', NEW.kind, 'name', NEW.name, 'params', NEW.params, 'options', NEW.options,
        'trigger', NEW.trigger, 'definitions', NEW.definitions));
  END IF;
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER runs_audit_requested AFTER INSERT ON runner.runs
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit.on_run_requested();

-- Ends the runs whose approval expired: cancelled, each with an audit row. Returns how many.
-- Called by erp approve, erp reject and erp approvals, and by the shipped expire-approvals job.
CREATE FUNCTION runner.expire_approvals(p_actor text, p_host text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  r record;
  n int := 0;
BEGIN
  FOR r IN
    SELECT a.run_id, a.expires_at FROM runner.approvals a JOIN runner.runs ru ON ru.id = a.run_id
    WHERE a.decision IS NULL AND a.expires_at <= now() AND ru.status = 'awaiting_approval'
    ORDER BY a.run_id FOR UPDATE OF a, ru SKIP LOCKED
  LOOP
    UPDATE runner.approvals SET decision = 'expired', decided_at = now() WHERE run_id = r.run_id;
    UPDATE runner.runs SET status = 'cancelled', finished_at = now(), error_kind = 'cancelled',
      error = 'approval expired at ' || to_char(r.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
        || ': nobody approved it in time'
    WHERE id = r.run_id;
    PERFORM audit.append(p_actor, p_host, 'run.approval_expired', 'run:' || r.run_id,
      jsonb_build_object('expires_at', r.expires_at));
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;
