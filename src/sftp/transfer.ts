import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { FileEntryWithStats } from 'ssh2';
import type SftpClient from 'ssh2-sftp-client';
import { CancelledError, UserError, describeError } from '../errors.js';
import type { SftpReady } from './endpoint.js';
import { recordTransfer } from '../metrics/counters.js';
import { SFTP_STATUS, label, partnerOf, session, wrap, type Sftp } from './connect.js';
import { picomatch, resolveInside, safeRemoteName } from './names.js';
import { RemoteReader, RemoteWriter, openRemote, request } from './streams.js';

/**
 * The file operations on a connected client: {@link listReady} finds the finished files of a
 * directory, {@link downloadVerified} fetches one through a temporary file with its size checked
 * and its SHA-256 computed, {@link uploadAtomic} puts one in place under a temporary name then a
 * rename, and {@link moveRemote} and {@link moveToError} archive or reject a fetched file without
 * ever replacing another.
 */

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

// ─── listing ────────────────────────────────────────────────────────────────────────────────────

/** One directory entry, as listed. */
interface Listed {
  name: string;
  size: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  isFile: boolean;
}

/** The entries of a remote directory (name, size, mtime, whether a regular file), as listed. */
export async function listRemote(client: SftpClient, dir: string): Promise<Listed[]> {
  return listFiles(client, dir);
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
  const temp = path.join(localDir, tempName(name));
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
    recordTransfer(partnerOf(client), 'in', size);
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

/** A hidden name beside the final one, for a transfer in progress: never mistaken for a finished file. */
function tempName(name: string): string {
  return `.${name}.${randomBytes(6).toString('hex')}.part`;
}

/** Removes the temporary files ({@link tempName}) earlier uploads of `name` left in `remoteDir`. */
async function removeStaleTemps(client: Sftp, remoteDir: string, name: string): Promise<void> {
  const prefix = `.${name}.`;
  for (const e of await listFiles(client, remoteDir)) {
    if (e.isFile && e.name.startsWith(prefix) && /^[0-9a-f]{12}\.part$/.test(e.name.slice(prefix.length)))
      await client.delete(resolveInside(remoteDir, e.name), true);
  }
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
    recordTransfer(partnerOf(client), 'out', writer.bytesWritten);
    // An earlier attempt whose connection was cut (a server killed mid-upload) could not remove
    // its temporary file; the file is in place now, so those go. Best effort: the upload stands.
    await removeStaleTemps(client, remoteDir, name).catch(() => undefined);
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
