import type { ErrorKind } from '../runs/history.js';

/**
 * Exit codes of the `erp` command:
 *
 *   0    success (rows rejected within the pipeline's policy still count as success)
 *   1    the run failed: a file or step failed, or an infrastructure error (database, Redis, network)
 *   2    usage or configuration error: unknown command, job, pipeline or parameter; bad definition
 *   3    a file exceeded its reject policy (max_rejects / max_reject_rate) and was rolled back
 *   4    refused: the job's lock is held by another queued or running run
 *   5    refused by an approval rule: the requester cannot approve; the run is not awaiting approval
 *   124  the run timed out (its job's `timeout`) and was rolled back
 *   130  cancelled, or stopped following with Ctrl-C
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  rejects: 3,
  locked: 4,
  approval: 5,
  timeout: 124,
  cancelled: 130,
} as const;

/** The exit code of a run that ended with `status`, failing for reason `kind` (see runner.runs.error_kind). */
export function exitCodeOf(status: string, kind: ErrorKind | null): number {
  if (status === 'succeeded') return EXIT.ok;
  if (kind === 'timeout') return EXIT.timeout;
  if (status === 'cancelled' || kind === 'cancelled') return EXIT.cancelled;
  return kind === 'policy' ? EXIT.rejects : EXIT.failed;
}

/** Runs `fn` with a signal that SIGINT (Ctrl-C) aborts. */
export async function withSigint<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

const MEANING: Record<number, string> = {
  0: 'success',
  1: 'the run would fail',
  3: 'a file would break its reject policy and be rolled back',
  130: 'cancelled',
};

/** The line a dry run (`erp validate`, `erp run --dry-run`) ends with: the exit code a real run would give. */
export function wouldExitLine(code: number): string {
  return `a real run would exit ${code} (${MEANING[code] ?? 'see the exit codes in the README'})`;
}
