-- A failed or cancelled run resumed (erp run --resume) is audited; one that an approver rejected,
-- or whose approval expired, is never resumed: approval is asked for again by a new request.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

CREATE FUNCTION audit.refuse_unapproved_resume() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_decision text;
BEGIN
  SELECT decision INTO v_decision FROM runner.approvals WHERE run_id = NEW.id;
  IF FOUND AND v_decision IS DISTINCT FROM 'approved' THEN
    RAISE EXCEPTION 'run % was never approved (%); it cannot be resumed: request it again with erp run',
      NEW.id, coalesce(v_decision, 'awaiting approval') USING ERRCODE = 'ERP19';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER runs_resume_needs_approval BEFORE UPDATE OF status ON runner.runs
  FOR EACH ROW WHEN (OLD.status IN ('failed', 'cancelled') AND NEW.status = 'queued')
  EXECUTE FUNCTION audit.refuse_unapproved_resume();

-- erp run --resume appends {by, host, at, from_step} to options.resumed as it queues the run again.
CREATE FUNCTION audit.on_run_resumed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_last jsonb := NEW.options -> 'resumed' -> -1;
BEGIN
  PERFORM audit.append(coalesce(v_last ->> 'by', 'unknown'), coalesce(v_last ->> 'host', NEW.host), 'run.resumed',
    'run:' || NEW.id,
    jsonb_build_object('previous_status', OLD.status, 'from_step', v_last -> 'from_step'));
  RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER runs_audit_resumed AFTER UPDATE OF status ON runner.runs
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.status IN ('failed', 'cancelled') AND NEW.status = 'queued')
  EXECUTE FUNCTION audit.on_run_resumed();
