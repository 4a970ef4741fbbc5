import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml.js';
import { UserError } from '../errors.js';
import { expectSchema } from '../alerts/expect.js';
import {
  sftpEndpointSchema,
  sftpReadySchema,
  sftpRetrySchema,
  type SftpEndpoint,
  type SftpEndpointInput,
} from '../sftp/endpoint.js';
import { x12ProfileSchema } from '../x12/partner.js';

/**
 * Trading partners, declared once in `partners/<NAME>.yaml`:
 *
 * ```yaml
 * name: PARTNERA                 # = the file name
 * customer_no: PARTNERA          # the sales.customers row their orders and our invoices belong to
 * sftp:                          # where files travel (see docs/sftp.md); any of host, port, user,
 *   host: 127.0.0.1              # private_key_file, host_key_sha256 and base_dir may instead be read
 *   port_env: ERP_SFTP_PORT      # from an environment variable with the `_env` form of the key
 *   user_env: ERP_SFTP_USER
 *   private_key_file_env: ERP_SFTP_KEY_FILE
 *   host_key_sha256_env: ERP_SFTP_HOST_KEY_SHA256
 *   base_dir_env: ERP_SFTP_ROOT  # relative directories below are taken inside it
 *   inbox: partnera/inbox        # they drop 850s and their 997s here
 *   outbox: partnera/outbox      # we deliver 997/999s, 810s and 856s here
 *   archive: partnera/archive    # inbound files after their load committed
 *   error: partnera/error        # inbound files that failed or were rejected, with <name>.error.txt
 * x12: { … }                     # the X12 profile (docs/x12.md, "Partner profiles")
 * ```
 *
 * The YAML never holds a secret: only the key file's path (or the name of the variable holding
 * the key or the path) and public host key fingerprints. Environment values are read when the
 * partner is connected to ({@link resolveEndpoint}), so a job can be planned without them.
 */

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envName = z.string().regex(ENV_NAME, 'expected an environment variable name (letters, digits and _)');
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const remoteDir = z
  .string()
  .min(1)
  .refine((s) => !CONTROL.test(s), 'must not contain control characters');

/** Partner names: file names under partners/, edi.* partner keys and job step arguments. */
export const PARTNER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;

/** Keys of the endpoint that may be given literally or as `<key>_env`. */
const FROM_ENV = ['host', 'port', 'user', 'private_key_file', 'host_key_sha256', 'base_dir'] as const;

/** The `sftp:` section of a partner: an SFTP endpoint whose settings may come from the environment. */
export const partnerSftpSchema = z
  .object({
    /** Server host name or IP address (or `host_env`). */
    host: z.string().min(1).optional(),
    host_env: envName.optional(),
    /** TCP port (or `port_env`). @defaultValue 22 */
    port: z.number().int().min(1).max(65535).optional(),
    port_env: envName.optional(),
    /** Login user name (or `user_env`). */
    user: z.string().min(1).optional(),
    user_env: envName.optional(),
    /** Path of the private key file; or `private_key_file_env` naming a variable that holds the path… */
    private_key_file: z.string().min(1).optional(),
    private_key_file_env: envName.optional(),
    /** … or `private_key_env` naming a variable that holds the key text itself. */
    private_key_env: envName.optional(),
    /** Variable holding the key's passphrase, for an encrypted key. */
    passphrase_env: envName.optional(),
    /**
     * Pinned SHA-256 host key fingerprints (`ssh-keyscan -p PORT host | ssh-keygen -lf -`); or
     * `host_key_sha256_env` naming a variable holding one or more, separated by commas or spaces.
     * Required: an unknown host key is refused, never trusted on first use.
     */
    host_key_sha256: z.array(z.string()).min(1).optional(),
    host_key_sha256_env: envName.optional(),
    /** Directory the relative directories below are resolved in (or `base_dir_env`). @defaultValue the login directory */
    base_dir: remoteDir.optional(),
    base_dir_env: envName.optional(),
    /** Where the partner drops files for us (850s, their 997/999s). */
    inbox: remoteDir,
    /** Where we deliver files for the partner (our 997/999s, 810s, 856s). */
    outbox: remoteDir,
    /** Where inbound files go once their load committed. */
    archive: remoteDir,
    /** Where inbound files that failed or had rejected transaction sets go, with `<name>.error.txt`. */
    error: remoteDir,
    /** Which inbox files are read (picomatch glob on the base name; dot files never match). @defaultValue `*` */
    glob: z.string().min(1).default('*'),
    /** How to tell an inbox file is completely written. @defaultValue `{ mode: stable, interval_ms: 2000 }` */
    ready: sftpReadySchema.default({ mode: 'stable', interval_ms: 2000 }),
    /** Retries of transient network errors when connecting. @defaultValue `{ attempts: 3, base_delay_ms: 1000 }` */
    retry: sftpRetrySchema.default({ attempts: 3, base_delay_ms: 1000 }),
    /** Milliseconds allowed for the TCP connect and SSH handshake. @defaultValue 20000 */
    connect_timeout_ms: z.number().int().min(1000).max(300_000).default(20_000),
  })
  .strict()
  .superRefine((s, ctx) => {
    for (const key of FROM_ENV) {
      const literal = s[key] !== undefined;
      const env = s[`${key}_env`] !== undefined;
      if (literal && env) {
        ctx.addIssue({
          code: 'custom',
          path: [`${key}_env`],
          message: `give ${key} or ${key}_env, not both`,
        });
      }
      const optional = key === 'port' || key === 'base_dir' || key === 'private_key_file';
      if (!optional && !literal && !env) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message:
            key === 'host_key_sha256'
              ? 'pin the host key: give host_key_sha256 (a list of SHA256:… fingerprints) or host_key_sha256_env; get it with `ssh-keyscan -p PORT host | ssh-keygen -lf -`'
              : `give ${key} or ${key}_env (the name of the environment variable holding it)`,
        });
      }
    }
    const keySources = [s.private_key_file, s.private_key_file_env, s.private_key_env].filter(
      (v) => v !== undefined,
    ).length;
    if (keySources !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['private_key_file'],
        message:
          'give exactly one of private_key_file (path of the key file), private_key_file_env (variable holding that path) and private_key_env (variable holding the key text)',
      });
    }
  });
