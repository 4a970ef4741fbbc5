-- The runner's own tables: runs, their steps and files, the ingested-file ledger, rejects.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
CREATE SCHEMA IF NOT EXISTS runner;

CREATE TABLE runner.runs (
  id            bigserial PRIMARY KEY,
  kind          text NOT NULL CHECK (kind IN ('pipeline', 'job')),
  name          text NOT NULL,
  params        jsonb NOT NULL DEFAULT '{}'::jsonb,
  status        text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  dry_run       boolean NOT NULL DEFAULT false,
  requested_by  text NOT NULL,
  host          text NOT NULL,
  pid           int,
  trigger       text NOT NULL DEFAULT 'cli',
  lock_key      text,
  queue_job_id  text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz,
  rows_read     bigint NOT NULL DEFAULT 0,
  rows_loaded   bigint NOT NULL DEFAULT 0,
  rows_rejected bigint NOT NULL DEFAULT 0,
  files_loaded  int NOT NULL DEFAULT 0,
  files_skipped int NOT NULL DEFAULT 0,
  error         text
);
CREATE INDEX runs_name_created ON runner.runs (name, created_at DESC);
CREATE INDEX runs_status ON runner.runs (status) WHERE status IN ('queued', 'running');

CREATE TABLE runner.run_steps (
  id          bigserial PRIMARY KEY,
  run_id      bigint NOT NULL REFERENCES runner.runs (id) ON DELETE CASCADE,
  position    int NOT NULL,
  kind        text NOT NULL,
  name        text NOT NULL,
  status      text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
  started_at  timestamptz,
  finished_at timestamptz,
  detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
  error       text,
  UNIQUE (run_id, position)
);

-- One row per file of a run, whatever its outcome. Written in the file's own transaction when it loads.
CREATE TABLE runner.run_files (
  id            bigserial PRIMARY KEY,
  run_id        bigint NOT NULL REFERENCES runner.runs (id) ON DELETE CASCADE,
  pipeline      text NOT NULL,
  file          text NOT NULL,
  sha256        text,
  size_bytes    bigint,
  status        text NOT NULL CHECK (status IN ('loaded', 'skipped', 'failed', 'validated')),
  rows_read     bigint NOT NULL DEFAULT 0,
  rows_loaded   bigint NOT NULL DEFAULT 0,
  rows_rejected bigint NOT NULL DEFAULT 0,
  reject_report text,
  message       text,
  finished_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_files_run ON runner.run_files (run_id);

-- The exactly-once ledger: a file's content is loaded into a pipeline at most once.
CREATE TABLE runner.ingested_files (
  pipeline    text NOT NULL,
  sha256      text NOT NULL,
  file        text NOT NULL,
  size_bytes  bigint NOT NULL,
  run_id      bigint NOT NULL REFERENCES runner.runs (id),
  rows_loaded bigint NOT NULL,
  loaded_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (pipeline, sha256)
);

-- The first rejects of each file (the CSV report beside the run has all of them).
CREATE TABLE runner.rejects (
  id          bigserial PRIMARY KEY,
  run_id      bigint NOT NULL REFERENCES runner.runs (id) ON DELETE CASCADE,
  run_file_id bigint REFERENCES runner.run_files (id) ON DELETE CASCADE,
  file        text NOT NULL,
  line        bigint,
  field       text,
  value       text,
  reason      text NOT NULL
);
CREATE INDEX rejects_run ON runner.rejects (run_id);
