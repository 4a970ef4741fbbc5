-- Run liveness per process, and a SQL step's success committed with the step's own work.
-- Append-only: never edit this file once landed; add a new numbered migration instead.

-- The process executing a run holds the session advisory lock (runner liveness class, liveness_key)
-- for as long as it lives: one lock per process, not one connection per run. A 'running' run whose
-- key nobody holds was abandoned (its process died; PostgreSQL rolled its open transaction back).
ALTER TABLE runner.runs ADD COLUMN liveness_key int;

-- Marks a queued (or retried) run running in the calling process: its attempt, host, pid and
-- liveness key. Returns whether a cancel is pending, or NULL when the run is no longer queued or
-- running. Called by claim_run and by step_succeeded, which claims a run its first step finished.
CREATE FUNCTION runner.mark_running(p_run bigint, p_host text, p_pid int, p_liveness int)
RETURNS boolean LANGUAGE sql AS $$
  UPDATE runner.runs SET status = 'running', started_at = coalesce(started_at, now()), attempts = attempts + 1,
    host = p_host, pid = p_pid, liveness_key = p_liveness, error = NULL
  WHERE id = p_run AND status IN ('queued', 'running')
  RETURNING cancel_requested_at IS NOT NULL
$$;

-- Called by the runner as the last statement of a SQL step's transaction, so the step's work and
-- the record that it succeeded commit together: a worker killed between the two cannot leave a
-- step done but unrecorded, which a retry would run a second time. Raises, and so rolls the step's
-- work back, when the run no longer runs here:
--   ERP02  the run is finished, or this step already succeeded in another delivery of the run;
--   ERP03  a cancel was requested while the step ran.
-- With no next step, the run itself is marked succeeded in the same transaction; otherwise the next
-- step is recorded as running.
-- Given the executing process (p_host, p_pid, p_liveness), a run still queued is claimed here, as
-- runner.claim_run would: a first delivery's short first step claims its run with its commit, one
-- round trip less (a longer one is claimed while it runs, so that the run shows as running).
CREATE FUNCTION runner.step_succeeded(
  p_run bigint, p_position int, p_kind text, p_name text, p_detail jsonb,
  p_next_position int, p_next_kind text, p_next_name text,
  p_host text DEFAULT NULL, p_pid int DEFAULT NULL, p_liveness int DEFAULT NULL
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_status text;
  v_cancel timestamptz;
  -- The end of the step: now(), the transaction's start, is the step's start.
  v_end timestamptz := clock_timestamp();
BEGIN
  SELECT status, cancel_requested_at INTO v_status, v_cancel FROM runner.runs WHERE id = p_run FOR UPDATE;
  IF v_status = 'queued' AND p_host IS NOT NULL AND v_cancel IS NULL THEN
    PERFORM runner.mark_running(p_run, p_host, p_pid, p_liveness);
    v_status := 'running';
  END IF;
  IF v_status IS DISTINCT FROM 'running' THEN
    RAISE EXCEPTION 'run % is %, not running; step % was rolled back', p_run, coalesce(v_status, 'gone'), p_position
      USING ERRCODE = 'ERP02';
  END IF;
  IF v_cancel IS NOT NULL THEN
    RAISE EXCEPTION 'run % was cancelled; step % was rolled back', p_run, p_position USING ERRCODE = 'ERP03';
  END IF;
  INSERT INTO runner.run_steps AS s (run_id, position, kind, name, status, started_at, finished_at, detail)
  VALUES (p_run, p_position, p_kind, p_name, 'succeeded', now(), v_end, p_detail)
  ON CONFLICT (run_id, position) DO UPDATE
    SET status = 'succeeded', finished_at = v_end, detail = EXCLUDED.detail, error = NULL
    WHERE s.status <> 'succeeded';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'step % of run % already succeeded in another delivery of the run; this one was rolled back',
      p_position, p_run USING ERRCODE = 'ERP02';
  END IF;
  IF p_next_position IS NULL THEN
    UPDATE runner.runs SET status = 'succeeded', finished_at = v_end, error = NULL, error_kind = NULL
    WHERE id = p_run;
  ELSE
    INSERT INTO runner.run_steps AS s (run_id, position, kind, name, status, started_at)
    VALUES (p_run, p_next_position, p_next_kind, p_next_name, 'running', v_end)
    ON CONFLICT (run_id, position) DO UPDATE
      SET status = 'running', started_at = v_end, finished_at = NULL, error = NULL;
  END IF;
END
$$;

-- Marks a queued (or retried) run running in the calling process: its attempt, host, pid and
-- liveness key; on a first attempt, its first step as running. Returns nothing for a run that is
-- no longer queued or running (finished by another delivery, cancelled while queued); otherwise
-- whether a cancel is pending and the positions of the steps an earlier attempt finished.
-- Committed asynchronously: a claim lost in a server crash takes nothing with it but the running
-- state (the run is queued again, and so is its job), and the step's own synchronous commit,
-- which comes after it in the WAL, flushes it anyway.
CREATE FUNCTION runner.claim_run(
  p_run bigint, p_host text, p_pid int, p_liveness int, p_first_kind text, p_first_name text
) RETURNS TABLE (cancel boolean, done int[], first_recorded boolean) LANGUAGE plpgsql AS $$
DECLARE
  v_steps int;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  cancel := runner.mark_running(p_run, p_host, p_pid, p_liveness);
  IF cancel IS NULL THEN
    RETURN;
  END IF;
  SELECT count(*), coalesce(array_agg(position ORDER BY position) FILTER (WHERE status = 'succeeded'), '{}')
    INTO v_steps, done FROM runner.run_steps WHERE run_id = p_run;
  first_recorded := false;
  IF v_steps = 0 AND NOT cancel AND p_first_kind IS NOT NULL THEN
    INSERT INTO runner.run_steps (run_id, position, kind, name, status, started_at)
    VALUES (p_run, 1, p_first_kind, p_first_name, 'running', now());
    first_recorded := true;
  END IF;
  RETURN NEXT;
END
$$;
