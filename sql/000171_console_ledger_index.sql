-- The console's files page lists the ledger newest first when no name or hash is given.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
CREATE INDEX ingested_files_loaded_at ON runner.ingested_files (loaded_at);
