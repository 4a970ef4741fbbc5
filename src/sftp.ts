import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { FileEntryWithStats, SFTPWrapper } from 'ssh2';
import type SftpClient from 'ssh2-sftp-client';
import { CancelledError, UserError, describeError } from './errors.js';
import type { SftpEndpoint, SftpReady } from './sftp-endpoint.js';

/**
 * SFTP with pinned host keys, untrusted remote names and atomic hand-offs, on ssh2-sftp-client.
 *
 *   import   inbox/x ──listReady──► downloadVerified ──► local/.x.<rnd>.part ──size + sha256 ok──► local/x ──► load
 *                                                                                                               │
 *            archive/x ◄──────────── moveRemote ◄──────────── committed ◄───────────────────────────────────────┤
 *            error/x + x.error.txt ◄─ moveToError ◄────────── failed ◄──────────────────────────────────────────┘
 *
 *   export   local file or stream ──uploadAtomic──► outbox/.x.<rnd>.part ──rename──► outbox/x
 *
 * Transfers keep several SFTP requests in flight (one at a time is bound by round trips, at a
 * quarter of OpenSSH's speed) while the number in flight stays bounded, so memory stays flat.
 */

/** The client type every function here takes; create it with {@link connectSftp}. */
export type Sftp = SftpClient;

/** A remote file that is ready to fetch. */
export interface RemoteFile {
  /** Base name, checked by {@link safeRemoteName}. */
  name: string;
  /** Remote path: the listed directory joined with `name`. */
  path: string;
  size: number;
  /** Modification time, in milliseconds since the epoch (the server keeps seconds). */
  mtime: number;
  /** Remote path of the marker file that made it ready (`marker` mode only); remove or archive it too. */
  marker?: string;
}

/** A file fetched by {@link downloadVerified}. */
export interface DownloadedFile {
  localPath: string;
  size: number;
  /** Lowercase hex SHA-256 of the content, computed while it streamed. */
  sha256: string;
}

