import { redactUrls } from './log.js';

/**
 * Error classes that decide how a failure is shown and whether it is retried.
 *
 * - {@link UserError}: the operator did something we can explain (bad config, unknown pipeline,
 *   bad parameter). Shown as one line, never with a stack trace. Not retryable.
 * - {@link RejectPolicyError}: a file had more rejected rows than its policy allows. Not retryable.
 * - Anything else is an infrastructure error (connection lost, disk full): logged with its stack at
 *   debug level, shown as one line, and retryable by the job runner.
 */
export class UserError extends Error {
  override name = 'UserError';
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A file exceeded `max_rejects` or `max_reject_rate`; its rows were rolled back. */
export class RejectPolicyError extends UserError {
  override name = 'RejectPolicyError';
  constructor(message: string) {
    super(message, 3);
  }
}

/** The run was cancelled through its AbortSignal. */
export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor(message = 'run cancelled') {
    super(message);
  }
}

/** The run took longer than its job's `timeout`: stopped, rolled back, not retried. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** SQLSTATE classes a retry can fix: connection, transaction rollback (deadlock, serialization), resources, lock not available, operator intervention, system errors. */
const TRANSIENT_SQLSTATE = /^(08|40|53|55|57|58)/;

/**
 * True for errors that retrying cannot fix: an operator's mistake, a cancellation, or a database
 * error about the data or the SQL itself (a constraint, a RAISE in a job's SQL, a syntax error).
 */
export function isPermanent(err: unknown): boolean {
  if (err instanceof UserError || err instanceof CancelledError || err instanceof TimeoutError) return true;
  // Before the SQLSTATE test: a lost socket's EPIPE has five capitals too, and is no SQLSTATE.
  if (isConnectionError(err)) return false;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return !TRANSIENT_SQLSTATE.test(code);
  return false;
}

/** One line for an operator: the message, no stack. */
export function describeError(err: unknown): string {
  // Libraries quote connection strings in their messages (ioredis: `connect ENOENT //:pw@host`).
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ECONNREFUSED') return redactUrls(`connection refused: ${err.message}`);
    if (typeof code === 'string') {
      return redactUrls(databaseWords(code, err.message));
    }
    return redactUrls(err.message);
  }
  return redactUrls(String(err));
}

/**
 * A PostgreSQL error an operator can meet, in the operator's words: what it means for this
 * project and the setting or command to check. Other errors keep PostgreSQL's message.
 */
function databaseWords(code: string, message: string): string {
  switch (code) {
    case '3D000':
      return `${message}: check that DATABASE_URL names an existing database (create it, then run erp migrate)`;
    case '42P01':
      return /relation "runner\./.test(message)
        ? `${message}: this database has no runner tables; run erp migrate, or check that DATABASE_URL names the right database`
        : `${message}: run erp migrate, or check that DATABASE_URL names the right database`;
    case '42P10':
      return `${message}: the upsert's key (sink.key) is not the column set of a unique index or primary key of the table; add one in a migration, or change sink.key`;
    case 'P0001':
    case 'ERP01': {
      // The schema's refusals (sql/000002, 000003, 000131) point at the SQL file; an operator runs the job.
      const period = /period (\d{4}-\d{2}) does not exist/.exec(message)?.[1];
      return period
        ? message.replace(
            'open it first (sql/jobs/open_period.sql)',
            `open it first with erp run open-period --period ${period}`,
          )
        : message;
    }
    default:
      return message;
  }
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * True when `err` says the database (or another server) could not be reached or the connection
 * was lost: a network error, SQLSTATE class 08, or a server shutting down or starting (57P01–57P03).
 * Such a failure is transient: the same work succeeds once the server is back.
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || /^(08|57P0[123])/.test(code))) return true;
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|not queryable|Connection ended|timeout exceeded when trying to connect/i.test(
    message,
  );
}
