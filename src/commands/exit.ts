/**
 * Exit codes of the `erp` command:
 *
 *   0    success (rows rejected within the pipeline's policy still count as success)
 *   1    the run failed: a file or step failed, or an infrastructure error (database, Redis, network)
 *   2    usage or configuration error: unknown command, job, pipeline or parameter; bad definition
 *   3    a file exceeded its reject policy (max_rejects / max_reject_rate) and was rolled back
 *   4    refused: the job's lock is held by another queued or running run
 *   130  cancelled, or stopped following with Ctrl-C
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, rejects: 3, locked: 4, cancelled: 130 } as const;
