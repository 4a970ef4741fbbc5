/**
 * The shapes a job run passes around: its flattened steps, each step's outcome, the run's outcome
 * and the progress it reports. Below the executor and the records it writes, which both use them.
 */
import type { EdiStepResult, EdiStepSpec } from '../edi/step.js';
import type { PipelineResult } from '../pipeline/result.js';
import type { ErrorKind } from '../runs/store/runs.js';
import type { SqlStepResult } from './sql-step.js';

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

export interface StepOutcome {
  kind: FlatStep['kind'];
  name: string;
  status: 'succeeded' | 'failed' | 'skipped';
  pipeline?: PipelineResult;
  sql?: SqlStepResult;
  edi?: EdiStepResult;
  /** A `compliance: purge` step: what each retention category removed (or would). */
  purge?: { summary: string };
  error?: string;
}

export interface RunOutcome {
  runId: number | null;
  status: 'succeeded' | 'failed' | 'cancelled' | 'retrying';
  steps: StepOutcome[];
  error: string | null;
  /** The failure cannot be fixed by retrying. */
  permanent: boolean;
  errorKind: ErrorKind | null;
}

/** One step of a run, nested jobs expanded: told apart by `kind`, each with its own settings. */
export type FlatStep =
  | (StepBase & { kind: 'pipeline'; /** Files replacing the pipeline source's listing. */ files?: string[] })
  | (StepBase & { kind: 'sql' })
  | (StepBase & { kind: 'edi'; /** The partner and direction. */ edi: EdiStepSpec })
  | (StepBase & { kind: 'compliance' });

interface StepBase {
  /** The pipeline, the SQL file under sql/, or the EDI step's display name. */
  name: string;
  params: Record<string, string>;
}
