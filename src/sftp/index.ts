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
 *
 * This module re-exports the public API; the code lives in src/sftp/: `names.ts` (remote-name
 * safety, glob matching), `connect.ts` (connections, host keys, error classification, retry),
 * `streams.ts` (pipelined remote reads and writes) and `transfer.ts` (listing, download, upload,
 * moves).
 */

export { resolveInside, safeRemoteName } from './names.js';
export {
  connectSftp,
  endSftp,
  hostKeyFingerprint,
  isTransientSftpError,
  withRetry,
  withSftp,
  type ConnectOptions,
  type RetryOptions,
  type Sftp,
} from './connect.js';
export {
  downloadVerified,
  listRemote,
  listReady,
  moveRemote,
  moveToError,
  uploadAtomic,
  type DownloadedFile,
  type RemoteFile,
} from './transfer.js';
