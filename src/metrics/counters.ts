import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PipelineResult } from '../pipeline/run.js';

/**
 * The process's Prometheus metrics that the runner counts as it works (runs, steps, rows, files,
 * bytes, schedule ticks). Values read from PostgreSQL and Redis at scrape time (queue depth, last
 * success per job, overdue acks, open alerts) live in src/metrics/state.ts; src/http/health.ts
 * serves both on /metrics.
 *
 * Labels are bounded: job, pipeline, partner, kind, status, direction, schedule index — never a
 * file name or a run id, so the number of series does not grow with the work done.
 *
 * Counting is a few Map lookups per run or per file, never per row: the CSV path pays nothing.
 */
export const runnerRegistry = new Registry();
// Default process metrics under their standard names (process_*, nodejs_*), as dashboards expect them.
collectDefaultMetrics({ register: runnerRegistry });

const runsStarted = new Counter({
  name: 'erp_runs_started_total',
  help: 'Run attempts a worker started, by job (a pipeline run counts under its pipeline name)',
  labelNames: ['job'],
  registers: [runnerRegistry],
});
const runsFinished = new Counter({
  name: 'erp_runs_finished_total',
  help: 'Run attempts that ended, by job and status (succeeded, failed, cancelled, retrying)',
  labelNames: ['job', 'status'],
  registers: [runnerRegistry],
});
const runDuration = new Histogram({
  name: 'erp_run_duration_seconds',
  help: 'Wall time of a run attempt in a worker, by job and status',
  labelNames: ['job', 'status'],
  buckets: [0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200],
  registers: [runnerRegistry],
});
const stepDuration = new Histogram({
  name: 'erp_step_duration_seconds',
  help: 'Wall time of a run step, by job, step kind (pipeline, sql, edi) and status',
  labelNames: ['job', 'kind', 'status'],
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
  registers: [runnerRegistry],
});
const rowsRead = new Counter({
  name: 'erp_pipeline_rows_read_total',
  help: 'Rows read by pipeline',
  labelNames: ['pipeline'],
  registers: [runnerRegistry],
});
const rowsLoaded = new Counter({
  name: 'erp_pipeline_rows_loaded_total',
  help: 'Rows loaded (committed) by pipeline',
  labelNames: ['pipeline'],
  registers: [runnerRegistry],
});
const rowsRejected = new Counter({
  name: 'erp_pipeline_rows_rejected_total',
  help: 'Rows rejected by validation or mapping, by pipeline',
  labelNames: ['pipeline'],
  registers: [runnerRegistry],
});
const files = new Counter({
  name: 'erp_pipeline_files_total',
  help: 'Files by pipeline and outcome (loaded, skipped, failed)',
  labelNames: ['pipeline', 'status'],
  registers: [runnerRegistry],
});
const bytes = new Counter({
  name: 'erp_sftp_bytes_total',
  help: 'Bytes transferred over SFTP, by partner and direction (in: downloaded, out: uploaded)',
  labelNames: ['partner', 'direction'],
  registers: [runnerRegistry],
});
const inHand = new Gauge({
  name: 'erp_worker_runs_in_hand',
  help: 'Runs this worker process is executing now',
  registers: [runnerRegistry],
});
const concurrencyGauge = new Gauge({
  name: 'erp_worker_concurrency',
  help: 'Runs this worker process may execute at once',
  registers: [runnerRegistry],
});
const lastTick = new Gauge({
  name: 'erp_schedule_last_tick_timestamp_seconds',
  help: "Unix time of a schedule's last tick submitted by this scheduler, by job and schedule index",
  labelNames: ['job', 'schedule'],
  registers: [runnerRegistry],
});
const missedTicks = new Counter({
  name: 'erp_schedule_ticks_missed_total',
  help: 'Ticks not fired on time: made up by catch-up after no scheduler ran, or skipped because the job was locked',
  labelNames: ['job', 'schedule'],
  registers: [runnerRegistry],
});

/** Follows one run attempt in a worker: call {@link RunTracker.progress} with each progress event, then `finish`. */
export interface RunTracker {
  progress(p: { step: number; kind: string; state: string }): void;
  /** The run's outcome status (succeeded, failed, cancelled, retrying); null when it threw. */
  finish(status: string | null): void;
}

/** Starts counting a run attempt of `job`; the worker calls this as it takes a run. */
export function trackRun(job: string): RunTracker {
  const started = performance.now();
  runsStarted.inc({ job });
  inHand.inc();
  let step: { at: number; kind: string; position: number } | null = null;
  const endStep = (status: string): void => {
    if (!step) return;
    stepDuration.observe({ job, kind: step.kind, status }, (performance.now() - step.at) / 1000);
    step = null;
  };
  return {
    progress(p) {
      if (p.state === 'running') {
        if (step?.position !== p.step) {
          endStep('succeeded');
          step = { at: performance.now(), kind: p.kind, position: p.step };
        }
      } else if (p.state !== 'skipped' && step?.position === p.step) endStep(p.state);
    },
    finish(outcomeStatus) {
      const status = outcomeStatus ?? 'failed';
      // A step still open when the run ended is the one that failed or was cancelled.
      endStep(status === 'retrying' ? 'failed' : status);
      runsFinished.inc({ job, status });
      runDuration.observe({ job, status }, (performance.now() - started) / 1000);
      inHand.dec();
    },
  };
}

/** Counts a pipeline step's rows and files (not for dry runs, which load nothing). */
export function recordPipeline(result: PipelineResult): void {
  if (result.dryRun) return;
  const pipeline = result.pipeline;
  let read = 0;
  let loaded = 0;
  let rejected = 0;
  for (const f of result.files) {
    read += f.rowsRead;
    loaded += f.status === 'loaded' ? f.rowsLoaded : 0;
    rejected += f.rowsRejected;
    if (f.status !== 'validated') files.inc({ pipeline, status: f.status });
  }
  rowsRead.inc({ pipeline }, read);
  rowsLoaded.inc({ pipeline }, loaded);
  rowsRejected.inc({ pipeline }, rejected);
}

/** Counts bytes sent to or received from a partner's SFTP server. */
export function recordTransfer(partner: string | undefined, direction: 'in' | 'out', n: number): void {
  bytes.inc({ partner: partner ?? 'none', direction }, n);
}

/** The worker's concurrency, exported beside its runs in hand. */
export function setWorkerConcurrency(n: number): void {
  concurrencyGauge.set(n);
}

/** A schedule's tick was submitted (the time is the tick's, not the clock's). */
export function recordTick(job: string, schedule: number, at: Date): void {
  const key = `${job}#${schedule}`;
  // Catch-up may submit an older tick after a newer one fired: keep the newest.
  const newest = Math.max(ticks.get(key) ?? 0, at.getTime() / 1000);
  ticks.set(key, newest);
  lastTick.set({ job, schedule: String(schedule) }, newest);
}

/** A tick that did not fire on time (made up by catch-up, or skipped while the job was locked). */
export function recordMissedTick(job: string, schedule: number): void {
  missedTicks.inc({ job, schedule: String(schedule) });
}

/** The newest tick per schedule, by `job#index`. */
const ticks = new Map<string, number>();
