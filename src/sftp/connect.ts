import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { SFTPWrapper } from 'ssh2';
import type SftpClient from 'ssh2-sftp-client';
import { CancelledError, UserError, describeError } from '../errors.js';
import type { SftpEndpoint } from './endpoint.js';

/**
 * Connections and their errors: {@link connectSftp} (private key reading, pinned host keys),
 * {@link endSftp} and {@link withSftp}; the per-client state the transfers read (the raw SFTP
 * session, the log label, whether the session has closed); the classification of transient
 * network errors, {@link withRetry} that retries them, and the wrapping of errors into messages
 * that name the endpoint and the operation.
 */

/** The client type every SFTP function takes; create it with {@link connectSftp}. */
export type Sftp = SftpClient;

/** Options of {@link connectSftp}. */
export interface ConnectOptions {
  log: Logger;
  signal?: AbortSignal;
  /** Where `private_key_env` and `passphrase_env` are looked up. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** The partner this connection serves: the label of its bytes in the metrics. */
  partner?: string;
}

/** Options of {@link withRetry}. */
export interface RetryOptions {
  /** Total attempts, the first included. */
  attempts: number;
  /** Delay before the first retry; doubles each retry, randomised by ±25 %. */
  baseDelayMs: number;
  /** Upper bound of one delay. Default 30000 ms. */
  maxDelayMs?: number;
  signal?: AbortSignal;
  log?: Logger;
  /** What is being tried, for the log line (e.g. `download inbox/a.csv`). */
  what?: string;
}

// ssh2-sftp-client resolves connect() with the raw SFTP session, which the pipelined transfers use.
const sessions = new WeakMap<SftpClient, SFTPWrapper>();
const labels = new WeakMap<SftpClient, string>();
const partners = new WeakMap<SftpClient, string>();
// ssh2 silently drops requests on a closed session and never calls back, so we track closing.
export const closed = new WeakSet<SFTPWrapper>();

export const SFTP_STATUS = { NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, OP_UNSUPPORTED: 8 } as const;

// ─── errors ─────────────────────────────────────────────────────────────────────────────────────

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ERR_NOT_CONNECTED',
]);
const TRANSIENT_MESSAGE =
  /No response from server|connection lost|Unexpected (end|close) event|Timed out while waiting for handshake|No SFTP connection|Not connected|socket hang up|Keepalive timeout|read ECONNRESET|write EPIPE/i;

/**
 * True for network failures that a new connection may not see: reset, refused, timed out, broken
 * pipe, connection lost. Never true for a {@link UserError} (authentication, host key, permission,
 * bad name) or for cancellation.
 */
