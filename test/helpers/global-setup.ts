import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { createPool, queryOnce } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { ensureBuilt } from './dist.js';

/** Server URL of the maintenance database the tests create their databases from. */
export const ADMIN_URL = process.env.TEST_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Name of this run's migrated template database. */
    templateDb: string;
  }
}

/**
 * Once per `vitest run`: builds dist/ when it is stale (test/helpers/dist.ts), then a template
 * database with every migration applied. Each test file clones it (`CREATE DATABASE … TEMPLATE …`,
 * the `db` fixture in test/helpers/fixtures.ts), which takes milliseconds.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The CLI tests spawn dist/cli.js: build it first when it is missing or older than src/.
  ensureBuilt();
  // A template of this run's own, so concurrent runs never rebuild one another's template.
  const template = `erp_template_${randomBytes(4).toString('hex')}`;
  // Bank accounts and tax ids are encrypted at rest (src/compliance/keys.ts): the test workers and
  // the CLI processes they start inherit a key of this run's own.
  if (!process.env.ERP_KEYS_FILE) process.env.ERP_KEYS ??= `test:${randomBytes(32).toString('base64')}`;
  await queryOnce(ADMIN_URL, `CREATE DATABASE ${template}`);
  project.provide('templateDb', template);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${template}`;
  const pool = createPool(url.toString(), 1);
  try {
    await migrate(pool, 'sql');
  } finally {
    await pool.end();
  }
  return () => queryOnce(ADMIN_URL, `DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
}
