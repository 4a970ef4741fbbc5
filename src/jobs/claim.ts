/**
 * A recorded run's claim as the executor holds it: whether this process has made the run its own
 * (runner.claim_run, or a SQL step's commit through runner.step_succeeded), and what the run's
 * record already says because of it (which step is recorded as running, whether the run's success
 * went in with a commit). Each method is one named transition:
 *
 *   unclaimed ──now()──────────► sent ──(lands)──► ours (cancel pending?, steps done earlier)
 *       │                              └──────────► not ours (finished elsewhere, cancelled while queued)
 *       └──deferFor(ms)──► deferred ──(ms pass)──► now()
 *                             └──commitClaim() + committed(next)──► ours by a step's commit
 *   any ──forFailure()──► the answer a failure is recorded after (claimed once the database is back)
 *
 * Every claim goes through the process's ClaimGate (claims.ts), which its last resort closes before
 * handing its runs back: a claim sent with `now()`, or a step commit that claims the run, from
 * commitClaim() until commitSettled().
 *
 * A first delivery's first SQL step runs at once and claims its run with its own commit (one round
 * trip less for a short run); a longer one is claimed after CLAIM_AFTER_MS, so the run shows as
 * running while it works.
 */
import { whileUnreachable } from '../db/pool.js';
import type { AppContext } from '../app.js';
import { CancelledError } from '../errors.js';
import type { ClaimGate } from './claims.js';
import { claimRun, type Claim } from './run-record.js';
import type { FlatStep, RunOutcome } from './types.js';

/** What the claim answered: the run is ours (a {@link Claim}), or its final outcome, not ours to touch. */
export type ClaimAnswer = Claim | { final: Partial<RunOutcome> };

/** The run's claim found it no longer queued or running: its record is final and not ours. */
export class NotOursError extends Error {
  override name = 'NotOursError';
}

export class RunClaim {
  /** The claim on its way or landed; null until sent. */
  private sent: Promise<ClaimAnswer> | null = null;
  private timer: NodeJS.Timeout | undefined;
  /** A SQL step's commit claimed the run (or found it claimed), and recorded what came next. */
  private claimedByCommit = false;
  /** The position of the step whose record as running exists already. */
  private runningRecorded: number | null = null;
  /** The run's success was committed with its last step. */
  private finishedByCommit = false;
  /** Ends the gate's hold on a step commit that claims the run. */
  private release: (() => void) | undefined;

  constructor(
    private readonly app: AppContext,
    private readonly gate: ClaimGate,
    private readonly runId: number,
    private readonly liveness: number,
    /** The run's first step, which a first attempt's claim records as running. */
    private readonly firstStep: () => FlatStep | undefined,
  ) {}

  /** Sends the claim (once: later calls return the same answer), cancelling a deferred one. */
  now(): Promise<ClaimAnswer> {
    clearTimeout(this.timer);
    if (!this.sent) {
      this.sent = this.gate.send(() => claimRun(this.app, this.runId, this.liveness, this.firstStep()));
      // Settled on every path (forFailure waits for it), so never an unhandled rejection.
      this.sent.catch(() => undefined);
    }
    return this.sent;
  }

  /**
   * Claims once `ms` pass, unless a step's commit claims first. The first step counts as recorded
   * running: the claim or the commit records it.
   */
  deferFor(ms: number): void {
    this.timer = setTimeout(() => void this.now(), ms);
    this.runningRecorded = 1;
  }

  /** The claim landed and the run is ours: its first step may be recorded as running already. */
  landed(claim: Claim): void {
    if (claim.firstStepRecorded) this.runningRecorded = 1;
  }

  /** Whether step `position` is recorded as running already (by the claim or the previous commit). */
  isRecordedRunning(position: number): boolean {
    return this.runningRecorded === position;
  }

  /**
   * A SQL step is about to commit: waits for a claim on its way (refusing when the run is not ours
   * or was cancelled) and says whether the commit claims the run itself, for this liveness key.
   */
  async commitClaim(): Promise<{ liveness: number } | null> {
    clearTimeout(this.timer);
    if (this.sent) {
      const claim = await this.sent;
      if ('final' in claim) throw new NotOursError();
      if (claim.cancelRequested) throw new CancelledError();
    }
    if (this.sent || this.claimedByCommit) return null;
    // This commit claims the run: it is a claim in flight until the step settles.
    this.release = this.gate.hold();
    return { liveness: this.liveness };
  }

  /** The step whose commit may have claimed the run settled (committed or not): no claim in flight. */
  commitSettled(): void {
    this.release?.();
    this.release = undefined;
  }

  /**
   * The step's commit landed: it claimed the run if nothing had, and recorded the next step as
   * running, or (with no next step) the run as succeeded.
   */
  committed(next: { position: number } | null): void {
    this.claimedByCommit = true;
    this.finishedByCommit = next === null;
    this.runningRecorded = next?.position ?? null;
  }

  /** The run's success went in with its last step's commit. */
  get finished(): boolean {
    return this.finishedByCommit;
  }

  /**
   * The answer a failure is recorded after: the run claimed (so its record counts the attempt) and
   * the claim landed (else it could mark the run running again). A claim cut off with the step (the
   * database restarted before it landed) is made again once the database is back. Null when no
   * answer could be had.
   */
  async forFailure(onWait: () => void): Promise<ClaimAnswer | null> {
    if (this.claimedByCommit) return this.sent ? await this.sent.catch(() => null) : null;
    const claim = await this.now().catch(() => null);
    if (claim !== null) return claim;
    return whileUnreachable(
      () => this.gate.send(() => claimRun(this.app, this.runId, this.liveness, this.firstStep())),
      {
        onWait,
      },
    ).catch(() => null);
  }

  /** The run's attempt is over: no deferred claim is sent after it. */
  stop(): void {
    clearTimeout(this.timer);
  }
}
