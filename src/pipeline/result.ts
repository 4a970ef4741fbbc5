/**
 * What a pipeline run returns: each file's outcome and the run's totals. Its own module, below
 * the import and export code that fills it and the metrics and step records that read it.
 */
import type { Reject } from '../stages/types.js';

export interface FileResult {
  file: string;
  status: 'loaded' | 'skipped' | 'failed' | 'validated';
  sha256: string;
  rowsRead: number;
  rowsLoaded: number;
  rowsRejected: number;
  /** CSV with every reject of the file, when there were any. */
  rejectReport: string | null;
  /** The first rejects, for display. */
  rejects: Reject[];
  message: string | null;
  /** The file failed because it broke its reject policy (max_rejects / max_reject_rate). */
  policyExceeded: boolean;
  /** The file failed for a reason a retry may fix (connection lost, lock timeout). */
  transient: boolean;
}

/** A file's result before anything happened to it: failed, until its load says otherwise. */
export function failedFile(file: string, sha256: string): FileResult {
  return {
    file,
    status: 'failed',
    sha256,
    rowsRead: 0,
    rowsLoaded: 0,
    rowsRejected: 0,
    rejectReport: null,
    rejects: [],
    message: null,
    policyExceeded: false,
    transient: false,
  };
}

export interface PipelineResult {
  runId: number | null;
  pipeline: string;
  dryRun: boolean;
  status: 'succeeded' | 'failed' | 'cancelled';
  files: FileResult[];
  rowsRead: number;
  rowsLoaded: number;
  rowsRejected: number;
  error: string | null;
  /** The pipeline failed outside any file for a reason a retry may fix (the database went away). */
  transient?: boolean;
}
