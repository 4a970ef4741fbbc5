import type pg from 'pg';
import { UserError } from '../errors.js';
import type { RunJobData } from '../runner/queue.js';
import { paramStrings, resolveRunnable, type Runnable } from './definition.js';

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
    params: Record<string, unknown>;
    options: { force?: boolean; files?: string[] };
  }>('SELECT name, params, options FROM runner.runs WHERE id = $1', [runId]);
  const row = rows[0];
  if (!row) throw new UserError(`no run ${runId} in runner.runs`);
  return storedRun(home, { ...row.options, runId, name: row.name, params: paramStrings(row.params) });
}

/**
 * The run a queued job carries: its copy of what runner.runs recorded, or, for a job queued
 * without the copy, the record itself.
 */
export function storedRunOf(pool: pg.Pool, home: string, data: RunJobData): Promise<StoredRun> {
  return data.params
    ? storedRun(home, { ...data, params: data.params })
    : loadStoredRun(pool, home, data.runId);
}

async function storedRun(
  home: string,
  r: { runId: number; name: string; params: Record<string, string>; force?: boolean; files?: string[] },
): Promise<StoredRun> {
  return {
    runId: r.runId,
    runnable: await resolveRunnable(home, r.name),
    params: r.params,
    force: r.force ?? false,
    files: r.files,
  };
}