/** Options of {@link connectSftp}. */
export interface ConnectOptions {
  log: Logger;
  signal?: AbortSignal;
  /** Where `private_key_env` and `passphrase_env` are looked up. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
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

// Requests in flight per transfer, and their sizes: 16 reads of 248 KiB (under OpenSSH's 255 KiB
// read limit) keep ssh2's 2 MiB channel window full with 4 MiB of buffers; smaller reads cost more
// JavaScript per byte (see benchmarks/sftp.ts).
const READ_CHUNK = 248 * 1024;
const WRITE_CHUNK = 64 * 1024;
const IN_FLIGHT = 16;

// ssh2-sftp-client resolves connect() with the raw SFTP session, which the pipelined transfers use.
const sessions = new WeakMap<SftpClient, SFTPWrapper>();
const labels = new WeakMap<SftpClient, string>();
// ssh2 silently drops requests on a closed session and never calls back, so we track closing.
const closed = new WeakSet<SFTPWrapper>();

const SFTP_STATUS = { NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, OP_UNSUPPORTED: 8 } as const;

// picomatch is tinyglobby's matcher (same globs as local file sources); it ships no types, hence require.
type Matcher = (name: string) => boolean;
const picomatch = createRequire(import.meta.url)('picomatch') as (
  glob: string,
  options?: { dot?: boolean },
) => Matcher;

// ─── names ──────────────────────────────────────────────────────────────────────────────────────

// C0 controls, DEL and C1 controls: a name holding them can forge log lines or terminal output.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Returns `name` when it is a plain base name; throws a {@link UserError} otherwise. Remote names
 * are untrusted: `..`, `.`, empty names, `/`, `\`, NUL, control characters and names over 255
 * bytes are refused, so a name can never reach outside the directory it was listed in.
 */
export function safeRemoteName(name: string): string {
  let reason: string | undefined;
  if (typeof name !== 'string' || name === '') reason = 'it is empty';
  else if (name === '.' || name === '..') reason = 'it names a directory';
  else if (name.includes('/') || name.includes('\\')) reason = 'it contains a path separator';
  else if (CONTROL.test(name)) reason = 'it contains NUL or a control character';
  else if (Buffer.byteLength(name) > 255) reason = 'it is longer than 255 bytes';
  if (reason !== undefined) {
    throw new UserError(
      `remote file name ${JSON.stringify(name)} refused: ${reason}; only a plain file name is allowed`,
    );
  }
  return name;
}

/**
 * Joins `dir` and the relative path `name`, refusing any result outside `dir`. Containment is
 * decided on resolved POSIX paths, not on a string prefix: `/in` does not contain `/inbox/x`.
 * A relative `dir` (relative to the login directory) stays relative.
 */
export function resolveInside(dir: string, name: string): string {
  if (typeof name !== 'string' || name === '' || CONTROL.test(name) || CONTROL.test(dir)) {
    throw new UserError(
      `remote path ${JSON.stringify(name)} in ${JSON.stringify(dir)} refused: empty or control characters`,
    );
  }
  if (path.posix.isAbsolute(name)) {
    throw new UserError(
      `remote path ${JSON.stringify(name)} refused: an absolute path cannot be inside ${dir}`,
    );
  }
  // Resolve against a virtual root so a relative dir never picks up this process's cwd.
  const base = path.posix.resolve('/', dir);
  const target = path.posix.resolve(base, name);
  const rel = path.posix.relative(base, target);
  if (rel === '' || rel === '..' || rel.startsWith('../') || path.posix.isAbsolute(rel)) {
    throw new UserError(
      `remote path ${JSON.stringify(name)} refused: it resolves to ${target}, outside ${base}`,
    );
  }
  return path.posix.join(dir, rel);
}

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
function wrap(where: string, err: unknown): Error {
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

function label(client: SftpClient): string {
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

function session(client: SftpClient, where: string): SFTPWrapper {
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

// ─── listing ────────────────────────────────────────────────────────────────────────────────────

/** One directory entry, as listed. */
interface Listed {
  name: string;
  size: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  isFile: boolean;
}

async function listFiles(client: SftpClient, dir: string): Promise<Listed[]> {
  const where = `${label(client)}: list ${dir}`;
  try {
    const entries = await request<FileEntryWithStats[]>(session(client, where), where, (cb) =>
      session(client, where).readdir(dir, cb),
    );
    // The file type comes from the mode bits, not from parsing the ls-style long name.
    return entries.map((e) => ({
      name: e.filename,
      size: e.attrs.size,
      mtime: e.attrs.mtime * 1000,
      isFile: typeof e.attrs.mode === 'number' && e.attrs.isFile(),
    }));
  } catch (err) {
    if ((err as { code?: unknown }).code === SFTP_STATUS.NO_SUCH_FILE) {
      throw new UserError(`${where}: the remote directory does not exist; check the endpoint config`);
    }
    throw wrap(where, err);
  }
}

/**
 * Lists the regular files of `dir` whose names match `glob` (picomatch syntax, matched against the
 * base name; dot files never match, so our own `.x.part` uploads are never picked up) and that are
 * finished according to `ready`:
 *
 * - `stable`: listed twice, `interval_ms` apart; a file whose size or mtime changed is left for
 *   the next run. A writer that pauses longer than the interval is not detected: prefer markers.
 * - `marker`: a file `x` is ready when `x<suffix>` exists; marker files are not returned as files.
 *
 * Names that are not plain base names ({@link safeRemoteName}) are skipped with a warning.
 * Sorted by name (code-unit order).
 */
export async function listReady(
  client: Sftp,
  dir: string,
  glob: string,
  ready: SftpReady,
  opts: { signal?: AbortSignal; log?: Logger } = {},
): Promise<RemoteFile[]> {
  const matches = picomatch(glob, { dot: false });
  const candidates = (entries: Listed[]): Map<string, Listed> => {
    const out = new Map<string, Listed>();
    for (const e of entries) {
      if (!e.isFile || !matches(e.name)) continue;
      if (ready.mode === 'marker' && e.name.endsWith(ready.suffix)) continue;
      try {
        safeRemoteName(e.name);
      } catch (err) {
        opts.log?.warn({ endpoint: label(client), dir, err: describeError(err) }, 'SFTP file skipped');
        continue;
      }
      out.set(e.name, e);
    }
    return out;
  };

  const first = await listFiles(client, dir);
  const found = candidates(first);
  const result: RemoteFile[] = [];
  if (ready.mode === 'marker') {
    const names = new Set(first.map((e) => e.name));
    for (const [name, e] of found) {
      if (!names.has(name + ready.suffix)) continue;
      result.push({
        name,
        path: resolveInside(dir, name),
        size: e.size,
        mtime: e.mtime,
        marker: resolveInside(dir, name + ready.suffix),
      });
    }
  } else {
    if (found.size > 0) {
      try {
        await sleep(ready.interval_ms, undefined, opts.signal ? { signal: opts.signal } : {});
      } catch {
        throw new CancelledError();
      }
      const second = candidates(await listFiles(client, dir));
      for (const [name, e] of found) {
        const again = second.get(name);
        if (again === undefined || again.size !== e.size || again.mtime !== e.mtime) continue;
        result.push({ name, path: resolveInside(dir, name), size: e.size, mtime: e.mtime });
      }
    }
  }
  return result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// ─── pipelined transfers ────────────────────────────────────────────────────────────────────────

function connectionLost(where: string): Error {
  return Object.assign(new Error(`${where}: connection lost`), { code: 'ECONNRESET' });
}

/** Runs one SFTP request, failing at once (instead of never calling back) when the session has closed. */
function request<T>(
  s: SFTPWrapper,
  where: string,
  send: (cb: (err: Error | undefined, value: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    if (closed.has(s)) return reject(connectionLost(where));
    send((err, value) => (err ? reject(err) : resolve(value)));
  });
}

function openRemote(s: SFTPWrapper, remotePath: string, flags: 'r' | 'wx', where: string): Promise<Buffer> {
  return request<Buffer>(s, where, (cb) => s.open(remotePath, flags, cb));
}

function closeRemote(s: SFTPWrapper, handle: Buffer, where: string): Promise<void> {
  return request<void>(s, where, (cb) => s.close(handle, (err) => cb(err ?? undefined, undefined)));
}

/**
 * Reads exactly `size` bytes of an open remote file with up to {@link IN_FLIGHT} reads in flight,
 * delivered in order. Stops issuing reads while the consumer is full. Fails when the file turns out
 * shorter or longer than `size` (it changed since it was listed).
 */
class RemoteReader extends Readable {
  #requested = 0;
  #inFlight = 0;
  #done = false;
  /** Chunks by offset; each is resolved (Buffer) or pending (null). */
  readonly #slots = new Map<number, Buffer | null>();
  #next = 0;

  constructor(
    private readonly s: SFTPWrapper,
    private readonly handle: Buffer,
    private readonly size: number,
    private readonly where: string,
  ) {
    super({ highWaterMark: READ_CHUNK });
  }

  override _read(): void {
    // Chunks may have arrived while the consumer was full: deliver those first, then read on.
    this.#drain();
  }

  #fill(): void {
    while (
      !this.#done &&
      this.#inFlight < IN_FLIGHT &&
      this.#slots.size < IN_FLIGHT &&
      this.#requested <= this.size
    ) {
      // One last read at `size` must come back empty: it proves the file did not grow.
      const offset = this.#requested;
      const length = offset === this.size ? 1 : Math.min(READ_CHUNK, this.size - offset);
      this.#requested += offset === this.size ? 1 : length;
      this.#slots.set(offset, null);
      this.#readAt(offset, Buffer.allocUnsafe(length), 0);
    }
  }

  #readAt(offset: number, buf: Buffer, got: number): void {
    if (closed.has(this.s)) return void this.destroy(connectionLost(this.where));
    this.#inFlight++;
    this.s.read(this.handle, buf, got, buf.length - got, offset + got, (err, n) => {
      this.#inFlight--;
      if (this.destroyed) return;
      if (err) return void this.destroy(err);
      if (offset === this.size) {
        if (n > 0) return void this.destroy(this.#changed('grew'));
        this.#slots.set(offset, buf.subarray(0, 0));
      } else if (n === 0) {
        return void this.destroy(this.#changed('shrank'));
      } else if (got + n < buf.length) {
        // Servers may return short reads before the end of file; ask for the rest.
        return this.#readAt(offset, buf, got + n);
      } else {
        this.#slots.set(offset, buf);
      }
      this.#drain();
    });
  }

  #changed(how: string): Error {
    return new Error(
      `${this.where}: the file ${how} during the transfer (listed at ${this.size} bytes); it will be fetched on a later run`,
    );
  }

  #drain(): void {
    for (;;) {
      const chunk = this.#slots.get(this.#next);
      if (chunk == null) break;
      this.#slots.delete(this.#next);
      if (this.#next === this.size) {
        this.#done = true;
        this.push(null);
        return;
      }
      this.#next += chunk.length;
      if (!this.push(chunk)) return;
    }
    this.#fill();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#done = true;
    // Nothing to wait for: a read handle holds no data, and a dead session would never answer.
    closeRemote(this.s, this.handle, this.where).catch(() => undefined);
    cb(err);
  }
}

/**
 * Writes to an open remote file with up to {@link IN_FLIGHT} writes in flight. `final` waits for
 * every write to be acknowledged and for the close, so a failure on close is not lost.
 */
class RemoteWriter extends Writable {
  #position = 0;
  #inFlight = 0;
  #waiting: (() => void) | undefined;
  #failed: Error | undefined;
  #closed = false;

  constructor(
    private readonly s: SFTPWrapper,
    private readonly handle: Buffer,
    private readonly where: string,
  ) {
    super({ highWaterMark: WRITE_CHUNK * 4 });
  }

  get bytesWritten(): number {
    return this.#position;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#failed) return cb(this.#failed);
    if (closed.has(this.s)) return cb(connectionLost(this.where));
    for (let off = 0; off < chunk.length; off += WRITE_CHUNK) {
      const piece = chunk.subarray(off, Math.min(chunk.length, off + WRITE_CHUNK));
      this.#inFlight++;
      this.s.write(this.handle, piece, 0, piece.length, this.#position, (err) => {
        this.#inFlight--;
        if (err && !this.#failed) this.#failed = err;
        const wake = this.#waiting;
        this.#waiting = undefined;
        wake?.();
      });
      this.#position += piece.length;
    }
    this.#whenBelow(IN_FLIGHT, cb);
  }

  #whenBelow(limit: number, cb: (err?: Error | null) => void): void {
    if (this.#failed) return cb(this.#failed);
    if (this.#inFlight < limit) return cb();
    this.#waiting = () => this.#whenBelow(limit, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#whenBelow(1, (err) => {
      if (err) return cb(err);
      this.#closed = true;
      closeRemote(this.s, this.handle, this.where).then(() => cb(), cb);
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#closed) {
      this.#closed = true;
      closeRemote(this.s, this.handle, this.where).catch(() => undefined);
    }
    cb(err);
  }
}

// ─── download ───────────────────────────────────────────────────────────────────────────────────

async function removeQuietly(file: string): Promise<void> {
  await rm(file, { force: true }).catch(() => undefined);
}

/**
 * Downloads `remotePath` into `localDir` under its base name. The bytes stream to a temporary
 * `.name.<random>.part` file while their SHA-256 is computed; only when exactly `expectedSize`
 * bytes arrived (the size {@link listReady} reported) is the file renamed into place. On any
 * failure the partial file is deleted and the error thrown: a partial file is never returned.
 */
export async function downloadVerified(
  client: Sftp,
  remotePath: string,
  localDir: string,
  expectedSize: number,
  opts: {
    signal?: AbortSignal;
    /** Called with the bytes received so far after each chunk (for progress bars). */
    onProgress?: (bytes: number) => void;
  } = {},
): Promise<DownloadedFile> {
  const where = `${label(client)}: download ${remotePath}`;
  const name = safeRemoteName(path.posix.basename(remotePath));
  const localPath = path.join(localDir, name);
  const temp = path.join(localDir, `.${name}.${randomBytes(6).toString('hex')}.part`);
  const hash = createHash('sha256');
  let size = 0;
  try {
    const s = session(client, where);
    let handle: Buffer;
    try {
      handle = await openRemote(s, remotePath, 'r', where);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === SFTP_STATUS.NO_SUCH_FILE)
        throw new Error(`${where}: the file is gone (moved or deleted by the partner?)`);
      throw err;
    }
    // 1 MiB buffers between stages: a 248 KiB read would otherwise stall a 16 KiB stage every chunk.
    const hashing = new Transform({
      highWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        opts.onProgress?.(size);
        cb(null, chunk);
      },
    });
    await pipeline(
      new RemoteReader(s, handle, expectedSize, where),
      hashing,
      createWriteStream(temp, { flags: 'wx', highWaterMark: 1024 * 1024 }),
      opts.signal ? { signal: opts.signal } : {},
    );
    if (size !== expectedSize) {
      throw new Error(
        `${where}: received ${size} bytes, the listing said ${expectedSize}; it will be fetched on a later run`,
      );
    }
    await rename(temp, localPath);
    return { localPath, size, sha256: hash.digest('hex') };
  } catch (err) {
    await removeQuietly(temp);
    if (opts.signal?.aborted) throw new CancelledError();
    throw wrap(where, err);
  }
}

// ─── upload and moves ───────────────────────────────────────────────────────────────────────────

async function remoteExists(client: SftpClient, remotePath: string, where: string): Promise<boolean> {
  try {
    return (await client.exists(remotePath)) !== false;
  } catch (err) {
    throw wrap(where, err);
  }
}

function tempName(name: string): string {
  return `.${name}.${randomBytes(6).toString('hex')}.part`;
}

/**
 * Uploads a local file (path) or a stream to `remoteDir/name` atomically: the bytes go to
 * `remoteDir/.name.<random>.part`, their count is checked, and only then is the file renamed to
 * its final name, so the partner never sees a partial file. An existing file is refused unless
 * `overwrite`, which replaces it atomically (posix-rename) or, on servers without that extension,
 * by delete then rename. Returns the final remote path.
 */
export async function uploadAtomic(
  client: Sftp,
  source: string | Readable,
  remoteDir: string,
  name: string,
  opts: { overwrite?: boolean; signal?: AbortSignal } = {},
): Promise<string> {
  const finalPath = resolveInside(remoteDir, safeRemoteName(name));
  const temp = resolveInside(remoteDir, tempName(name));
  const where = `${label(client)}: upload ${finalPath}`;
  const overwrite = opts.overwrite ?? false;
  if (!overwrite && (await remoteExists(client, finalPath, where))) {
    throw new UserError(`${where}: the file already exists on the server; refusing to overwrite it`);
  }
  let created = false;
  try {
    const s = session(client, where);
    const handle = await openRemote(s, temp, 'wx', where);
    created = true;
    const writer = new RemoteWriter(s, handle, where);
    const input = typeof source === 'string' ? createReadStream(source) : source;
    await pipeline(input, writer, opts.signal ? { signal: opts.signal } : {});
    const stat = await client.stat(temp);
    if (stat.size !== writer.bytesWritten) {
      throw new Error(`${where}: the server holds ${stat.size} bytes of the ${writer.bytesWritten} sent`);
    }
    if (!overwrite) {
      // SFTP rename does not replace an existing file (OpenSSH: link + unlink), closing the race
      // with a file that appeared since the check above.
      try {
        await client.rename(temp, finalPath);
      } catch (err) {
        if (await remoteExists(client, finalPath, where)) {
          throw new UserError(
            `${where}: the file appeared on the server during the upload; refusing to overwrite it`,
          );
        }
        throw err;
      }
    } else {
      try {
        await client.posixRename(temp, finalPath);
      } catch (err) {
        const unsupported =
          (err as { code?: unknown }).code === SFTP_STATUS.OP_UNSUPPORTED ||
          /not support|unsupported/i.test(describeError(err));
        if (!unsupported) throw err;
        await client.delete(finalPath, true);
        await client.rename(temp, finalPath);
      }
    }
    created = false;
    return finalPath;
  } catch (err) {
    if (created) await client.delete(temp, true).catch(() => undefined);
    if (opts.signal?.aborted) throw new CancelledError();
    throw wrap(where, err);
  }
}

function uniqueSuffix(): string {
  return `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

/**
 * Moves the remote file `from` to `toDir/name` (archiving after a committed load). When `name`
 * is taken, a timestamp and random suffix are appended (`name.20261101T120000123Z-a1b2c3`) so no
 * archived file is ever replaced. Returns the new remote path.
 */
export async function moveRemote(client: Sftp, from: string, toDir: string, name: string): Promise<string> {
  let target = resolveInside(toDir, safeRemoteName(name));
  const where = `${label(client)}: move ${from} to ${toDir}`;
  if (await remoteExists(client, target, where)) target = resolveInside(toDir, `${name}.${uniqueSuffix()}`);
  try {
    await client.rename(from, target);
  } catch (err) {
    // Lost a race for the name: take a unique one.
    if (!(await remoteExists(client, target, where))) throw wrap(where, err);
    target = resolveInside(toDir, `${name}.${uniqueSuffix()}`);
    try {
      await client.rename(from, target);
    } catch (err2) {
      throw wrap(where, err2);
    }
  }
  return target;
}

/**
 * Moves a failed file to `errorDir` (as {@link moveRemote}) and uploads `reportText` beside it
 * as `<moved name>.error.txt`, for the partner or operator to read. Returns both remote paths.
 */
export async function moveToError(
  client: Sftp,
  from: string,
  errorDir: string,
  name: string,
  reportText: string,
): Promise<{ path: string; reportPath: string }> {
  const moved = await moveRemote(client, from, errorDir, name);
  const reportName = `${path.posix.basename(moved)}.error.txt`;
  const text = reportText.endsWith('\n') ? reportText : `${reportText}\n`;
  const reportPath = await uploadAtomic(client, Readable.from([Buffer.from(text)]), errorDir, reportName, {
    overwrite: true,
  });
  return { path: moved, reportPath };
}
