import type { QueueEvents } from 'bullmq';
import type { App } from '../app.js';
import { definitionHashes } from '../audit/definitions.js';
import { whileUnreachable } from '../db/pool.js';
import { describeError, UserError } from '../errors.js';
import { requestCancel } from '../jobs/cancel.js';
import { resolveParams, resolveRunnable, type Runnable } from '../jobs/definition.js';
import { executeRun, planRun, type FlatStep } from '../jobs/execute.js';
import { assertPreflight } from '../jobs/preflight.js';
import { reopenRun } from '../jobs/resume.js';
import { followRun } from '../jobs/follow.js';
import { openRunnerSession } from '../jobs/session.js';
import { createQueuedRun, enqueueRun } from '../jobs/submit.js';
import { formatRunView, viewOfOutcome, viewOfRecords } from './report.js';
import { finishRun, getRun } from '../runs/history.js';
import { EXIT, exitCodeOf, withSigint, wouldExitLine } from './exit.js';
import { stepReporter } from './progress.js';

/** Options of `erp run`. */
export interface RunCommandOptions {
  file?: string[];
  param?: string[];
  period?: string[];
  dryRun?: boolean;
  force?: boolean;
  inline?: boolean;
  detach?: boolean;
  cancel?: boolean;
  /** A failed run's id: finish it from its failed step (`erp run --resume <run>`). */
  resume?: string[] | string;
}

/** `--param k=v` (repeatable) and `--period P` as one parameter map. */
export function parseParams(
  param: string[] | undefined,
  period: string[] | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  // A parameter given twice with two values is refused: which one was meant cannot be guessed.
  const set = (name: string, value: string, as: string): void => {
    if (Object.hasOwn(out, name) && out[name] !== value)
      throw new UserError(
        `${name} is given twice (${out[name]} and ${value}, the second as ${as}); give it once`,
      );
    out[name] = value;
  };
  for (const p of param ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UserError(`--param expects name=value, got '${p}'`);
    set(p.slice(0, eq), p.slice(eq + 1), `--param ${p}`);
  }
  for (const p of period ?? []) set('period', String(p), `--period ${p}`);
  return out;
}

/**
 * `erp run <job|pipeline>`: refuses unknown names and bad parameters before anything is queued;
 * then queues the run and follows it, or runs it here (`--inline`, and every `--dry-run`, which
 * records nothing).
 */
export async function runCommand(
  app: App,
  name: string | undefined,
  opts: RunCommandOptions,
): Promise<number> {
  if (opts.resume !== undefined) return resumeCommand(app, name, opts);
  if (name === undefined)
    throw new UserError('usage: erp run <job|pipeline> [options], or erp run --resume <run>');
  const runnable = await resolveRunnable(app.home, name);
  const params = resolveParams(runnable.job, parseParams(opts.param, opts.period));
  // Every problem of the whole job, before anything is recorded (exit 2).
  await assertPreflight(app, runnable, params, { ...(opts.file ? { files: opts.file } : {}) });
  const plan = await planRun(app.home, runnable, params);
  if (runnable.job.config.approval?.required && !opts.dryRun) {
    const { requestApprovalCommand } = await import('./compliance.js');
    return requestApprovalCommand(app, runnable, params, {
      force: opts.force,
      files: opts.file,
      inline: opts.inline,
    });
  }
  return startRun(app, { runnable, params, files: opts.file, force: opts.force, plan, runId: null }, opts);
}

/** `erp run --resume <run>`: the failed run, reopened under its lock, finished from its failed step. */
async function resumeCommand(app: App, name: string | undefined, opts: RunCommandOptions): Promise<number> {
  const ids = Array.isArray(opts.resume) ? opts.resume : [opts.resume];
  const id = String(ids[0]);
  if (ids.length > 1 || !/^\d+$/.test(id))
    throw new UserError('usage: erp run --resume <run> (one run number)');
  const given = [
    name !== undefined && `a job name (${name})`,
    opts.param && '--param',
    opts.period && '--period',
    opts.file && '--file',
    opts.force && '--force',
    opts.dryRun && '--dry-run',
  ].filter(Boolean);
  if (given.length > 0)
    throw new UserError(
      `--resume takes the run's own job, parameters and files; drop ${given.join(', ')} (or start a new run without --resume)`,
    );
  const run = await reopenRun(app.pool, app.home, Number(id), (r) =>
    assertPreflight(app, r.runnable, r.params, { skip: r.done, ...(r.files ? { files: r.files } : {}) }),
  );
  process.stderr.write(
    `resuming run ${run.runId} (${run.runnable.name}) from step ${run.steps.findIndex((_, i) => !run.done.includes(i + 1)) + 1} of ${run.steps.length}; steps ${run.done.join(', ') || 'none'} done before are not run again\n`,
  );
  return startRun(
    app,
    {
      runnable: run.runnable,
      params: run.params,
      files: run.files,
      force: run.force,
      plan: run.steps,
      runId: run.runId,
    },
    opts,
  );
}

/** A run about to start: new (runId null: recorded here) or a resumed one already queued again. */
interface StartingRun {
  runnable: Runnable;
  params: Record<string, string>;
  files: string[] | undefined;
  force: boolean | undefined;
  plan: FlatStep[];
  runId: number | null;
}

