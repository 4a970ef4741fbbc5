/**
 * `erp scheduler`: fires the schedules declared in jobs/ with node-cron.
 *
 * Every tick has an identity — job, schedule index and the tick's time — stored with its run under
 * a unique index. Several schedulers running at once (for availability) all try to submit the tick
 * and exactly one run results; the others find the tick taken and do nothing. On start, ticks
 * missed within a schedule's `catch_up` window are submitted once each, oldest first.
 */
import type { Queue } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import cron from 'node-cron';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { RedisClient } from './queue.js';
import { whileUnreachable } from '../db/pool.js';
import { UserError } from '../errors.js';
import { startApprovalExpiry } from '../approvals/approvals.js';
import { startReconciler } from '../jobs/reconcile.js';
import {
  listJobNames,
  loadJob,
  resolveParams,
  type JobDefinition,
  type ScheduleSpec,
} from '../jobs/definition.js';
import { definitionHashes } from '../audit/definitions.js';
import { formatProblem, preflight } from '../jobs/preflight.js';
import { createQueuedRun, enqueueRun, LockHeldError } from '../jobs/submit.js';
import { recordMissedTick, recordTick } from '../metrics/counters.js';
import { lastRunOfSchedule, runState } from '../runs/store/runs.js';
import type { RunJobData } from './queue.js';

export interface ScheduleEntry {
  job: JobDefinition;
  index: number;
  schedule: ScheduleSpec;
}

export interface SchedulerContext {
  pool: pg.Pool;
  log: Logger;
  home: string;
  queue: Queue<RunJobData>;
  /** With the queue's Redis connection, the scheduler also reconciles runs (see jobs/reconcile.ts). */
  reconcile?: { redis: RedisClient; intervalMs: number };
  /** How often runs whose approval expired are cancelled, in ms. @defaultValue 60000 */
  approvalExpiryMs?: number;
}

/** Every schedule of every job, with its cron pattern checked. */
export async function loadSchedules(home: string): Promise<ScheduleEntry[]> {
  const out: ScheduleEntry[] = [];
  for (const name of await listJobNames(home)) {
    const job = await loadJob(home, name);
    job.config.schedules.forEach((schedule, index) => {
      try {
        CronExpressionParser.parse(schedule.cron, { tz: schedule.timezone });
      } catch (err) {
        throw new UserError(
          `${job.file}, schedules.${index}.cron: '${schedule.cron}' is not a cron pattern (${(err as Error).message})`,
        );
      }
      if (!cron.validate(schedule.cron))
        throw new UserError(`${job.file}, schedules.${index}.cron: '${schedule.cron}' is not a cron pattern`);
      out.push({ job, index, schedule });
    });
  }
  return out;
}

/** The identity of one tick. */
export function tickId(entry: ScheduleEntry, at: Date): string {
  return `${entry.job.name}#${entry.index}@${at.toISOString()}`;
}

/** The most recent tick at or before `now`. */
export function latestTick(entry: ScheduleEntry, now: Date): Date {
  const it = CronExpressionParser.parse(entry.schedule.cron, {
    tz: entry.schedule.timezone,
    currentDate: new Date(now.getTime() + 1),
  });
  return it.prev().toDate();
}

/** Ticks in (from, to], oldest first. */
export function ticksBetween(entry: ScheduleEntry, from: Date, to: Date, limit = 1000): Date[] {
  const it = CronExpressionParser.parse(entry.schedule.cron, {
    tz: entry.schedule.timezone,
    currentDate: from,
    endDate: to,
  });
  const out: Date[] = [];
  while (out.length < limit && it.hasNext()) out.push(it.next().toDate());
  return out;
}

/** Next `n` fire times from `now`. */
export function nextTicks(entry: ScheduleEntry, now: Date, n: number): Date[] {
  const it = CronExpressionParser.parse(entry.schedule.cron, {
    tz: entry.schedule.timezone,
    currentDate: now,
  });
  return it.take(n).map((d) => d.toDate());
}

export interface FireOptions {
  /**
   * When the job's lock is held, wait for the run holding it to end and submit then, instead of
   * skipping the tick. Catch-up does, so a locked job makes up every missed tick, one after the other.
   */
  waitForLock?: boolean;
  /** Stops waiting (the scheduler is stopping); the tick is left for the next start. */
  signal?: AbortSignal;
}

