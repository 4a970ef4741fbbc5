import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { parseRedisUrl } from '../runner/redis-url.js';

/**
 * Settings read from the environment. Every option is declared once here, with its default;
 * a wrong value is reported as one line naming the variable and what it expects.
 */
export const configSchema = z.object({
  /** PostgreSQL connection string. */
  DATABASE_URL: z
    .string()
    .url()
    .superRefine((v, ctx) => checkUrl(v, ['postgres:', 'postgresql:'], ctx, postgresProblem))
    .default('postgres://root@127.0.0.1:5432/root'),
  /**
   * Redis for the BullMQ worker pool: `redis://` or `rediss://` for one server, `redis+sentinel://`
   * or `redis+cluster://` with comma-separated host:port pairs for a group (src/runner/redis-url.ts).
   */
  REDIS_URL: z
    .string()
    .superRefine((v, ctx) => {
      try {
        if (parseRedisUrl(v).kind === 'single') new URL(v);
      } catch (err) {
        const message = err instanceof TypeError ? 'Invalid URL' : (err as Error).message;
        return ctx.addIssue({ code: 'custom', message });
      }
      checkUrl(v, ['redis:', 'rediss:', 'redis+sentinel:', 'redis+cluster:'], ctx, redisProblem);
    })
    .default('redis://127.0.0.1:6379'),
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where run artefacts (reject reports, exports, downloads) are written. */
  ERP_DATA_DIR: z.string().min(1).default('var'),
  /** Project root holding pipelines/, mappings/, jobs/ and sql/. */
  ERP_HOME: z.string().min(1).default('.'),
  /** BullMQ queue prefix; tests use their own so they never see each other's jobs. */
  ERP_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_:-]+$/, 'letters, digits, _ : -')
    .default('erp'),
  /** How long a stopping worker lets the runs in hand finish before handing them back, in ms. */
  ERP_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
  /** BullMQ lock duration of a worker's runs, in ms: a run whose lock is not renewed within it counts as stalled. */
  ERP_WORKER_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  /** How often a worker looks for stalled runs (their worker died) to hand them to another, in ms. */
  ERP_WORKER_STALLED_MS: z.coerce.number().int().min(500).default(30_000),
  /**
   * Port of a process's HTTP server: the console of `erp console` (unset: {@link HTTP_DEFAULTS}, 8080),
   * the /metrics, /healthz and /readyz server of `erp worker` and `erp scheduler` (unset: none).
   */
  ERP_HTTP_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /**
   * Address that server listens on. Unset: loopback for the console (a reverse proxy on the same
   * host fronts it), every interface for the metrics of workers and schedulers ({@link HTTP_DEFAULTS}).
   */
  ERP_HTTP_HOST: z.string().min(1).optional(),
  /** How long a console session lasts after login, in minutes. */
  ERP_CONSOLE_SESSION_MINUTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(480),
  /**
   * Trust `X-Forwarded-For` / `X-Forwarded-Proto` from the reverse proxy at these addresses
   * (comma-separated, as Fastify's `trustProxy`); off by default, so a client cannot spoof its address.
   */
  ERP_CONSOLE_TRUST_PROXY: z.string().optional(),
  /**
   * Single sign-on: the name of a header the reverse proxy sets to the signed-in user's name
   * (`X-Remote-User`). Off unless set; honoured only on requests from an address of
   * ERP_CONSOLE_TRUST_PROXY (required with it), and the user must exist in `erp users` (the role
   * comes from there).
   */
  ERP_CONSOLE_TRUSTED_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'a header name')
    .optional(),
  /** How often workers and schedulers reconcile runs in PostgreSQL with the queue in Redis, in ms. */
  ERP_RECONCILE_MS: z.coerce.number().int().min(200).default(15_000),
  /** How often schedulers cancel runs whose approval expired (runner.expire_approvals), in ms. */
  ERP_APPROVAL_EXPIRY_MS: z.coerce.number().int().min(200).default(60_000),
  /**
   * Directories input files may come from besides ERP_HOME (`--file`, `source.path`), separated by
   * `:`; a file anywhere else is refused before it is opened.
   */
  ERP_INPUT_DIRS: z.string().default(''),
  /**
   * Who this process acts for in the audit trail (runs, approvals, cancels); unset: the OS user.
   * Bind it to the database login on shared hosts (docs/compliance.md).
   */
  ERP_USER: z.string().trim().min(1).optional(),
  /**
   * The most PostgreSQL connections one erp process may open (its pool and its runner session);
   * unset: 10 for a command, 2 per run in hand plus 2 for a worker. A worker whose --concurrency
   * needs more refuses to start. Size it under the server's (or PgBouncer's) per-client limit.
   */
  ERP_PG_MAX_CONNECTIONS: z.coerce.number().int().min(3).optional(),
  /**
   * How often `erp run` and `erp validate` print a running step's progress (percentage, rows/s, time
   * left) as a plain line when stderr is not a terminal, in ms; on a terminal a progress bar shows it.
   */
  ERP_PROGRESS_MS: z.coerce.number().int().min(100).default(10_000),
  /** Rows kept per file in the erp.rejects table; the CSV report always has them all. */
  ERP_REJECTS_IN_TABLE: z.coerce.number().int().min(0).default(1000),
});