export function isTransientSftpError(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof UserError || e instanceof CancelledError) return false;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    if (TRANSIENT_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/** `where: message`, keeping the original as `cause` and its `code` (which retry decisions read). */
export function wrap(where: string, err: unknown): Error {
  if (err instanceof UserError || err instanceof CancelledError) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  // Node's own file system errors carry `syscall`; SFTP status errors do not.
  const local = typeof (err as { syscall?: unknown } | undefined)?.syscall === 'string';
  if (code === SFTP_STATUS.PERMISSION_DENIED || (code === 'EACCES' && !local)) {
    return new UserError(`${where}: permission denied on the server; ask the partner to grant access`);
  }
  if (local && (code === 'EACCES' || code === 'ENOSPC' || code === 'EROFS' || code === 'ENOENT')) {
    return new UserError(`${where}: local file system: ${describeError(err)}`);
  }
  const wrapped = new Error(`${where}: ${describeError(err)}`, { cause: err });
  if (code !== undefined) (wrapped as { code?: unknown }).code = code;
  return wrapped;
}

/** The partner a connection serves (ConnectOptions.partner), for the transfer metrics. */
export function partnerOf(client: SftpClient): string | undefined {
  return partners.get(client);
}

export function label(client: SftpClient): string {
  return labels.get(client) ?? 'sftp';
}

// ─── connect ────────────────────────────────────────────────────────────────────────────────────

/** `SHA256:…` of a raw host key blob, as `ssh-keygen -lf` prints it. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

async function readPrivateKey(
  endpoint: SftpEndpoint,
  env: NodeJS.ProcessEnv,
): Promise<{ key: Buffer; passphrase?: string; source: string }> {
  const where = `SFTP ${endpoint.user}@${endpoint.host}:${endpoint.port}`;
  let key: Buffer;
  let source: string;
  if (endpoint.private_key_file !== undefined) {
    source = `file ${endpoint.private_key_file}`;
    try {
      key = await readFile(endpoint.private_key_file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new UserError(
        `${where}: cannot read the private key file ${endpoint.private_key_file} (${code}); fix private_key_file in the endpoint config`,
      );
    }
  } else {
    const name = endpoint.private_key_env!;
    source = `environment variable ${name}`;
    const text = env[name];
    if (text === undefined || text.trim() === '') {
      throw new UserError(
        `${where}: environment variable ${name} (private_key_env) is not set; set it to the private key text`,
      );
    }
    // Keys pasted into single-line env settings often arrive with literal \n.
    key = Buffer.from(text.includes('\n') ? text : text.replace(/\\n/g, '\n'));
  }
  let passphrase: string | undefined;
  if (endpoint.passphrase_env !== undefined) {
    passphrase = env[endpoint.passphrase_env];
    if (passphrase === undefined || passphrase === '') {
      throw new UserError(
        `${where}: environment variable ${endpoint.passphrase_env} (passphrase_env) is not set; set it to the key's passphrase`,
      );
    }
  }
  // ssh2 is loaded on first use: a process that talks to no SFTP server never pays for it.
  const ssh2 = (await import('ssh2')).default;
  const parsed = ssh2.utils.parseKey(key, passphrase);
  if (parsed instanceof Error) {
    // parseKey's messages describe the format ("Unsupported key format"), never the key itself.
    throw new UserError(`${where}: the private key from ${source} cannot be used: ${parsed.message}`);
  }
  return passphrase === undefined ? { key, source } : { key, passphrase, source };
}

/**
 * Connects to `endpoint` with its private key, accepting the server only when its host key's
 * SHA-256 fingerprint is one of `host_key_sha256`. An unknown key is refused, never trusted on
 * first use: the error names the host and both fingerprints. Key problems and failed
 * authentication are {@link UserError}s; network errors keep their code for {@link withRetry}.
 * End the client with {@link endSftp}.
 */
export async function connectSftp(endpoint: SftpEndpoint, opts: ConnectOptions): Promise<Sftp> {
  const { log, signal } = opts;
  const where = `SFTP ${endpoint.user}@${endpoint.host}:${endpoint.port}`;
  if (signal?.aborted) throw new CancelledError();
  const { key, passphrase, source } = await readPrivateKey(endpoint, opts.env ?? process.env);

  let presented: string | undefined;
  const pinned = new Set(endpoint.host_key_sha256);
  const { default: Client } = await import('ssh2-sftp-client');
  const client = new Client(where, {
    // Errors after connect surface through the failing call; these only trace the connection's end.
    error: (err) => log.debug({ endpoint: where, err: describeError(err) }, 'SFTP connection error'),
    end: () => log.debug({ endpoint: where }, 'SFTP connection ended'),
    close: () => log.debug({ endpoint: where }, 'SFTP connection closed'),
  });
  // ssh2-sftp-client keeps the ssh2 connection in `client` (untyped): needed for abort and TCP_NODELAY.
  const raw = (client as unknown as { client: { destroy(): void; setNoDelay(on: boolean): void } }).client;
  const onAbort = (): void => raw.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const session = await client.connect({
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.user,
      privateKey: key,
      ...(passphrase === undefined ? {} : { passphrase }),
      readyTimeout: endpoint.connect_timeout_ms,
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
      hostVerifier: (hostKey: Buffer): boolean => {
        presented = hostKeyFingerprint(hostKey);
        return pinned.has(presented);
      },
    });
    // Without TCP_NODELAY, Nagle holds back our small read requests and window adjustments behind
    // unacknowledged data: downloads ran at a third of the speed.
    raw.setNoDelay(true);
    sessions.set(client, session);
    labels.set(client, where);
    if (opts.partner !== undefined) partners.set(client, opts.partner);
    const markClosed = (): void => void closed.add(session);
    // An unhandled 'error' on the session would crash the process; the failing call reports it.
    session.on('error', (err: Error) => {
      log.debug({ endpoint: where, err: describeError(err) }, 'SFTP session error');
      markClosed();
    });
    session.once('end', markClosed);
    session.once('close', markClosed);
    client.on('close', markClosed);
    log.debug({ endpoint: where, hostKey: presented }, 'SFTP connected');
    return client;
  } catch (err) {
    raw.destroy();
    if (signal?.aborted) throw new CancelledError();
    if (presented !== undefined && !pinned.has(presented)) {
      const expected = [...pinned].join(', ');
      log.error(
        { endpoint: where, presented, expected: [...pinned] },
        'SFTP host key mismatch: connection refused',
      );
      throw new UserError(
        `${where}: host key mismatch, connection refused: the server presented ${presented} but host_key_sha256 pins ${expected}. ` +
          `If the partner rotated its key, confirm the new fingerprint with them out of band, then add it to host_key_sha256.`,
      );
    }
    if (/authentication methods failed/i.test(describeError(err))) {
      throw new UserError(
        `${where}: authentication failed with the key from ${source}; ask the partner to authorize its public key for user ${endpoint.user}`,
      );
    }
    throw wrap(`${where}: cannot connect`, err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Closes `client`; gives up waiting after `timeoutMs` and drops the connection (a dead peer never answers). */
export async function endSftp(client: Sftp, timeoutMs = 2000): Promise<void> {
  const raw = (client as unknown as { client: { destroy(): void } }).client;
  const timer = sleep(timeoutMs, 'timeout' as const, { ref: false });
  try {
    await Promise.race([client.end().catch(() => undefined), timer]);
  } finally {
    raw.destroy();
  }
}

/** Connects, runs `fn`, and always closes the connection. */
export async function withSftp<T>(
  endpoint: SftpEndpoint,
  opts: ConnectOptions,
  fn: (client: Sftp) => Promise<T>,
): Promise<T> {
  const client = await connectSftp(endpoint, opts);
  try {
    return await fn(client);
  } finally {
    await endSftp(client);
  }
}

export function session(client: SftpClient, where: string): SFTPWrapper {
  const s = sessions.get(client) ?? (client as unknown as { sftp?: SFTPWrapper }).sftp;
  if (s === undefined) {
    throw Object.assign(new Error(`${where}: not connected (connect with connectSftp)`), {
      code: 'ERR_NOT_CONNECTED',
    });
  }
  return s;
}

// ─── retry ──────────────────────────────────────────────────────────────────────────────────────

/**
 * Runs `fn`, retrying transient network errors ({@link isTransientSftpError}) with exponential
 * backoff and jitter. Authentication, host key, permission and name errors ({@link UserError}) and
 * anything unrecognised fail at once. `fn` gets the attempt number, from 1; it should open its own
 * connection, since a failed one is gone.
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const attempts = Math.max(1, Math.floor(opts.attempts));
  const maxDelay = opts.maxDelayMs ?? 30_000;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw new CancelledError();
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !isTransientSftpError(err) || opts.signal?.aborted) throw err;
      const delayMs = Math.round(
        Math.min(maxDelay, opts.baseDelayMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5),
      );
      opts.log?.warn(
        { what: opts.what, attempt, attempts, delayMs, err: describeError(err) },
        'SFTP transient error; retrying',
      );
      try {
        await sleep(delayMs, undefined, opts.signal ? { signal: opts.signal } : {});
      } catch {
        throw new CancelledError();
      }
    }
  }
}