/** How often a tick waiting for a lock looks whether the run holding it ended, in ms. */
const LOCK_POLL_MS = 250;

/** Submits one tick: returns the run id, or null when another scheduler already did, or the lock is held. */
export async function fireTick(
  ctx: SchedulerContext,
  entry: ScheduleEntry,
  at: Date,
  opts: FireOptions = {},
): Promise<number | null> {
  const given = Object.fromEntries(Object.entries(entry.schedule.params).map(([k, v]) => [k, String(v)]));
  const params = resolveParams(entry.job, given, at);
  const runnable = { kind: 'job' as const, name: entry.job.name, job: entry.job };
  // A tick falling due while the database restarts is checked and submitted once it is back; the
  // tick's identity keeps it to one run whichever scheduler gets there first.
  const untilReachable = {
    onWait: (err: unknown) =>
      ctx.log.warn(
        { job: entry.job.name, tick: at.toISOString(), err },
        'the database is unreachable; the tick waits for it',
      ),
  };
  // A job that cannot run is not submitted: the tick is skipped, every problem logged.
  const problems = await whileUnreachable(() => preflight(ctx, runnable, params), untilReachable);
  if (problems.length > 0) {
    ctx.log.error(
      { job: entry.job.name, tick: at.toISOString(), problems: problems.map(formatProblem) },
      `tick skipped: ${entry.job.name} failed its preflight, nothing was recorded: ${problems.map(formatProblem).join('; ')}`,
    );
    return null;
  }
  const definitions = await definitionHashes(ctx.home, runnable);
  for (let waited = false; ; waited = true) {
    try {
      const runId = await whileUnreachable(
        () =>
          createQueuedRun(ctx.pool, runnable, params, {
            trigger: `schedule ${entry.index} at ${at.toISOString()}`,
            requestedBy: 'scheduler',
            scheduleTick: tickId(entry, at),
            definitions,
          }),
        untilReachable,
      );
      if (runId === null) return null;
      try {
        await enqueueRun(ctx.queue, runId, { kind: 'job', name: entry.job.name, job: entry.job }, params);
      } catch (err) {
        // The run is recorded as queued: a reconciler puts it on the queue once Redis is back.
        ctx.log.warn(
          { job: entry.job.name, runId, err },
          'could not put the run on the queue now; it is queued again when Redis is back',
        );
        return runId;
      }
      ctx.log.info({ job: entry.job.name, runId, tick: at.toISOString() }, 'schedule fired');
      recordTick(entry.job.name, entry.index, at);
      return runId;
    } catch (err) {
      if (!(err instanceof LockHeldError)) throw err;
      if (!opts.waitForLock || opts.signal?.aborted) {
        recordMissedTick(entry.job.name, entry.index);
        ctx.log.warn(
          { job: entry.job.name, tick: at.toISOString(), holder: err.holder },
          `tick skipped: ${err.message}`,
        );
        return null;
      }
      if (!waited)
        ctx.log.info(
          { job: entry.job.name, tick: at.toISOString(), holder: err.holder },
          'missed tick waits for the run holding its lock',
        );
      await untilRunEnds(ctx.pool, err.holder, opts.signal);
    }
  }
}

