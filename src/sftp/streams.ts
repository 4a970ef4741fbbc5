/**
 * Pipelined transfers on the raw SFTP session: single requests that fail at once when the session
 * has closed ({@link request}, {@link openRemote}), and the {@link RemoteReader} and
 * {@link RemoteWriter} streams that keep several reads or writes in flight, bounded so memory
 * stays flat.
 */
import { Readable, Writable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import { closed } from './connect.js';

// Requests in flight per transfer, and their sizes: 16 reads of 248 KiB (under OpenSSH's 255 KiB
// read limit) keep ssh2's 2 MiB channel window full with 4 MiB of buffers; smaller reads cost more
// JavaScript per byte (see benchmarks/sftp.ts).
const READ_CHUNK = 248 * 1024;
const WRITE_CHUNK = 64 * 1024;
const IN_FLIGHT = 16;

function connectionLost(where: string): Error {
  return Object.assign(new Error(`${where}: connection lost`), { code: 'ECONNRESET' });
}

/** Runs one SFTP request, failing at once (instead of never calling back) when the session has closed. */
export function request<T>(
  s: SFTPWrapper,
  where: string,
  send: (cb: (err: Error | undefined, value: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    if (closed.has(s)) return reject(connectionLost(where));
    send((err, value) => (err ? reject(err) : resolve(value)));
  });
}

export function openRemote(
  s: SFTPWrapper,
  remotePath: string,
  flags: 'r' | 'wx',
  where: string,
): Promise<Buffer> {
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
export class RemoteReader extends Readable {
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
export class RemoteWriter extends Writable {
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
