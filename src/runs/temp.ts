import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';

/**
 * A run's temporary files (SFTP downloads, files spooled before an upload) live under
 * `ERP_DATA_DIR/tmp/<run id>` (`tmp/pid-<pid>` for a dry run, which has no id), never in the system
 * temp directory: an operator knows where they are, the run removes them when its attempt ends,
 * and a worker starting sweeps those of runs no process executes any more (a worker killed
 * mid-download leaves its partial file behind).
 */

/** The directory of a run's temporary files (not created). */
export function runTempDir(dataDir: string, runId: number | null | undefined): string {
  return path.join(dataDir, 'tmp', runId == null ? `pid-${process.pid}` : String(runId));
}

/** A fresh directory for one stage's files inside `runDir` (a {@link runTempDir}). */
export async function makeTempIn(runDir: string, prefix: string): Promise<string> {
  await mkdir(runDir, { recursive: true });
  return mkdtemp(path.join(runDir, prefix));
}

/** Removes a run's temporary files (its attempt ended). */
export async function removeRunTemp(dataDir: string, runId: number | null | undefined): Promise<void> {
  await rm(runTempDir(dataDir, runId), { recursive: true, force: true });
}

/**
 * Removes the temporary directories of runs that no process executes: finished or unknown runs,
 * and dry runs whose process is gone. Returns the names removed.
 */
export async function sweepRunTemps(pool: pg.Pool, dataDir: string, log: Logger): Promise<string[]> {
  const root = path.join(dataDir, 'tmp');
  const names = await readdir(root).catch(() => [] as string[]);
  if (names.length === 0) return [];
  const ids = names.filter((n) => /^\d+$/.test(n)).map(Number);
  const { rows } = await pool.query<{ id: number }>(
    `SELECT id::int FROM runner.runs WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'running')`,
    [ids],
  );
  const live = new Set(rows.map((r) => String(r.id)));
  const removed: string[] = [];
  for (const name of names) {
    const pid = /^pid-(\d+)$/.exec(name)?.[1];
    const dead = pid !== undefined ? !processAlive(Number(pid)) : /^\d+$/.test(name) && !live.has(name);
    if (!dead) continue;
    await rm(path.join(root, name), { recursive: true, force: true });
    removed.push(name);
  }
  if (removed.length > 0) log.info({ removed }, 'removed the temporary files of runs no process executes');
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
