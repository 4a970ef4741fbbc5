import { mkdtemp, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

let db: TestDatabase;
test.beforeAll(async ({ db: d }) => {
  db = d;
});

describe('migrate', () => {
  it('records every migration with its checksum and is idempotent', async () => {
    const again = await migrate(db.pool, 'sql');
    expect(again.applied).toEqual([]);
    const { rows } = await db.pool.query(
      'SELECT id, name, length(checksum) AS len FROM runner.migrations ORDER BY id',
    );
    expect(rows[rows.length - 1].id).toBe(again.current);
    expect(rows[0]).toMatchObject({ id: 1, name: '000001_runner.sql', len: 64 });
  });

  it('refuses to run when a landed migration was edited', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'erp-mig-'));
    await cp('sql', dir, { recursive: true });
    const first = path.join(dir, '000001_runner.sql');
    await writeFile(first, '-- edited\n', { flag: 'a' });
    await expect(migrate(db.pool, dir)).rejects.toThrow(/000001_runner.sql was edited after it was applied/);
  });

  it('applies a new migration in its own transaction and rolls back a failing one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'erp-mig-'));
    await cp('sql', dir, { recursive: true });
    const n = (await migrate(db.pool, dir)).current + 1;
    const name = `${String(n).padStart(6, '0')}_broken.sql`;
    await writeFile(path.join(dir, name), 'CREATE TABLE public.half_done (id int);\nSELECT 1/0;\n');
    await expect(migrate(db.pool, dir)).rejects.toThrow(new RegExp(`${name} failed and was rolled back`));
    const { rows } = await db.pool.query(`SELECT to_regclass('public.half_done') AS t`);
    expect(rows[0].t).toBeNull();
  });
});
