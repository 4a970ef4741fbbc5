-- Built-in alerts (alerts.yaml): one row per alert from the moment its condition is seen until it
-- clears. An alert is identified by its rule and its subject (a job, a pipeline's period, a
-- partner's interchange); the partial unique index keeps at most one open alert per identity, so
-- several processes evaluating the rules at once still open it once.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
CREATE TABLE runner.alerts (
  id             bigserial PRIMARY KEY,
  rule           text NOT NULL,
  subject        text NOT NULL,
  message        text NOT NULL,
  opened_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_at   timestamptz NOT NULL DEFAULT now(),
  -- When the last notice went out (the opening one or a repeat); NULL until one was delivered.
  notified_at    timestamptz,
  notices        int NOT NULL DEFAULT 0,
  resolved_at    timestamptz,
  -- When the resolved notice went out.
  resolved_notified_at timestamptz
);
CREATE UNIQUE INDEX alerts_open_identity ON runner.alerts (rule, subject) WHERE resolved_at IS NULL;
CREATE INDEX alerts_recent ON runner.alerts (opened_at DESC);
