/**
 * The test fixtures (test/helpers/fixtures.ts) on the real PostgreSQL and Redis: `db` is a migrated
 * clone shared by the file's tests, `home` an empty directory that keeps test files out of the
 * repository, `queue` a prefix of the file's own; and what tears each down leaves nothing behind.
 */
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect } from 'vitest';
import { createTestDatabase } from './helpers/db.js';
import { openTestQueue, test } from './helpers/fixtures.js';
import { createTestHome } from './helpers/home.js';
import { keysOf, REDIS_URL, waitFor } from './helpers/runner.js';

describe('db', () => {
  test('is a fresh clone of the migrated template, named after the file', async ({ db }) => {
    expect(db.name).toMatch(/^erp_test_fixtures_[0-9a-f]{8}$/);
    const { rows } = await db.pool.query(`SELECT to_regclass('runner.runs') IS NOT NULL AS migrated`);
    expect(rows[0].migrated).toBe(true);
    await db.pool.query('CREATE TABLE public.seen (n int)');
  });

  test('is the same database for every test of the file', async ({ db }) => {
    const { rows } = await db.pool.query(`SELECT to_regclass('public.seen') IS NOT NULL AS there`);
    expect(rows[0].there).toBe(true);
  });

  test('createTestDatabase drops what it made', async ({ db }) => {
    const other = await createTestDatabase('fixtures_drop');
    await other.drop();
    const { rows } = await db.pool.query('SELECT 1 FROM pg_database WHERE datname = $1', [other.name]);
    expect(rows).toHaveLength(0);
  });
});

describe('home', () => {
  test('starts empty, takes files, and links the repository’s directories', async ({ home }) => {
    expect(path.basename(home.dir)).toMatch(/^erp-test-fixtures-/);
    expect(home.dataDir).toBe(path.join(home.dir, 'var'));
    await home.write({ 'jobs/a/b.yaml': 'steps: []\n' });
    expect(await readFile(path.join(home.dir, 'jobs/a/b.yaml'), 'utf8')).toBe('steps: []\n');
    await home.link(['sql']);
    expect(lstatSync(path.join(home.dir, 'sql')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(home.dir, 'sql'))).toBe(path.resolve('sql'));
  });

  test('refuses a file that would land in a linked directory of the repository', async ({ home }) => {
    await expect(home.write({ 'sql/999_test.sql': 'SELECT 1;' })).rejects.toThrow(
      "home.write: sql/999_test.sql would be written into the repository's sql/",
    );
    expect(existsSync(path.resolve('sql/999_test.sql'))).toBe(false);
  });

  test('createTestHome removes what it made', async () => {
    const other = await createTestHome('fixtures-remove');
    await other.write({ 'in/x.csv': 'a\n' });
    await other.remove();
    expect(existsSync(other.dir)).toBe(false);
  });
});

describe('queue', () => {
  test('is a prefix of the file’s own on the shared Redis', async ({ queue }) => {
    expect(queue.prefix).toMatch(/^test-test-fixtures-[0-9a-f]{8}$/);
    await queue.queue.add('probe', { runId: 1 } as never);
    expect((await keysOf(queue.redis, queue.prefix)).length).toBeGreaterThan(0);
  });

  test('its teardown deletes every key of the prefix and closes the connection', async () => {
    const q = openTestQueue('fixtures-close');
    await q.queue.add('probe', { runId: 1 } as never);
    const probe = new Redis(REDIS_URL);
    try {
      expect((await keysOf(probe, q.prefix)).length).toBeGreaterThan(0);
      await q.close();
      expect(await keysOf(probe, q.prefix)).toEqual([]);
      // disconnect() ends the connection on a later turn of the event loop.
      await waitFor(
        () => q.redis.status === 'end',
        5_000,
        () => `the connection to end (${q.redis.status})`,
      );
    } finally {
      probe.disconnect();
    }
  });
});
