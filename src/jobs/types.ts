/**
 * The shapes a job run passes around: its flattened steps, each step's outcome, the run's outcome
 * and the progress it reports. Below the executor and the records it writes, which both use them.
 */
import type { ErrorKind } from '../runs/store/runs.js';
import type { StepResults } from './steps/registry.js';
import type { JobStep } from './steps/types.js';

/**
 * Executes a run's steps in order. The worker and `erp run --inline` both call {@link executeRun};
 * the CLI never has logic of its own.
 *
 *   run (queued) ──► running ──► step 1 ──► step 2 ──► … ──► succeeded
 *                        │            └─ fails ─┬─ transient, attempts left ──► queued (retried)
 *                        │                      └─ permanent or last attempt ─► failed
 *                        └─ cancel requested / signal ──────────────────────► cancelled
 *
 * A retried run skips the steps that already succeeded; a pipeline step re-run skips the files
 * its earlier attempt committed (the ledger), so nothing is loaded twice.
 */

export interface RunProgress {
  runId: number | null;
  step: number;
  steps: number;
  kind: FlatStep['kind'];
  name: string;
  state: 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';
  rows?: number;
  /** A pipeline step's file being read: its name, bytes read and size (0 when unknown). */
  file?: string;
  bytes?: number;
  bytesTotal?: number;
  message?: string;
}

/** A step's outcome; a step that ran (or failed with a result) has its result under its kind's key (`sql`, `edi`, …). */
export type StepOutcome = {
  kind: FlatStep['kind'];
  name: string;
  status: 'succeeded' | 'failed' | 'skipped';
  error?: string;
} & StepResults;

export interface RunOutcome {
  runId: number | null;
  status: 'succeeded' | 'failed' | 'cancelled' | 'retrying';
  steps: StepOutcome[];
  error: string | null;
  /** The failure cannot be fixed by retrying. */
  permanent: boolean;
  errorKind: ErrorKind | null;
}

/** One step of a run, nested jobs expanded, as its kind (src/jobs/steps/) made it. */
export type FlatStep = JobStep;
