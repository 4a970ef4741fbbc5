-- A large file is hashed while it loads (one read) unless the ledger holds content of its pipeline
-- with its size: that check (src/runs/store/files.ts ledgerMayHold) is one index probe.
-- Append-only: never edit this file once landed; add a new numbered migration instead.
CREATE INDEX ingested_files_size ON runner.ingested_files (pipeline, size_bytes);
