import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { CancelledError, describeError, UserError } from '../errors.js';
import { FileCache } from '../config/file-cache.js';
import { bindNamedParams } from '../db/sql-params.js';

/** One statement's result: its command tag and rows (at most {@link MAX_ROWS}). */
export interface StatementResult {
  command: string | null;
  rowCount: number;
  columns: string[];
  rows: Record<string, unknown>[];
}

/** What a SQL step returned: the result of each statement that returned rows, or of the last one. */
export interface SqlStepResult extends StatementResult {
  file: string;
  /** Every statement that returned rows, in order (a payroll close: its summary, the register, the journal entry). */
  results: StatementResult[];
  dryRun: boolean;
}

const MAX_ROWS = 200;

/** Resolves a job's `sql:` reference to a file inside sql/, refusing paths that leave it. */
export function sqlFilePath(home: string, ref: string): string {
  const root = path.resolve(home, 'sql');
  const file = path.resolve(root, ref);
  if (!file.startsWith(root + path.sep) || !file.endsWith('.sql')) {
    throw new UserError(`sql step '${ref}': expected a .sql file inside sql/`);
  }
  return file;
}

/** SQL files' text: a worker runs the same few often. */
const sqlTexts = new FileCache<string>();

async function readSqlFile(file: string, ref: string): Promise<string> {
  const text = await sqlTexts.get(file, () => readFile(file, 'utf8')).catch(() => undefined);
  if (text === undefined) throw new UserError(`sql step '${ref}': no such file sql/${ref}`);
  return text;
}

export interface SqlStepOptions {
  dryRun: boolean;
  signal: AbortSignal;
  /**
   * A statement run last in the step's transaction and sent with its COMMIT (the runner records
   * the step's success there, so the step's work and its record commit together). It gets the
   * step's result and the connection (for escapeLiteral); an error it throws or its statement
   * raises rolls everything back and is thrown as it is. Not used by a dry run.
   */
  commitWith?: (result: SqlStepResult, client: pg.PoolClient) => string | Promise<string>;
}

/**
 * Runs a SQL file in one transaction with psql-style parameters (`:'period'`). A dry run executes
 * it the same way and rolls back, so what it would do is shown and nothing stays. Cancelling
 * (the signal) cancels the statement in the server and rolls back.
 *
 * Two round trips for a step: `BEGIN; <the file>` in one message, then `<commitWith>; COMMIT`.
 */
export async function runSqlStep(
  pool: pg.Pool,
  home: string,
  ref: string,
  params: Record<string, string>,
  opts: SqlStepOptions,
): Promise<SqlStepResult> {
  const file = sqlFilePath(home, ref);
  const text = await readSqlFile(file, ref);
  const client = await pool.connect();
  const sql = bindNamedParams(
    text,
    params,
    (v) => client.escapeLiteral(v),
    (v) => client.escapeIdentifier(v),
  );
  const cancel = (): void => {
    void pool
      .query('SELECT pg_cancel_backend($1)', [(client as unknown as { processID: number }).processID])
      .catch(() => undefined);
  };
  opts.signal.addEventListener('abort', cancel, { once: true });
  let broken = false;
  let committing = false;
  try {
    if (opts.signal.aborted) throw new CancelledError();
    // The file's text after BEGIN in one simple-protocol message: one transaction, one round trip.
    // A line comment left open at the file's end stops at the newline.
    const res = (await client.query(`BEGIN;\n${sql}\n`)) as pg.QueryResult | pg.QueryResult[];
    const all = (Array.isArray(res) ? res : [res]).slice(1).map((r): StatementResult => ({
      command: r.command ?? null,
      rowCount: r.rowCount ?? 0,
      columns: (r.fields ?? []).map((f) => f.name),
      rows: (r.rows ?? []).slice(0, MAX_ROWS),
    }));
    if (all.length === 0) throw new UserError(`sql/${ref}: the file holds no statement`);
    if (opts.signal.aborted) throw new CancelledError();
    const withRows = all.filter((r) => r.columns.length > 0);
    const result = { file: `sql/${ref}`, ...all[all.length - 1]!, results: withRows, dryRun: opts.dryRun };
    committing = true;
    if (opts.dryRun) await client.query('ROLLBACK');
    else await client.query(opts.commitWith ? `${await opts.commitWith(result, client)};\nCOMMIT` : 'COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    if (opts.signal.aborted) throw new CancelledError();
    if (err instanceof UserError || err instanceof CancelledError) throw err;
    const pgErr = err as { code?: string; message: string; where?: string };
    // The runner's own refusal from commitWith (the run no longer runs here) is not the file's error.
    if (committing && opts.commitWith && (!pgErr.code || /^ERP0[23]$/.test(pgErr.code))) throw err;
    // A refusal the SQL raised is the operator's to fix, said in the operator's words.
    if (pgErr.code === 'P0001' || pgErr.code === 'ERP01')
      throw new UserError(`sql/${ref}: ${describeError(err)}`);
    throw Object.assign(new Error(`sql/${ref}: ${pgErr.message}`), { code: pgErr.code });
  } finally {
    opts.signal.removeEventListener('abort', cancel);
    client.release(broken);
  }
}