/** Resolves once run `runId` is no longer queued or running, or `signal` aborts. */
async function untilRunEnds(pool: pg.Pool, runId: number, signal?: AbortSignal): Promise<void> {
  while (!signal?.aborted) {
    const status = (await runState(pool, runId))?.status;
    if (status !== 'queued' && status !== 'running') return;
    await new Promise<void>((resolve) => {
      // Removed after each pause: a listener per poll left on the signal piles up (MaxListenersExceededWarning).
      const onAbort = (): void => (clearTimeout(t), resolve());
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, LOCK_POLL_MS);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * Per schedule, the tail of its submissions still in progress while it catches up: a tick due
 * meanwhile queues behind them and, like them, waits for the job's lock, so it neither overtakes
 * an older missed tick nor is skipped because one of them holds the lock.
 */
type Lanes = Map<ScheduleEntry, Promise<unknown>>;

/** Runs `fire` after the schedule's lane; the lane is gone once its last submission ended. */
function inLane<T>(lanes: Lanes, entry: ScheduleEntry, fire: () => Promise<T>): Promise<T> {
  const before = lanes.get(entry) ?? Promise.resolve();
  const next = before.then(fire, fire);
  lanes.set(entry, next);
  const clear = (): void => {
    if (lanes.get(entry) === next) lanes.delete(entry);
  };
  next.then(clear, clear);
  return next;
}

/**
 * Submits the ticks each schedule missed within its catch-up window, oldest first. A tick whose
 * job's lock is held waits for the holder to end, so the ticks of a locked job run one after the
 * other; schedules are caught up side by side.
 */
export async function catchUp(
  ctx: SchedulerContext,
  entries: ScheduleEntry[],
  now = new Date(),
  signal?: AbortSignal,
  lanes: Lanes = new Map(),
): Promise<number[]> {
  const perEntry = await Promise.all(
    entries.map(async (entry) => {
      const runs: number[] = [];
      const window = entry.schedule.catch_up;
      if (!window) return runs;
      // All of them join the lane at once, so a tick falling due meanwhile queues behind the last.
      const submitted = ticksBetween(entry, new Date(now.getTime() - window), now).map((at) =>
        inLane(lanes, entry, () =>
          signal?.aborted ? Promise.resolve(null) : fireTick(ctx, entry, at, { waitForLock: true, signal }),
        ),
      );
      for (const id of await Promise.all(submitted)) {
        if (id === null) continue;
        runs.push(id);
        // A tick made up now was missed when it fell due.
        recordMissedTick(entry.job.name, entry.index);
      }
      return runs;
    }),
  );
  return perEntry.flat();
}

export interface RunningScheduler {
  entries: ScheduleEntry[];
  /**
   * The catch-up of missed ticks, which runs beside the schedules (it can wait for locks): the
   * runs it submitted.
   */
  caughtUp: Promise<number[]>;
  stop(): Promise<void>;
}

export async function startScheduler(ctx: SchedulerContext): Promise<RunningScheduler> {
  const entries = await loadSchedules(ctx.home);
  const stopping = new AbortController();
  const lanes: Lanes = new Map();
  const caughtUp = catchUp(ctx, entries, new Date(), stopping.signal, lanes).catch((err: unknown) => {
    ctx.log.error({ err }, 'could not make up missed ticks');
    return [];
  });
  const tasks = entries.map((entry) =>
    cron.schedule(
      entry.schedule.cron,
      async () => {
        // The tick's identity comes from the pattern, not from when this process woke up, so all
        // schedulers agree on it.
        const at = latestTick(entry, new Date());
        // While the schedule catches up, the tick takes its turn behind the missed ones.
        const fire = lanes.has(entry)
          ? inLane(lanes, entry, () =>
              stopping.signal.aborted
                ? Promise.resolve(null)
                : fireTick(ctx, entry, at, { waitForLock: true, signal: stopping.signal }),
            )
          : fireTick(ctx, entry, at);
        await fire.catch((err: unknown) =>
          ctx.log.error({ job: entry.job.name, err }, 'could not submit a scheduled run'),
        );
      },
      { timezone: entry.schedule.timezone, name: `${entry.job.name}#${entry.index}`, noOverlap: false },
    ),
  );
  const reconciler = ctx.reconcile
    ? startReconciler({ ...ctx, redis: ctx.reconcile.redis }, ctx.reconcile.intervalMs)
    : null;
  const approvals = startApprovalExpiry(ctx.pool, ctx.log, ctx.approvalExpiryMs ?? 60_000);
  return {
    entries,
    caughtUp,
    async stop() {
      stopping.abort();
      await reconciler?.stop();
      await approvals.stop();
      for (const t of tasks) await t.stop();
      await caughtUp;
    },
  };
}

/** For `erp schedules`: each schedule, its next fire times and its last run. */
export async function describeSchedules(
  pool: pg.Pool,
  home: string,
  now = new Date(),
): Promise<
  {
    job: string;
    index: number;
    cron: string;
    timezone: string;
    next: Date[];
    lastRun: { id: number; status: string; at: Date } | null;
  }[]
> {
  const entries = await loadSchedules(home);
  const out = [];
  for (const e of entries) {
    const last = await lastRunOfSchedule(pool, e.job.name, e.index);
    out.push({
      job: e.job.name,
      index: e.index,
      cron: e.schedule.cron,
      timezone: e.schedule.timezone,
      next: nextTicks(e, now, 3),
      lastRun: last ? { id: last.id, status: last.status, at: last.created_at } : null,
    });
  }
  return out;
}