export type PartnerSftp = z.output<typeof partnerSftpSchema>;

/** Caps on what a partner may send (docs/x12.md, "Caps"). */
export const partnerLimitsSchema = z
  .object({
    /** Largest inbound file, in bytes. @defaultValue 1 GiB */
    max_file_bytes: z
      .number()
      .int()
      .positive()
      .default(1024 ** 3),
    /** Most segments in one transaction set. @defaultValue 100000 */
    max_segments_per_set: z.number().int().positive().default(100_000),
    /** Longest element, in characters. @defaultValue 1024 */
    max_element_length: z.number().int().positive().default(1024),
  })
  .strict();

/** `partners/<NAME>.yaml`. */
export const partnerSchema = z
  .object({
    /** The partner's name: the file name, the key of its control numbers and interchanges. */
    name: z.string().regex(PARTNER_NAME, 'letters, digits, _ and -, at most 40 characters'),
    description: z.string().optional(),
    /**
     * The customer (sales.customers.customer_no) whose orders come in and whose invoices go out;
     * required with `x12`.
     */
    customer_no: z
      .string()
      .regex(/^[A-Z0-9][A-Z0-9_-]{0,19}$/, 'a customer number such as PARTNERA')
      .optional(),
    sftp: partnerSftpSchema,
    /** The X12 profile of a trading partner; a partner that only exchanges files (a time clock, a bank) has none. */
    x12: x12ProfileSchema.optional(),
    /**
     * ISA15 usage indicators whose interchanges are loaded; others are acknowledged as rejected.
     * @defaultValue [production]
     */
    accept_usage: z
      .array(z.enum(['production', 'test']))
      .min(1)
      .default(['production']),
    /** Caps on inbound files. */
    limits: partnerLimitsSchema.prefault({}),
    /**
     * A purchase order that is valid X12 but fails a business rule (unknown item, a PO loaded
     * before, a value the mapping requires): `reject` it in the 997; `hold` it (997 accepts, the
     * order waits in `erp edi exceptions` until `erp edi reprocess` loads it); or `acknowledge` it
     * (997 accepts, the good lines are loaded and an 855 says per line accepted, rejected or changed).
     * @defaultValue reject
     */
    business_errors: z.enum(['reject', 'hold', 'acknowledge']).default('reject'),
    /** Most documents (810s or 856s) in one outbound interchange; more go in further files. @defaultValue 500 */
    max_documents_per_file: z.number().int().min(1).max(100_000).default(500),
    /**
     * When the partner's file is due (docs/operations.md, "Expected files"): the files its
     * pipelines fetch from its SFTP server and the interchanges it sends count; an interchange's
     * transaction sets count as its rows.
     */
    expect: expectSchema.optional(),
  })
  .strict()
  .refine((p) => p.x12 === undefined || p.customer_no !== undefined, {
    message: 'a trading partner with an x12 profile needs customer_no',
    path: ['customer_no'],
  });

/** A validated partner definition: an SFTP endpoint, and for trading partners an X12 profile. */
export type AnyPartner = z.output<typeof partnerSchema> & {
  /** The definition's file, relative to the home (for messages). */
  file: string;
};

/** A trading partner: one with an X12 profile and the customer it trades as. */
export type Partner = AnyPartner & { x12: NonNullable<AnyPartner['x12']>; customer_no: string };

function isTradingPartner(p: AnyPartner): p is Partner {
  return p.x12 !== undefined && p.customer_no !== undefined;
}

