import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { CancelledError, UserError } from '../errors.js';
import { bindNamedParams } from '../sql-params.js';

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

/**
 * Runs a SQL file in one transaction with psql-style parameters (`:'period'`). A dry run executes
 * it the same way and rolls back, so what it would do is shown and nothing stays. Cancelling
 * (the signal) cancels the statement in the server and rolls back.
 */
export async function runSqlStep(
  pool: pg.Pool,
  home: string,
  ref: string,
  params: Record<string, string>,
  opts: { dryRun: boolean; signal: AbortSignal },
): Promise<SqlStepResult> {
  const file = sqlFilePath(home, ref);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new UserError(`sql step '${ref}': no such file sql/${ref}`);
  }
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
  try {
    if (opts.signal.aborted) throw new CancelledError();
    await client.query('BEGIN');
    const res = (await client.query(sql)) as pg.QueryResult | pg.QueryResult[];
    const all = (Array.isArray(res) ? res : [res]).map((r): StatementResult => ({
      command: r.command ?? null,
      rowCount: r.rowCount ?? 0,
      columns: (r.fields ?? []).map((f) => f.name),
      rows: (r.rows ?? []).slice(0, MAX_ROWS),
    }));
    if (opts.signal.aborted) throw new CancelledError();
    await client.query(opts.dryRun ? 'ROLLBACK' : 'COMMIT');
    const withRows = all.filter((r) => r.columns.length > 0);
    return { file: `sql/${ref}`, ...all[all.length - 1]!, results: withRows, dryRun: opts.dryRun };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    if (opts.signal.aborted) throw new CancelledError();
    const pgErr = err as { code?: string; message: string; where?: string };
    if (pgErr.code === 'P0001' || pgErr.code === 'ERP01') throw new UserError(`sql/${ref}: ${pgErr.message}`);
    throw Object.assign(new Error(`sql/${ref}: ${pgErr.message}`), { code: pgErr.code });
  } finally {
    opts.signal.removeEventListener('abort', cancel);
    client.release(broken);
  }
}
