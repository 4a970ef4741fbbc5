/**
 * The claims of one process (runner.claim_run, or a SQL step's commit that claims its run), on
 * their way to the database. A worker's last resort (last-resort.ts) closes the gate before it
 * hands its runs back: from then on no claim is sent, and it waits for the claims already sent to
 * land (or fail) before it writes the hand-back. So no claim can mark a handed-back run running
 * again after the hand-back, whatever the timing: correct by construction, not by a wait.
 *
 *   claimRun / step commit ──► gate.send / gate.hold ──► PostgreSQL
 *                                   ▲ closed: ClaimsStoppedError, nothing sent
 *   last resort ──► gate.stop() ── waits for those in flight ──► hand-back UPDATE
 */
export class ClaimGate {
  #stopped = false;
  readonly #inFlight = new Set<Promise<unknown>>();

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Sends a claim, unless the gate is closed; it counts as in flight until it settles. */
  send<T>(claim: () => Promise<T>): Promise<T> {
    if (this.#stopped) return Promise.reject(new ClaimsStoppedError());
    const p = claim();
    this.#track(p);
    return p;
  }

  /**
   * A claim sent by someone else (a SQL step's `…; COMMIT`): throws if the gate is closed, else
   * counts as in flight until the returned release is called.
   */
  hold(): () => void {
    if (this.#stopped) throw new ClaimsStoppedError();
    let release!: () => void;
    this.#track(new Promise<void>((resolve) => (release = resolve)));
    return release;
  }

  /**
   * Closes the gate for good and resolves once every claim in flight settled, or after `maxMs`
   * (a process in an unknown state does not wait forever).
   */
  async stop(maxMs = 5000): Promise<void> {
    this.#stopped = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#inFlight]),
      new Promise((resolve) => (timer = setTimeout(resolve, maxMs))),
    ]);
    clearTimeout(timer);
  }

  #track(p: Promise<unknown>): void {
    this.#inFlight.add(p);
    const done = (): void => void this.#inFlight.delete(p);
    p.then(done, done);
  }
}

/** A claim refused because its process is handing its runs back (it crashed). */
export class ClaimsStoppedError extends Error {
  override name = 'ClaimsStoppedError';
  constructor() {
    super('this process is handing its runs back; it claims no more runs');
  }
}
