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

/** Builds the process's app from the environment. The CLI and the worker call this same function. */
export function createApp(env: NodeJS.ProcessEnv = process.env, log?: Logger): App {
  const config = loadConfig(env);
  const logger = log ?? createLogger(config.LOG_LEVEL);
  const pool: pg.Pool = createPool(config.DATABASE_URL);
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
