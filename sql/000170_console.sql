-- The operators' console: its users and roles, sessions, login failures (for throttling) and the
-- record of every action taken through it; indexes that keep the runs pages fast at 100k runs.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
CREATE SCHEMA IF NOT EXISTS console;

-- viewer reads; operator also cancels, reruns, reloads and triggers; admin also manages users and the queue.
CREATE TABLE console.users (
  name          text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
  role          text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  -- scrypt$N$r$p$salt$hash (base64); never a plain password.
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A session is known by the SHA-256 of its cookie token: a leaked table does not give live cookies.
CREATE TABLE console.sessions (
  token_sha256 text PRIMARY KEY,
  user_name    text NOT NULL REFERENCES console.users (name) ON DELETE CASCADE ON UPDATE CASCADE,
  csrf_token   text NOT NULL,
  address      text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user ON console.sessions (user_name);

-- Failed logins, counted per account and per address over a window; old rows are pruned on login.
CREATE TABLE console.login_failures (
  id        bigserial PRIMARY KEY,
  user_name text NOT NULL,
  address   text NOT NULL,
  at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_user ON console.login_failures (user_name, at);
CREATE INDEX login_failures_address ON console.login_failures (address, at);

-- Every action taken through the console: who, what, when, from which address, on which run.
CREATE TABLE console.actions (
  id        bigserial PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  actor     text NOT NULL,
  address   text NOT NULL,
  action    text NOT NULL,
  run_id    bigint REFERENCES runner.runs (id) ON DELETE SET NULL,
  -- The run an action started (rerun, reload, trigger), beside the run it touched.
  new_run_id bigint REFERENCES runner.runs (id) ON DELETE SET NULL,
  detail    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX actions_run ON console.actions (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX actions_new_run ON console.actions (new_run_id) WHERE new_run_id IS NOT NULL;

-- The runs page pages backwards by id under any one filter; these keep each filter an index scan.
CREATE INDEX runs_status_id ON runner.runs (status, id DESC);
CREATE INDEX runs_requested_by_id ON runner.runs (requested_by, id DESC);
CREATE INDEX runs_name_id ON runner.runs (name, id DESC);
CREATE INDEX runs_created_at ON runner.runs (created_at);
-- The files page finds a ledger entry by content hash without knowing the pipeline.
CREATE INDEX ingested_files_sha256 ON runner.ingested_files (sha256);
