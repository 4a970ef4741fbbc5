-- Job runs: locks held in PostgreSQL, one run per schedule tick, cancellation, attempts.
-- A run with a lock_key that is queued or running holds the lock; finishing the run frees it.
CREATE UNIQUE INDEX runs_lock_held ON runner.runs (lock_key)
  WHERE lock_key IS NOT NULL AND status IN ('queued', 'running');

ALTER TABLE runner.runs
  ADD COLUMN schedule_tick text,
  ADD COLUMN cancel_requested_at timestamptz,
  ADD COLUMN attempts int NOT NULL DEFAULT 0,
  ADD COLUMN progress jsonb,
  -- Why a failed run failed: policy (reject policy), user (bad input or definition), infra (retryable), cancelled.
  ADD COLUMN error_kind text;

-- Several schedulers firing the same tick create one run.
CREATE UNIQUE INDEX runs_schedule_tick ON runner.runs (schedule_tick) WHERE schedule_tick IS NOT NULL;

-- Options of the run that are not job parameters (files, force), for the audit trail and retries.
ALTER TABLE runner.runs ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb;