async function startRun(app: App, start: StartingRun, opts: RunCommandOptions): Promise<number> {
  const { runnable, params, files, plan } = start;
  opts = { ...opts, force: start.force };
  // A new run records the SHA-256 of each definition it uses; a resumed one keeps its own.
  const definitions = opts.dryRun || start.runId !== null ? [] : await definitionHashes(app.home, runnable);
  process.stderr.write(
    `plan: ${plan.map((s, i) => `${i + 1}. ${s.kind} ${s.name}`).join('; ')}${opts.dryRun ? ' (dry run)' : ''}\n`,
  );
  if (opts.dryRun || opts.inline) {
    if (!opts.dryRun) process.stderr.write('running inline in this process (no queue, no worker)\n');
    // A recorded inline run can be cancelled from elsewhere (erp cancel) as a worker's can.
    const cancelled = new AbortController();
    let runId: number | null = null;
    const session = opts.dryRun
      ? null
      : await openRunnerSession(app.config.DATABASE_URL, {
          onCancel: (id) => id === runId && cancelled.abort(),
          log: app.log,
        });
    const steps = stepReporter({ every: app.config.ERP_PROGRESS_MS });
    try {
      if (start.runId !== null) runId = start.runId;
      else if (!opts.dryRun) {
        runId = await createQueuedRun(app.pool, runnable, params, {
          trigger: 'cli --inline',
          force: opts.force,
          files,
          definitions,
        });
      }
      const outcome = await withSigint((signal) =>
        executeRun(app, {
          runId,
          runnable,
          params,
          dryRun: opts.dryRun ?? false,
          force: opts.force,
          files,
          signal: AbortSignal.any([signal, cancelled.signal]),
          onProgress: steps.update,
          ...(session ? { liveness: session.key } : {}),
        }),
      );
      steps.stop();
      const code = exitCodeOf(outcome.status, outcome.errorKind);
      // A recorded run is told from its records, exactly as when it runs in a worker.
      const view =
        runId === null
          ? viewOfOutcome(runnable.name, params, outcome)
          : viewOfRecords((await whileUnreachable(() => getRun(app.pool, runId!)))!);
      process.stdout.write(formatRunView(view) + (opts.dryRun ? `\n${wouldExitLine(code)}` : '') + '\n');
      return code;
    } finally {
      steps.stop();
      await session?.close().catch(() => undefined);
    }
  }

  // Redis and BullMQ load only when a run is queued: an inline run or a dry run never needs them.
  const { connectRedis, createQueue, createQueueEvents, lastEventIdOf, redisConnection } =
    await import('../runner/queue.js');
  const redis = redisConnection(app.config.REDIS_URL, 'producer');
  const queue = createQueue(redis, app.config.ERP_QUEUE_PREFIX);
  let events: QueueEvents | null = null;
  const eventsRedis = redisConnection(app.config.REDIS_URL, 'worker');
  try {
    await connectRedis(redis, app.config.REDIS_URL);
    // Follow from the events stream's end as it is before the run is queued: a fast worker can
    // report the first step before a listener started afterwards reads the stream.
    const since = opts.detach ? undefined : await lastEventIdOf(redis, queue);
    const runId =
      start.runId ??
      (await createQueuedRun(app.pool, runnable, params, { force: opts.force, files, definitions }))!;
    try {
      await enqueueRun(queue, runId, runnable, params, {
        force: opts.force,
        files,
        ...(start.runId !== null ? { resume: true } : {}),
      });
    } catch (err) {
      await finishRun(app.pool, runId, 'failed', `could not enqueue: ${describeError(err)}`, 'infra');
      throw err;
    }
    if (opts.detach) {
      process.stdout.write(`${runId}\n`);
      return EXIT.ok;
    }
    const shown = Object.entries(params)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    process.stderr.write(
      `run ${runId} queued: ${runnable.kind} ${runnable.name}${shown ? ` ${shown}` : ''}\n`,
    );
    events = createQueueEvents(eventsRedis, app.config.ERP_QUEUE_PREFIX, since);
    const steps = stepReporter({ every: app.config.ERP_PROGRESS_MS });
    const status = await withSigint((signal) =>
      followRun(app.pool, events!, runId, steps.update, signal, plan.length, (message) => {
        steps.stop();
        process.stderr.write(`${message ?? 'the database is back; following'}\n`);
      }),
    ).finally(steps.stop);
    if (status === 'detached') {
      if (opts.cancel) {
        const r = await requestCancel(app.pool, runId, queue);
        process.stderr.write(`run ${runId}: ${r === 'cancelled' ? 'cancelled' : 'cancel requested'}\n`);
      } else {
        process.stderr.write(
          `stopped following; run ${runId} goes on (erp runs show ${runId}; erp cancel ${runId})\n`,
        );
      }
      return EXIT.cancelled;
    }
    const detail = (await whileUnreachable(() => getRun(app.pool, runId)))!;
    process.stdout.write(formatRunView(viewOfRecords(detail)) + '\n');
    return exitCodeOf(status, detail.run.error_kind);
  } finally {
    await events?.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    redis.disconnect();
    eventsRedis.disconnect();
  }
}
