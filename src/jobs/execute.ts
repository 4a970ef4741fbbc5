import { whileUnreachable } from '../db/pool.js';
import { removeRunTemp } from '../runs/temp.js';
import type pg from 'pg';
import { CancelledError, describeError, isPermanent, TimeoutError, UserError } from '../errors.js';
import { type AppContext } from '../app.js';
import { errorKindOf, finishRun, requeueRun } from '../runs/store/runs.js';
import { detailOf, finalOutcome, recordStep, stepSucceededSql } from './run-record.js';
import { RunClaim } from './claim.js';
import { ClaimGate } from './claims.js';
import { fillParams, loadJob, stepParamsOf, type JobDefinition, type Runnable } from './definition.js';
import { reportOf, stepKindOfEntry } from './steps/registry.js';
import type { StepRunContext } from './steps/types.js';
import { poolRunnerSession } from './session.js';
import { SQLSTATE } from '../db/sqlstate.js';
import type { FlatStep, RunOutcome, RunProgress, StepOutcome } from './types.js';

export interface ExecuteOptions {
  /** The run row, or null for a dry run that records nothing. */
  runId: number | null;
  runnable: Runnable;
  params: Record<string, string>;
  dryRun: boolean;
  force?: boolean;
  files?: string[];
  signal: AbortSignal;
  /** Attempts left after this one; a transient failure with attempts left puts the run back in the queue. */
  attemptsLeft?: number;
  /**
   * No earlier attempt of this run can have started (a queue job's first delivery): a first SQL
   * step may then run while the run's claim is on its way, and commits only once the claim said
   * the run is ours. One round trip less for a short run.
   */
  firstDelivery?: boolean;
  /**
   * The liveness key of this process's runner session ({@link openRunnerSession}); without one, a
   * recorded run holds a session of its own (a pool connection) for its duration.
   */
  liveness?: number;
  /**
   * The process's claim gate, which its last resort closes before handing its runs back
   * (claims.ts). @defaultValue a gate of the run's own, never closed
   */
  claims?: ClaimGate;
  onProgress?: (p: RunProgress) => void;
  /** Told each pipeline's result: a worker counts it in the metrics it serves ({@link StepRunContext}). */
  onPipeline?: StepRunContext<unknown>['onPipeline'];
}

/** Expands nested jobs into one ordered list of the steps that do work, each made by its kind. */
export async function flattenSteps(
  home: string,
  job: JobDefinition,
  params: Record<string, string>,
  seen: string[] = [],
): Promise<FlatStep[]> {
  if (seen.includes(job.name)) throw new UserError(`job ${[...seen, job.name].join(' → ')} calls itself`);
  const out: FlatStep[] = [];
  for (const entry of job.config.steps) {
    const kind = stepKindOfEntry(entry);
    const steps = await kind.create(entry, {
      home,
      params: stepParamsOf(entry, params),
      fill: (text, where) => fillParams(text, params, where),
      expand: async (name, p) => flattenSteps(home, await loadJob(home, name), p, [...seen, job.name]),
    });
    out.push(...steps.map((s) => ({ kind: kind.kind, role: kind.role, ...s })));
  }
  return out;
}

/**
 * The run's plan: its steps flattened, and what each needs checked (every pipeline definition
 * loaded, every SQL file found), so a broken job is refused before anything is queued.
 */
export async function planRun(
  home: string,
  runnable: Runnable,
  params: Record<string, string>,
): Promise<FlatStep[]> {
  const steps = await flattenSteps(home, runnable.job, params);
  for (const step of steps) await step.plan({ jobFile: runnable.job.file });
  return steps;
}

