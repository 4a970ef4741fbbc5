import type pg from 'pg';
import { UserError } from '../errors.js';
import { resolveRunnable, type Runnable } from './definition.js';

export interface StoredRun {
  runId: number;
  runnable: Runnable;
  params: Record<string, string>;
  force: boolean;
  files?: string[];
}

/** Reads what a worker needs to execute a queued run from its row in runner.runs. */
export async function loadStoredRun(pool: pg.Pool, home: string, runId: number): Promise<StoredRun> {
  const { rows } = await pool.query<{
    name: string;
    params: Record<string, string>;
    options: { force?: boolean; files?: string[] };
  }>('SELECT name, params, options FROM runner.runs WHERE id = $1', [runId]);
  const row = rows[0];
  if (!row) throw new UserError(`no run ${runId} in runner.runs`);
  return {
    runId,
    runnable: await resolveRunnable(home, row.name),
    params: row.params,
    force: row.options.force ?? false,
    files: row.options.files,
  };
}
