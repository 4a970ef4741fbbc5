import { randomInt } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { CANCEL_CHANNEL } from './cancel.js';

/** Advisory lock class of runner sessions: (class, key) is held by a process executing runs. */
export const LIVENESS_LOCK_CLASS = 0x45525032;

/**
 * A process's session with the run history, on one connection of its own for the life of the
 * process (a worker) or of the run (`erp run --inline`):
 *
 * - liveness: it holds the session advisory lock (LIVENESS_LOCK_CLASS, key), and every run the
 *   process claims records `key` in runner.runs.liveness_key. If the process dies, PostgreSQL
 *   drops the lock with the connection, and a later submission can tell the run was abandoned.
 *   One lock per process, whatever the number of runs in hand.
 * - cancels: it LISTENs for `erp cancel` requests and hands each run id to `onCancel`.
 *
 * When its connection is lost (a server restart, a terminated backend), the lock went with it: the
 * session connects again, every `reconnectMs` until it can, and takes the same key again (a new one
 * only if another process took it meanwhile). The runs in hand lost their own connections the same
 * way; they fail as transient and are recorded by this process, which is alive: a reconciler must
 * not count them as abandoned.
 */
export interface RunnerSession {
  /** The liveness key runs claimed by this process record now. */
  readonly key: number;
  close(): Promise<void>;
}

export interface RunnerSessionOptions {
  onCancel?: (runId: number) => void;
  /** Told when the connection was lost and when it is back. */
  log?: Pick<Logger, 'warn' | 'info'>;
  /** @defaultValue 1000 */
  reconnectMs?: number;
}

export async function openRunnerSession(
  databaseUrl: string,
  opts: RunnerSessionOptions = {},
): Promise<RunnerSession> {
  const { onCancel, log } = opts;
  let client: pg.Client | null = null;
  let key = 0;
  let closing = false;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: databaseUrl, application_name: 'erp-runner-session' });
    c.on('error', () => undefined);
    if (onCancel) {
      c.on('notification', (msg) => {
        if (msg.channel === CANCEL_CHANNEL && msg.payload && /^\d+$/.test(msg.payload))
          onCancel(Number(msg.payload));
      });
    }
    await c.connect();
    try {
      // After a lost connection the same key is taken again when free (it is, after a server
      // restart): the runs this process still has in hand stay recognisably alive.
      key = await drawLivenessKey(c, key || undefined);
      if (onCancel) await c.query(`LISTEN ${CANCEL_CHANNEL}`);
    } catch (err) {
      await c.end().catch(() => undefined);
      throw err;
    }
    if (closing) {
      // Closed while this connection was being made again.
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    c.once('end', () => {
      if (closing) return;
      client = null;
      log?.warn('runner session lost (liveness lock and cancel listener); connecting again');
      reconnect();
    });
  };
  const reconnect = (): void => {
    retry = setTimeout(() => {
      connect().then(
        () => log?.info({ key }, 'runner session back'),
        () => reconnect(),
      );
    }, opts.reconnectMs ?? 1000);
    retry.unref();
  };

  await connect();
  return {
    get key() {
      return key;
    },
    async close() {
      closing = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}

/** A session without cancel listening on a connection of `pool`, for one run executed on its own. */
export async function poolRunnerSession(pool: pg.Pool): Promise<RunnerSession> {
  const client = await pool.connect();
  try {
    const key = await drawLivenessKey(client);
    return {
      key,
      async close() {
        await client
          .query('SELECT pg_advisory_unlock($1, $2)', [LIVENESS_LOCK_CLASS, key])
          .catch(() => undefined);
        client.release();
      },
    };
  } catch (err) {
    client.release(true);
    throw err;
  }
}

/**
 * Takes the liveness lock on a random positive int4 key: another live process holding the same one
 * is all but impossible, and the try-lock tells; then it draws again.
 */
async function drawLivenessKey(client: pg.ClientBase, preferred?: number): Promise<number> {
  for (let first = true; ; first = false) {
    const key = first && preferred !== undefined ? preferred : randomInt(1, 2 ** 31 - 1);
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [
      LIVENESS_LOCK_CLASS,
      key,
    ]);
    if (rows[0]!.ok) return key;
  }
}
