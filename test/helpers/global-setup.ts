import pg from 'pg';
import { createPool } from '../../src/db.js';
import { migrate } from '../../src/migrate.js';

/** Server URL of the maintenance database the tests create their databases from. */
export const ADMIN_URL = process.env.TEST_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
export const TEMPLATE_DB = 'erp_test_template';

/**
 * Builds the template database once per `vitest run`: every migration applied. Each test file
 * clones it (`CREATE DATABASE … TEMPLATE …`), which takes milliseconds.
 */
export default async function setup(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${TEMPLATE_DB}`;
  const pool = createPool(url.toString(), 1);
  try {
    await migrate(pool, 'sql');
  } finally {
    await pool.end();
  }
}