export type Config = z.infer<typeof configSchema>;

/** Where each process's HTTP server listens when ERP_HTTP_PORT / ERP_HTTP_HOST are unset. */
export const HTTP_DEFAULTS = {
  console: { port: 8080, host: '127.0.0.1' },
  /** `erp worker` and `erp scheduler`: no server unless ERP_HTTP_PORT is set. */
  service: { port: null, host: '0.0.0.0' },
} as const;

/**
 * Who is running this process, for the audit trail: ERP_USER as the schema reads it (an empty or
 * blank value counts as unset), else the OS user.
 */
export function currentUser(env: NodeJS.ProcessEnv = process.env): string {
  const declared = configSchema.shape.ERP_USER.safeParse(env.ERP_USER);
  if (declared.success && declared.data !== undefined) return declared.data;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/**
 * Checks a connection URL's form, so a malformed one is one line naming the variable (exit 2)
 * rather than a library's error later. Messages never quote the value: it may hold a password.
 */
function checkUrl(
  value: string,
  protocols: string[],
  ctx: z.RefinementCtx,
  problem: (u: URL) => string | null,
): void {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return; // .url() reports it
  }
  const why = !protocols.includes(u.protocol)
    ? `expected a ${protocols.map((p) => `${p}//`).join(' or ')} URL, not ${u.protocol}//`
    : u.port !== '' && !validPort(u.port)
      ? 'the port is not a number from 1 to 65535'
      : problem(u);
  if (why) ctx.addIssue({ code: 'custom', message: why });
}

function validPort(p: string): boolean {
  return /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535;
}

function postgresProblem(u: URL): string | null {
  const port = u.searchParams.get('port');
  if (port !== null && !validPort(port)) return 'the port parameter is not a number from 1 to 65535';
  if (u.hostname === '' && !u.searchParams.get('host')) return 'the URL names no host';
  return null;
}

function redisProblem(u: URL): string | null {
  if (u.protocol.startsWith('redis+')) return null; // read by parseRedisUrl
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) return 'the database (the path after the host) is not a number';
  if (u.hostname === '') return 'the URL names no host';
  return null;
}

/** Settings that may hold passwords; each can also be read from the file named by `<KEY>_FILE`. */
const SECRET_KEYS = ['DATABASE_URL', 'REDIS_URL'] as const;

/** Parses `env` into a {@link Config}, or throws a {@link UserError} with one line per bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') picked[key] = value;
  }
  // Secrets may come from files (Docker and Kubernetes secrets): DATABASE_URL_FILE, REDIS_URL_FILE.
  for (const key of SECRET_KEYS) {
    const file = env[`${key}_FILE`];
    if (file === undefined || file === '' || picked[key] !== undefined) continue;
    try {
      picked[key] = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UserError(
        `environment variable ${key}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  const parsed = configSchema.safeParse(picked);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      return `environment variable ${key}: ${issue.message}`;
    });
    throw new UserError(lines.join('\n'));
  }
  return parsed.data;
}
