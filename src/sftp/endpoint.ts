import { z } from 'zod';

/**
 * An SFTP partner endpoint as declared in configuration (YAML, snake_case keys):
 *
 * ```yaml
 * sftp:
 *   host: sftp.acme.example
 *   user: erp
 *   private_key_env: ACME_SFTP_KEY
 *   host_key_sha256: [SHA256:4TMkTv1Gd6bDHXW3cbvBwq3yQxR8U2dRz+9x1t0gYtA]
 *   inbox: /out/to-erp
 *   archive: /out/to-erp/archive
 *   ready: { mode: marker, suffix: .done }
 * ```
 *
 * Secrets never live in the config: only the path of the key file or the name of the environment
 * variable that holds it.
 */

/** OpenSSH's SHA-256 fingerprint form: `SHA256:` then 43 base64 characters (the padding dropped). */
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Remote paths come from our own config, but a NUL or control character is still a mistake.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const envName = z.string().regex(ENV_NAME, 'expected an environment variable name (letters, digits and _)');
const remoteDir = z
  .string()
  .min(1)
  .refine((s) => !CONTROL.test(s), 'must not contain control characters');

/** How to tell that a remote file is completely written. */
export const sftpReadySchema = z.discriminatedUnion('mode', [
  z
    .object({
      /** `stable`: a file is ready when its size and mtime are unchanged across two listings. */
      mode: z.literal('stable'),
      /** Milliseconds between the two listings. Default 2000. */
      interval_ms: z.number().int().min(0).max(600_000).default(2000),
    })
    .strict(),
  z
    .object({
      /** `marker`: a file `x` is ready when a marker file `x<suffix>` exists beside it. */
      mode: z.literal('marker'),
      /** Suffix of the marker file. Default `.done`. */
      suffix: z
        .string()
        .min(1)
        // eslint-disable-next-line no-control-regex
        .regex(/^[^/\\\u0000-\u001f\u007f]+$/, 'must be a plain file-name suffix such as .done')
        .default('.done'),
    })
    .strict(),
]);
export type SftpReady = z.infer<typeof sftpReadySchema>;

/** Retries of transient network errors (connection reset, refused, timed out, lost). */
export const sftpRetrySchema = z
  .object({
    /** Total attempts, the first included. Default 3. */
    attempts: z.number().int().min(1).max(20).default(3),
    /** Delay before the first retry; doubles each retry, with jitter. Default 1000 ms. */
    base_delay_ms: z.number().int().min(0).max(600_000).default(1000),
  })
  .strict();
export type SftpRetry = z.infer<typeof sftpRetrySchema>;

/** One SFTP partner endpoint. */
export const sftpEndpointSchema = z
  .object({
    /** Server host name or IP address. Required. */
    host: z.string().min(1),
    /** TCP port. Default 22. */
    port: z.number().int().min(1).max(65535).default(22),
    /** Login user name. Required. */
    user: z.string().min(1),
    /** Path of the private key file (OpenSSH or PEM). Exactly one of this and `private_key_env`. */
    private_key_file: z.string().min(1).optional(),
    /** Name of the environment variable holding the private key text. Exactly one of this and `private_key_file`. */
    private_key_env: envName.optional(),
    /** Name of the environment variable holding the key's passphrase. Default: none (unencrypted key). */
    passphrase_env: envName.optional(),
    /**
     * Pinned SHA-256 fingerprints of the server's host key, as printed by
     * `ssh-keyscan -p PORT host | ssh-keygen -lf -`. List the old and the new key during a key
     * rotation. Required, at least one; an unknown key is refused, never trusted on first use.
     */
    host_key_sha256: z
      .array(
        z
          .string()
          .regex(
            FINGERPRINT,
            'expected an OpenSSH SHA-256 fingerprint such as SHA256:<43 base64 characters>; get it with `ssh-keyscan -p PORT host | ssh-keygen -lf -`',
          ),
      )
      .min(
        1,
        'pin at least one host key fingerprint; get it with `ssh-keyscan -p PORT host | ssh-keygen -lf -`',
      ),
    /** Remote directory the partner drops files into (imports read here). Default: none. */
    inbox: remoteDir.optional(),
    /** Remote directory we deliver files to (exports write here). Default: none. */
    outbox: remoteDir.optional(),
    /** Where imported files are moved once their load committed (never deleted). Default: none; needed to import. */
    archive: remoteDir.optional(),
    /** Where files that failed are moved, each with a `<name>.error.txt` beside it. Default: none (left in the inbox). */
    error: remoteDir.optional(),
    /** How to tell a file is finished. Default `{ mode: stable, interval_ms: 2000 }`. */
    ready: sftpReadySchema.default({ mode: 'stable', interval_ms: 2000 }),
    /** Retries of transient network errors. Default `{ attempts: 3, base_delay_ms: 1000 }`. */
    retry: sftpRetrySchema.default({ attempts: 3, base_delay_ms: 1000 }),
    /** Milliseconds allowed for the TCP connect and SSH handshake. Default 20000. */
    connect_timeout_ms: z.number().int().min(1000).max(300_000).default(20_000),
  })
  .strict()
  .superRefine((e, ctx) => {
    if ((e.private_key_file === undefined) === (e.private_key_env === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['private_key_file'],
        message:
          'set exactly one of private_key_file (path of the key file) and private_key_env (name of the environment variable holding the key)',
      });
    }
  });

/** A parsed SFTP endpoint: defaults filled in. */
export type SftpEndpoint = z.infer<typeof sftpEndpointSchema>;
/** An SFTP endpoint as written in configuration: keys with defaults may be left out. */
export type SftpEndpointInput = z.input<typeof sftpEndpointSchema>;
