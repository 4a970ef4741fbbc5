import path from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { loadConfig, type Config } from './config/env.js';
import { createPool } from './db/pool.js';
import { inputRootsOf } from './config/input-roots.js';
import { createLogger } from './log.js';
import type { AppContext } from './pipeline/run.js';

/** Everything a command or a worker needs, built once per process from the environment. */
export interface App extends AppContext {
  config: Config;
  close(): Promise<void>;
}

/** Connections of a command's pool, unless ERP_PG_MAX_CONNECTIONS allows fewer. */
const COMMAND_POOL_MAX = 10;

/**
 * Builds the process's app from the environment. The CLI and the worker call this same function.
 * `poolMax` sizes the pool for a process that needs more than a command does (a worker: see
 * {@link workerPoolSize}).
 */
export function createApp(
  env: NodeJS.ProcessEnv = process.env,
  log?: Logger,
  opts: { poolMax?: number | ((config: Config) => number) } = {},
): App {
  const config = loadConfig(env);
  const logger = log ?? createLogger(config.LOG_LEVEL);
  const budget = config.ERP_PG_MAX_CONNECTIONS;
  // One connection of the budget stays free for the runner session a worker or a follower opens.
  const max =
    typeof opts.poolMax === 'function'
      ? opts.poolMax(config)
      : (opts.poolMax ?? (budget ? Math.min(COMMAND_POOL_MAX, budget - 1) : COMMAND_POOL_MAX));
  const pool: pg.Pool = createPool(config.DATABASE_URL, max);
  const home = path.resolve(config.ERP_HOME);
  return {
    config,
    pool,
    log: logger,
    home,
    dataDir: path.resolve(home, config.ERP_DATA_DIR),
    rejectsInTable: config.ERP_REJECTS_IN_TABLE,
    inputDirs: inputRootsOf(home, config.ERP_INPUT_DIRS).slice(1),
    async close() {
      await pool.end();
    },
  };
}
