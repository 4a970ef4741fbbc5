import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { UserError } from '../errors.js';

/** A migration file: `sql/000001_runner.sql` → id 1. */
export interface Migration {
  id: number;
  name: string;
  sql: string;
  checksum: string;
}

const FILE = /^(\d{6})_([a-z0-9_]+)\.sql$/;

/** Reads the numbered migrations in `dir`, in order; refuses duplicate numbers. */
export async function readMigrations(dir: string): Promise<Migration[]> {
  const names = (
    await readdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      throw new UserError(
        `no migrations directory ${dir}: run erp from the project directory, or set ERP_HOME to it`,
      );
    })
  )
    .filter((n) => n.endsWith('.sql') && /^\d/.test(n))
    .sort();
  const out: Migration[] = [];
  for (const name of names) {
    const m = FILE.exec(name);
    if (!m) throw new UserError(`${path.join(dir, name)}: migration files are named NNNNNN_name.sql`);
    const id = Number(m[1]);
    const prev = out[out.length - 1];
    if (prev && id <= prev.id) {
      throw new UserError(`${path.join(dir, name)}: migration number ${id} is used twice`);
    }
    const sql = await readFile(path.join(dir, name), 'utf8');
    out.push({ id, name, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return out;
}

export interface MigrateResult {
  applied: string[];
  current: number;
}

/**
 * Applies pending migrations, each in its own transaction, recording its checksum. Refuses to run
 * when a migration already applied has been edited since. An advisory lock serialises concurrent
 * `erp migrate` calls (several workers starting at once).
 */
export async function migrate(pool: pg.Pool, dir: string): Promise<MigrateResult> {
  const migrations = await readMigrations(dir);
  const client = await pool.connect();
  try {
    await client.query(`SELECT pg_advisory_lock(hashtext('erp.migrate'))`);
    await client.query(`CREATE SCHEMA IF NOT EXISTS runner`);
    await client.query(`CREATE TABLE IF NOT EXISTS runner.migrations (
      id int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ id: number; name: string; checksum: string }>(
      'SELECT id, name, checksum FROM runner.migrations ORDER BY id',
    );
    for (const row of rows) {
      const file = migrations.find((m) => m.id === row.id);
      if (!file) {
        throw new UserError(`migration ${row.name} is applied in the database but missing from ${dir}`);
      }
      if (file.checksum !== row.checksum) {
        throw new UserError(
          `migration ${file.name} was edited after it was applied (checksum differs); migrations are append-only: revert the edit and add a new migration instead`,
        );
      }
    }
    const applied: string[] = [];
    for (const m of migrations.filter((mig) => !rows.some((r) => r.id === mig.id))) {
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO runner.migrations (id, name, checksum) VALUES ($1, $2, $3)', [
          m.id,
          m.name,
          m.checksum,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new UserError(`migration ${m.name} failed and was rolled back: ${(err as Error).message}`);
      }
      applied.push(m.name);
    }
    return { applied, current: migrations[migrations.length - 1]?.id ?? 0 };
  } finally {
    await client.query(`SELECT pg_advisory_unlock(hashtext('erp.migrate'))`).catch(() => undefined);
    client.release();
  }
}