/** The names of the partners declared under `home`/partners, sorted. */
export async function listPartnerNames(home: string): Promise<string[]> {
  try {
    return (await readdir(path.join(home, 'partners')))
      .filter((f) => f.endsWith('.yaml') && !f.startsWith('.'))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/** Loads a trading partner (one with an X12 profile), for EDI. */
export async function loadPartner(home: string, name: string): Promise<Partner> {
  const p = await loadAnyPartner(home, name);
  if (!isTradingPartner(p))
    throw new UserError(`${p.file}: partner ${name} has no x12 profile; it exchanges files only`);
  return p;
}

/** Loads and validates `partners/<name>.yaml`; a missing partner lists the declared ones. */
export async function loadAnyPartner(home: string, name: string): Promise<AnyPartner> {
  if (!PARTNER_NAME.test(name)) {
    throw new UserError(`'${name}' is not a partner name (letters, digits, _ and -)`);
  }
  const file = path.join(home, 'partners', `${name}.yaml`);
  const display = path.relative(home, file);
  const known = await listPartnerNames(home);
  if (!known.includes(name)) {
    throw new UserError(
      `unknown trading partner '${name}': no ${display}; partners are: ${known.join(', ') || '(none)'}`,
    );
  }
  const config = await loadYamlFile(file, partnerSchema, display);
  if (config.name !== name) {
    throw new UserError(`${display}, name: is '${config.name}'; expected '${name}', the file's name`);
  }
  return { ...config, file: display };
}

/** Loads every partner under `home`/partners, trading partners and file-only ones. */
export async function loadAnyPartners(home: string): Promise<AnyPartner[]> {
  const out: AnyPartner[] = [];
  for (const name of await listPartnerNames(home)) out.push(await loadAnyPartner(home, name));
  return out;
}

/** Loads every trading partner (with an X12 profile) under `home`/partners. */
export async function loadPartners(home: string): Promise<Partner[]> {
  return (await loadAnyPartners(home)).filter(isTradingPartner);
}

/** Which delivery directories an endpoint resolves to. */
export interface PartnerDirs {
  inbox: string;
  outbox: string;
  archive: string;
  error: string;
}

/**
 * The partner's SFTP endpoint with every `_env` setting read from `env`, validated by
 * `sftpEndpointSchema`. A missing or malformed variable is a {@link UserError} naming the
 * partner file, the key and the variable, never its value (it may be a secret).
 */
export function resolveEndpoint(
  partner: AnyPartner,
  env: NodeJS.ProcessEnv = process.env,
): SftpEndpoint & PartnerDirs {
  const s = partner.sftp;
  const where = `${partner.file}, sftp`;
  const fromEnv = (key: (typeof FROM_ENV)[number]): string | undefined => {
    const name = s[`${key}_env`];
    if (name === undefined) return undefined;
    const value = env[name];
    if (value === undefined || value.trim() === '') {
      throw new UserError(
        `${where}.${key}_env: environment variable ${name} is not set; set it to the ${key}`,
      );
    }
    return value.trim();
  };
  const portText = fromEnv('port');
  let port = s.port;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new UserError(
        `${where}.port_env: environment variable ${s.port_env} must be a TCP port from 1 to 65535`,
      );
    }
    port = Number(portText);
  }
  const pins = fromEnv('host_key_sha256');
  const baseDir = s.base_dir ?? fromEnv('base_dir');
  const dir = (d: string): string => (baseDir === undefined ? d : path.posix.resolve(baseDir, d));
  const keyFile = s.private_key_file ?? fromEnv('private_key_file');
  const input: SftpEndpointInput = {
    host: s.host ?? fromEnv('host')!,
    ...(port !== undefined ? { port } : {}),
    user: s.user ?? fromEnv('user')!,
    ...(keyFile !== undefined ? { private_key_file: keyFile } : {}),
    ...(s.private_key_env !== undefined ? { private_key_env: s.private_key_env } : {}),
    ...(s.passphrase_env !== undefined ? { passphrase_env: s.passphrase_env } : {}),
    host_key_sha256: s.host_key_sha256 ?? pins!.split(/[\s,]+/).filter(Boolean),
    inbox: dir(s.inbox),
    outbox: dir(s.outbox),
    archive: dir(s.archive),
    error: dir(s.error),
    ready: s.ready,
    retry: s.retry,
    connect_timeout_ms: s.connect_timeout_ms,
  };
  const parsed = sftpEndpointSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.slice(0, 5).map((issue) => {
      const key = String(issue.path[0] ?? '');
      const envKey = `${key}_env` as `${(typeof FROM_ENV)[number]}_env`;
      const source =
        (FROM_ENV as readonly string[]).includes(key) && s[envKey] !== undefined
          ? ` (from environment variable ${s[envKey]})`
          : '';
      return `${where}.${key}${source}: ${issue.message}`;
    });
    throw new UserError(lines.join('\n'));
  }
  const e = parsed.data;
  return { ...e, inbox: e.inbox!, outbox: e.outbox!, archive: e.archive!, error: e.error! };
}
