/**
 * A database of the test's own, cloned from the migrated template of this run (global-setup.ts).
 * Files take theirs from the `db` fixture (fixtures.ts); a test that needs a second calls this.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { createPool, queryOnce } from '../../src/db/pool.js';
import { inject } from 'vitest';
import { ADMIN_URL } from './global-setup.js';

export interface TestDatabase {
  /** Connection string of the fresh database. */
  url: string;
  name: string;
  pool: pg.Pool;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/** A fresh, fully migrated database of the test file's own, cloned from the template. */
export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const name = `erp_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await queryOnce(ADMIN_URL, `CREATE DATABASE ${name} TEMPLATE ${inject('templateDb')}`);
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = createPool(url, 5);
  return {
    url,
    name,
    pool,
    async drop() {
      await pool.end();
      await queryOnce(ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
