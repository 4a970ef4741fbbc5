import { Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { App } from '../app.js';
import { executeRun, HandedBackError } from '../jobs/execute.js';
import { type RunProgress } from '../jobs/types.js';
import { storedRunOf, type StoredRun } from '../jobs/load-run.js';
import { preflight as checkRun, PreflightError } from '../jobs/preflight.js';
import { finishRun } from '../runs/store/runs.js';
import { succeededPositions } from '../runs/store/steps.js';
import { openRunnerSession, type RunnerSession } from '../jobs/session.js';
import { createPool } from '../db/pool.js';
import { workerConnections } from './connections.js';
import { recordPipeline, setWorkerConcurrency, trackRun } from '../metrics/counters.js';
import { sweepRunTemps } from '../runs/temp.js';
import { startReconciler } from '../jobs/reconcile.js';
import { ClaimGate } from '../jobs/claims.js';
import {
  checkEvictionPolicy,
  connectRedis,
  createQueue,
  QUEUE_NAME,
  queuePrefix,
  redisConnection,
  type RunJobData,
} from './queue.js';

/**
 * `erp worker`: a BullMQ Worker executing runs. Several may run on several machines against one
 * Redis and one PostgreSQL.
 *
 *   Redis queue ──job {runId}──► worker ──► executeRun (steps, PostgreSQL) ──► result
 *         ▲                        │  ▲
 *         └── progress ────────────┘  └── NOTIFY erp_cancel (erp cancel <id>) aborts the run's signal
 *
 * Pipeline work stays on the worker's event loop: it yields between batches of a few thousand rows
 * (milliseconds each), so BullMQ's lock renewals are never starved (test/worker.test.ts measures the
 * event-loop delay during a load with a short lock and checks the job never stalls).
 */
export interface WorkerOptions {
  /** Runs executed at once by this process; its runs get 2 PostgreSQL connections each (see {@link workerPoolSize}). @defaultValue 1 */
  concurrency?: number;
  /** BullMQ lock duration in ms; a run whose lock is not renewed within it counts as stalled. @defaultValue ERP_WORKER_LOCK_MS (30000) */
  lockDuration?: number;
  /** How often stalled runs are looked for, in ms. @defaultValue ERP_WORKER_STALLED_MS (30000) */
  stalledInterval?: number;
  /** On close, how long the runs in hand may take to finish before they are handed back, in ms. @defaultValue ERP_SHUTDOWN_GRACE_MS (30000) */
  graceMs?: number;
}

export interface RunningWorker {
  worker: Worker<RunJobData>;
  /** The ids of the runs this process executes right now. */
  runsInHand(): number[];
  /** The claims of its runs; the last resort closes this gate before it hands them back. */
  claims: ClaimGate;
  /** Stops taking work; waits up to the grace period for runs in hand, then hands them back. */
  close(): Promise<void>;
}

/** Times a run may stall (its worker died or hung) before BullMQ gives up on it. */
const MAX_STALLED = 2;

/**
 * A run's live progress goes out once it has been in hand this long: a run that ends sooner sends
 * none (the follower prints its step log from runner.run_steps), which spares Redis two or three
 * writes per short run.
 */
export const PROGRESS_AFTER_MS = 200;

export async function startWorker(app: App, opts: WorkerOptions = {}): Promise<RunningWorker> {
  const concurrency = opts.concurrency ?? 1;
  // The runs need a pool of two connections each or they can deadlock (src/runner/connections.ts).
  // `erp worker` sizes the app's own pool for this (workerPoolSize), so the process opens one pool;
  // an app with a smaller pool (a test's, an embedding program's) gets a pool of its own for the runs.
  const ownPool =
    app.pool.options.max === undefined || app.pool.options.max < workerConnections(concurrency).pool;
  const pool = ownPool ? createPool(app.config.DATABASE_URL, workerConnections(concurrency).pool) : app.pool;
  const runApp: App = { ...app, pool };
  const connection = redisConnection(app.config.REDIS_URL, 'worker');
  // The reconciler's own connection: it fails fast while Redis is down and comes back by itself.
  const reconcileRedis = redisConnection(app.config.REDIS_URL, 'service');
  const reconcileQueue = createQueue(reconcileRedis, app.config.ERP_QUEUE_PREFIX);
  const controllers = new Map<number, AbortController>();
  let session: RunnerSession;
  try {
    await connectRedis(connection, app.config.REDIS_URL);
    await checkEvictionPolicy(connection, app.log);
    session = await openRunnerSession(app.config.DATABASE_URL, {
      onCancel: (runId) => controllers.get(runId)?.abort(),
      log: app.log,
    });
  } catch (err) {
    // A worker connection retries for ever; left open, it would keep the failed process alive.
    connection.disconnect();
    await reconcileQueue.close().catch(() => undefined);
    reconcileRedis.disconnect();
    if (ownPool) await pool.end();
    throw err;
  }

  // Temporary files a killed worker left behind (a partial download) go, unless their run is still on.
  await sweepRunTemps(pool, app.dataDir, app.log).catch((err: unknown) =>
    app.log.warn({ err }, 'could not sweep the temporary files of dead runs'),
  );

  const claims = new ClaimGate();
  const runJob = async (job: Job<RunJobData>, token?: string): Promise<{ status: string }> => {
    const stored = await storedRunOf(pool, app.home, job.data);
    const firstDelivery =
      !job.data.resume && job.attemptsStarted <= 1 && job.attemptsMade === 0 && job.stalledCounter === 0;
    // The job is checked again here: time passed since it was queued (an export's file may have
    // appeared, a table gone). The steps an earlier attempt finished are not checked.
    const problems = await preflight(pool, runApp.home, stored, firstDelivery);
    if (problems) {
      await finishRun(pool, stored.runId, 'failed', problems, 'user');
      trackRun(stored.runnable.name).finish('failed');
      throw new UnrecoverableError(problems);
    }
    const controller = new AbortController();
    controllers.set(stored.runId, controller);
    let lastSent = 0;
    let latest: RunProgress | null = null;
    const send = (p: RunProgress): void => {
      lastSent = Date.now();
      void job.updateProgress({ ...p }).catch(() => undefined);
    };
    // Nothing goes out before PROGRESS_AFTER_MS; then the ends of the steps done so far and the latest
    // state, in order, and from there on every step change, row counts at most a few times a second.
    let live = false;
    const ended: RunProgress[] = [];
    const start = setTimeout(() => {
      live = true;
      for (const p of ended) send(p);
      if (latest && latest.state === 'running') send(latest);
    }, PROGRESS_AFTER_MS);
    const tracker = trackRun(stored.runnable.name);
    let finalStatus: string | null = null;
    const report = (p: RunProgress): void => {
      tracker.progress(p);
      latest = p;
      if (!live) {
        if (p.state !== 'running') ended.push(p);
        return;
      }
      if (p.state === 'running' && p.rows !== undefined && Date.now() - lastSent < 250) return;
      send(p);
    };
    try {
      const outcome = await executeRun(runApp, {
        runId: stored.runId,
        runnable: stored.runnable,
        params: stored.params,
        dryRun: false,
        force: stored.force,
        files: stored.files,
        signal: controller.signal,
        attemptsLeft: (job.opts.attempts ?? 1) - job.attemptsMade - 1,
        onProgress: report,
        onPipeline: recordPipeline,
        liveness: session.key,
        claims,
        firstDelivery,
      });
      finalStatus = outcome.status;
      if (outcome.status === 'succeeded') return { status: 'succeeded' };
      if (outcome.status === 'retrying' && controller.signal.reason instanceof HandedBackError) {
        // Straight back to the waiting list, without spending one of the run's attempts.
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (outcome.status === 'retrying') throw new Error(outcome.error ?? 'failed');
      throw new UnrecoverableError(outcome.error ?? outcome.status);
    } finally {
      tracker.finish(finalStatus);
      clearTimeout(start);
      controllers.delete(stored.runId);
    }
  };

  /** The run's preflight problems as its error, or null to go. */
  const preflight = async (
    db: typeof pool,
    home: string,
    stored: StoredRun,
    firstDelivery: boolean,
  ): Promise<string | null> => {
    const done = firstDelivery ? [] : await succeededPositions(db, stored.runId);
    const problems = await checkRun({ home, pool: db }, stored.runnable, stored.params, {
      skip: done,
      ...(stored.files ? { files: stored.files } : {}),
    });
    return problems.length > 0 ? new PreflightError(stored.runnable.name, problems).message : null;
  };

  setWorkerConcurrency(concurrency);
  const worker = new Worker<RunJobData>(QUEUE_NAME, runJob, {
    connection,
    prefix: queuePrefix(connection, app.config.ERP_QUEUE_PREFIX),
    concurrency,
    lockDuration: opts.lockDuration ?? app.config.ERP_WORKER_LOCK_MS,
    stalledInterval: opts.stalledInterval ?? app.config.ERP_WORKER_STALLED_MS,
    maxStalledCount: MAX_STALLED,
  });
  worker.on('error', (err) => app.log.error({ err }, 'worker error'));
  worker.on('failed', (job, err) => app.log.info({ runId: job?.data.runId, err }, 'run attempt failed'));
  worker.on('stalled', (jobId) => {
    // BullMQ moves a stalled job back to the waiting list either way; past MAX_STALLED it fails it
    // when a worker takes it next, without running it. Say which.
    void Job.fromId<RunJobData>(reconcileQueue, jobId).then(
      (job) =>
        job && job.stalledCounter > MAX_STALLED
          ? app.log.error(
              { jobId, runId: job.data.runId, stalled: job.stalledCounter },
              `run ${job.data.runId} stalled ${job.stalledCounter} times; BullMQ gives up on it (it is marked failed)`,
            )
          : app.log.warn({ jobId }, 'run stalled; it will be picked up again'),
      () => app.log.warn({ jobId }, 'run stalled'),
    );
  });
  const reconciler = startReconciler(
    { pool, home: app.home, log: app.log, queue: reconcileQueue, redis: reconcileRedis },
    app.config.ERP_RECONCILE_MS,
  );

  return {
    worker,
    runsInHand: () => [...controllers.keys()],
    claims,
    async close() {
      const grace = opts.graceMs ?? app.config.ERP_SHUTDOWN_GRACE_MS;
      const closing = worker.close();
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), grace).unref());
      if ((await Promise.race([closing.then(() => 'closed' as const), timer])) === 'timeout') {
        for (const c of controllers.values()) c.abort(new HandedBackError());
        await closing;
      }
      await reconciler.stop();
      await reconcileQueue.close().catch(() => undefined);
      reconcileRedis.disconnect();
      await session.close().catch(() => undefined);
      await connection.quit().catch(() => undefined);
      if (ownPool) await pool.end().catch(() => undefined);
    },
  };
}