export async function executeRun(context: AppContext, opts: ExecuteOptions): Promise<RunOutcome> {
  const { runId } = opts;
  // Every line logged while the run executes (its steps, their files, their stages) names the run.
  const app: AppContext = { ...context, log: context.log.child({ runId, job: opts.runnable.name }) };
  const outcome: RunOutcome = {
    runId,
    status: 'succeeded',
    steps: [],
    error: null,
    permanent: false,
    errorKind: null,
  };
  const controller = new AbortController();
  const signal = AbortSignal.any([opts.signal, controller.signal]);
  const timeoutMs = opts.runnable.job.config.timeout;
  const timer = timeoutMs
    ? setTimeout(
        () => controller.abort(new TimeoutError(`timed out after ${timeoutMs / 1000} s (the job's timeout)`)),
        timeoutMs,
      )
    : null;
  let current = -1;
  /** Positions of the steps an earlier attempt finished. */
  const done = new Set<number>();
  // While this process executes the run it holds its session's liveness lock: if the process dies,
  // PostgreSQL drops the lock, and a later submission can tell the run was abandoned.
  const ownSession = runId !== null && opts.liveness === undefined ? await poolRunnerSession(app.pool) : null;
  const liveness = opts.liveness ?? ownSession?.key ?? null;
  let steps: FlatStep[] = [];
  // The run's claim (src/jobs/claim.ts): made at once, or, for a first delivery's first SQL step,
  // once the step outlasts CLAIM_AFTER_MS; a step done sooner claims the run with its own commit.
  const gate = opts.claims ?? new ClaimGate();
  const claim = runId !== null ? new RunClaim(app, gate, runId, liveness!, () => steps[0]) : null;
  try {
    steps = await flattenSteps(app.home, opts.runnable.job, opts.params);
    if (claim) {
      if (opts.firstDelivery && steps[0]?.role === 'transaction' && !opts.dryRun) {
        // The step runs at once; it commits only after the claim, if one was made, said the run is
        // ours, or claims the run itself (commitWith below).
        claim.deferFor(CLAIM_AFTER_MS);
      } else {
        const answer = await claim.now();
        if ('final' in answer) {
          Object.assign(outcome, answer.final);
          return outcome;
        }
        if (answer.cancelRequested) throw new CancelledError();
        for (const position of answer.done) done.add(position);
        claim.landed(answer);
      }
    }
    for (let i = 0; i < steps.length; i++) {
      current = i;
      const step = steps[i]!;
      const base = { runId, step: i + 1, steps: steps.length, kind: step.kind, name: step.name };
      if (done.has(i + 1)) {
        outcome.steps.push({ kind: step.kind, name: step.name, status: 'skipped' });
        opts.onProgress?.({ ...base, state: 'skipped', message: 'done in an earlier attempt' });
        continue;
      }
      if (signal.aborted) throw signal.reason ?? new CancelledError();
      // Recording the step as running also tells whether a cancel was asked for meanwhile.
      if (!claim?.isRecordedRunning(i + 1) && (await recordStep(app, runId, i + 1, step, 'running')))
        throw new CancelledError();
      opts.onProgress?.({ ...base, state: 'running' });
      const nextAt = steps.findIndex((_, k) => k > i && !done.has(k + 1));
      // A transaction step (SQL) of a recorded run commits its success (and the run's, if it is the last) with its work.
      const next = nextAt < 0 ? null : { position: nextAt + 1, step: steps[nextAt]! };
      const commitWith =
        claim && runId !== null && step.role === 'transaction' && !opts.dryRun
          ? async (result: unknown, client: pg.PoolClient): Promise<string> => {
              const by = await claim.commitClaim();
              return stepSucceededSql(client, runId, i + 1, outcomeOf(step, 'succeeded', result), next, by);
            }
          : undefined;
      const stepApp = { ...app, log: app.log.child({ step: step.name, position: i + 1 }) };
      stepApp.log.debug({ kind: step.kind }, 'step running');
      const ctx: StepRunContext<unknown> = {
        app: stepApp,
        runId,
        dryRun: opts.dryRun,
        force: opts.force,
        files: opts.files,
        signal,
        onRows: (rows, at) => opts.onProgress?.({ ...base, state: 'running', rows, ...at }),
        // A failing step's result (a pipeline's files and rejects) is part of the outcome a dry run shows.
        onFailed: (failed, error) => outcome.steps.push(outcomeOf(step, 'failed', failed, error)),
        ...(commitWith ? { commitWith } : {}),
        ...(opts.onPipeline ? { onPipeline: opts.onPipeline } : {}),
      };
      const result = outcomeOf(step, 'succeeded', await step.run(ctx).finally(() => claim?.commitSettled()));
      stepApp.log.debug({ kind: step.kind }, 'step succeeded');
      outcome.steps.push(result);
      // The run's claim (if not made yet), the next step's running record or the run's success
      // went in with this one's success.
      if (commitWith) claim!.committed(next);
      else await recordStep(app, runId, i + 1, step, 'succeeded', detailOf(result));
      const shown = progressOf(result);
      opts.onProgress?.({
        ...base,
        state: 'succeeded',
        rows: shown.rows,
        ...(shown.message !== undefined ? { message: shown.message } : {}),
      });
    }
    if (runId !== null && !claim?.finished) await finishRun(app.pool, runId, 'succeeded');
    return outcome;
  } catch (caught) {
    // The process crashed and its last resort hands this run back: that record is the last word.
    if (gate.stopped) {
      Object.assign(outcome, {
        status: 'retrying',
        error: describeError(caught),
        permanent: false,
        errorKind: 'infra',
      } satisfies Partial<RunOutcome>);
      return outcome;
    }
    // A failure is recorded only once the run is claimed (so it records the attempt), and after the
    // claim landed (else the claim could mark the run running again).
    const answer = await claim?.forFailure(() =>
      app.log.warn('the database is unreachable; waiting for it to record the attempt'),
    );
    if (answer && 'final' in answer) {
      Object.assign(outcome, answer.final);
      return outcome;
    }
    const code = (caught as { code?: unknown } | null)?.code;
    // runner.step_succeeded refused: the run was finished elsewhere; its record is not ours to touch.
    if (code === SQLSTATE.NOT_OURS && runId !== null) {
      Object.assign(outcome, await finalOutcome(app, runId, describeError(caught)));
      return outcome;
    }
    // An aborted signal says why: a plain abort is a cancellation; a timeout or a worker handing the
    // run back carries its own error. A cancel seen as the step committed (SQLSTATE.CANCELLED_AT_COMMIT) is a cancellation.
    const reason: unknown = signal.aborted ? signal.reason : undefined;
    const err = !signal.aborted
      ? code === SQLSTATE.CANCELLED_AT_COMMIT
        ? new CancelledError()
        : caught
      : reason instanceof Error && reason.name !== 'AbortError'
        ? reason
        : new CancelledError();
    const cancelled = err instanceof CancelledError;
    outcome.error = describeError(err);
    outcome.permanent = isPermanent(err);
    outcome.errorKind = errorKindOf(err);
    // A run handed back by a worker shutting down goes back to the queue whatever its attempts.
    const handedBack = err instanceof HandedBackError;
    const retry = handedBack || (!outcome.permanent && (opts.attemptsLeft ?? 0) > 0);
    outcome.status = cancelled ? 'cancelled' : retry ? 'retrying' : 'failed';
    app.log.debug(
      { status: outcome.status, step: steps[current]?.name, position: current + 1, err },
      'run attempt ended',
    );
    // The failure is often the database going away (a restart, a failover): its record waits for
    // the database to come back rather than leave the run 'running'.
    const waiting = (): void =>
      app.log.warn('the database is unreachable; waiting for it to record the failed attempt');
    if (current >= 0 && runId !== null) {
      const step = steps[current];
      if (step)
        await whileUnreachable(
          () =>
            recordStep(
              app,
              runId,
              current + 1,
              step,
              cancelled ? 'cancelled' : 'failed',
              undefined,
              outcome.error ?? undefined,
            ),
          { onWait: waiting },
        );
    }
    if (runId !== null) {
      await whileUnreachable(
        async () => {
          if (retry) {
            await requeueRun(
              app.pool,
              runId,
              handedBack ? outcome.error : `attempt failed, will retry: ${outcome.error}`,
            );
          } else {
            await finishRun(
              app.pool,
              runId,
              cancelled ? 'cancelled' : 'failed',
              outcome.error,
              outcome.errorKind,
            );
          }
        },
        { onWait: waiting },
      );
    }
    return outcome;
  } finally {
    claim?.stop();
    if (timer) clearTimeout(timer);
    await ownSession?.close().catch(() => undefined);
    // This attempt's temporary files (downloads, spools) are of no use to the next one.
    if (runId !== null) await removeRunTemp(app.dataDir, runId).catch(() => undefined);
  }
}

/**
 * How long a first delivery's first SQL step runs before its run is claimed (and shows as running);
 * a step done sooner claims the run with its own commit.
 */
const CLAIM_AFTER_MS = 100;

/** A worker shutting down stopped the run and hands it back to the queue; another worker runs it. */
export class HandedBackError extends Error {
  override name = 'HandedBackError';
  constructor() {
    super('the worker running it shut down; the run went back to the queue');
  }
}

/** A step's outcome, its result (if any) under its kind's key. */
function outcomeOf(
  step: FlatStep,
  status: StepOutcome['status'],
  result: unknown,
  error?: string,
): StepOutcome {
  return {
    kind: step.kind,
    name: step.name,
    status,
    [step.kind]: result,
    ...(error !== undefined ? { error } : {}),
  } as StepOutcome;
}

/** The rows and the message the progress of a succeeded step shows, as its kind tells them. */
function progressOf(outcome: StepOutcome): { rows?: number; message?: string } {
  const r = reportOf(outcome);
  return r ? r.report.progress(r.result) : {};
}
