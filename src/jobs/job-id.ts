/** The BullMQ job id of a run: one job per run, whatever enqueues it. */
export function jobIdOf(runId: number): string {
  return `run-${runId}`;
}
