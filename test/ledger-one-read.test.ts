/**
 * A large file (above the 4 MiB read whole) whose size its pipeline's ledger does not hold is new
 * content: it is hashed as it loads and enters the ledger after its rows (src/pipeline/run.ts
 * HashingTap). These tests hold that path to the promises of the ledger: the recorded SHA-256 is
 * the file's, a re-delivered file is skipped, content that reaches the ledger while the file loads
 * undoes the load, a failed file still names its content, and --force takes the row over.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

const PIPELINE = `
description: large files
source: { kind: file, path: 'in/*.csv' }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true, min: 1 }
    name: { type: string, required: true, max_length: 60 }
    qty: { type: int, required: true, min: 0 }
rejects: { max_rejects: 10 }
sink: { kind: postgres, table: public.big, mode: append }
`;

let db: TestDatabase;
let home: TestHome;

const N = 180_000;

/** Over 5 MB: above the size read whole (4 MiB), so the file streams from disk. */
function bigCsv(tag = 'item', qty = (i: number): string => String(i % 97)): string {
  let s = 'id,name,qty\n';
  for (let i = 1; i <= N; i++) s += `${i},"${tag} ${i}, grade ${i % 7}",${qty(i)}\n`;
  if (s.length <= 4 << 20) throw new Error(`bigCsv: ${s.length} bytes is not above 4 MiB`);
  return s;
}

const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');

async function run(file: string, opts: { force?: boolean } = {}) {
  const def = await loadPipeline(home.dir, 'big');
  return runPipeline(testApp(db, home.dir), def, { files: [file], ...opts });
}

/**
 * Another loader's transaction, left open, holding the ledger row of `text`'s content (as
 * elsewhere.csv). Its run_id is that of a run loading `small`, a one-row file, whose row is gone.
 */
async function holdLedgerRow(text: string): Promise<{ other: pg.PoolClient; small: string }> {
  const small = path.join(home.dir, 'in/small.csv');
  await writeFile(small, 'id,name,qty\n1,one,1\n');
  const first = await run(small);
  await db.pool.query('TRUNCATE big');
  const other = await db.pool.connect();
  try {
    await other.query('BEGIN');
    await other.query(
      `INSERT INTO runner.ingested_files (pipeline, sha256, file, size_bytes, run_id, rows_loaded)
       VALUES ('big', $1, 'elsewhere.csv', $2, $3, 1)`,
      [sha256(text), Buffer.byteLength(text), first.runId],
    );
  } catch (err) {
    other.release();
    throw err;
  }
  return { other, small };
}

async function count(): Promise<number> {
  return (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM big')).rows[0]!.n;
}

async function ledger(): Promise<{ sha256: string; file: string; rows_loaded: string; run_id: string }[]> {
  return (
    await db.pool.query(
      'SELECT sha256, file, rows_loaded, run_id FROM runner.ingested_files WHERE pipeline = $1 ORDER BY loaded_at',
      ['big'],
    )
  ).rows;
}

/** Resolves once a backend of this test's database waits for a lock (the run's ledger insert). */
async function someoneWaitsOnALock(): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const { rows } = await db.pool.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (rows.length > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no backend waited on a lock within 30 s');
}

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE big (id int NOT NULL, name text NOT NULL, qty int NOT NULL)');
  await home.write({ 'pipelines/big.yaml': PIPELINE, 'in/.keep': '' });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE big; TRUNCATE runner.ingested_files, runner.runs CASCADE');
});

describe('a large file new to its pipeline: hashed as it loads', () => {
  it('records the SHA-256 of the bytes it loaded, and skips the same content delivered again', async () => {
    const text = bigCsv();
    const file = path.join(home.dir, 'in/big.csv');
    await writeFile(file, text);
    const r = await run(file);
    expect(r.files[0]).toMatchObject({ status: 'loaded', rowsLoaded: N, sha256: sha256(text) });
    expect(await ledger()).toEqual([
      { sha256: sha256(text), file, rows_loaded: String(N), run_id: String(r.runId) },
    ]);
    const rec = await db.pool.query('SELECT sha256, status FROM runner.run_files WHERE run_id = $1', [
      r.runId,
    ]);
    expect(rec.rows).toEqual([{ sha256: sha256(text), status: 'loaded' }]);

    // The same bytes under another name: the ledger knows the size, the file is hashed first and skipped.
    const copy = path.join(home.dir, 'in/big-again.csv');
    await writeFile(copy, text);
    const again = await run(copy);
    expect(again.files[0]).toMatchObject({ status: 'skipped', rowsLoaded: 0, sha256: sha256(text) });
    expect(again.files[0]!.message).toMatch(/already loaded by run \d+/);
    expect(await count()).toBe(N);

    // Other content of the very same size is new: it loads.
    const other = text.replace(/grade/g, 'class');
    expect(other.length).toBe(text.length);
    const otherFile = path.join(home.dir, 'in/big-other.csv');
    await writeFile(otherFile, other);
    const third = await run(otherFile);
    expect(third.files[0]).toMatchObject({ status: 'loaded', rowsLoaded: N, sha256: sha256(other) });
    expect(await count()).toBe(2 * N);
    await rm(copy);
    await rm(otherFile);
  });

  it('undoes the load and skips the file when its content enters the ledger while it loads', async () => {
    const text = bigCsv('race', (i) => (i % 20_000 === 0 ? '-1' : String(i % 97)));
    const file = path.join(home.dir, 'in/race.csv');
    await writeFile(file, text);
    // Another loader's transaction holds the same content's ledger row, not yet committed: invisible
    // to the run's size check, so the run loads, then waits on the row at the end.
    const { other, small } = await holdLedgerRow(text);
    let r: Awaited<ReturnType<typeof run>>;
    try {
      const pending = run(file);
      await someoneWaitsOnALock();
      // It waits at the end, its rows written (uncommitted rows take pages): one read, not hash first.
      const size = await db.pool.query<{ n: string }>("SELECT pg_relation_size('big') AS n");
      expect(Number(size.rows[0]!.n)).toBeGreaterThan(1 << 20);
      await other.query('COMMIT');
      r = await pending;
      expect(r.files[0]).toMatchObject({
        status: 'skipped',
        rowsRead: 0,
        rowsLoaded: 0,
        rowsRejected: 0,
        rejectReport: null,
        rejects: [],
        sha256: sha256(text),
      });
      expect(r.files[0]!.message).toMatch(/already loaded by run \d+ .* \(as elsewhere\.csv\)/);
    } finally {
      other.release();
    }
    expect(await count()).toBe(0);
    // Its nine rejects (qty -1) were seen, but a skipped file records none, and leaves no report.
    const rec = await db.pool.query(
      `SELECT f.status, f.rows_loaded::int, f.reject_report, (SELECT count(*)::int FROM runner.rejects j WHERE j.run_file_id = f.id) AS rejects
       FROM runner.run_files f WHERE f.file = $1`,
      [file],
    );
    expect(rec.rows).toEqual([{ status: 'skipped', rows_loaded: 0, reject_report: null, rejects: 0 }]);
    expect(await ledger()).toHaveLength(2);
    const runDir = path.join(home.dir, 'var', 'runs', String(r.runId));
    await expect(readFile(path.join(runDir, 'rejects-1-race.csv'))).rejects.toThrow(/ENOENT/);
    await rm(small);
  });

  it('loads the file when the other loader rolls back instead', async () => {
    const text = bigCsv('rollback');
    const file = path.join(home.dir, 'in/rollback.csv');
    await writeFile(file, text);
    const { other, small } = await holdLedgerRow(text);
    try {
      const pending = run(file);
      await someoneWaitsOnALock();
      await other.query('ROLLBACK');
      const r = await pending;
      expect(r.files[0]).toMatchObject({ status: 'loaded', rowsLoaded: N, sha256: sha256(text) });
    } finally {
      other.release();
    }
    expect(await count()).toBe(N);
    expect((await ledger()).map((l) => l.file)).toEqual([small, file]);
    await rm(small);
  });

  it('names the content of a large file that failed, and leaves it out of the ledger', async () => {
    // Row 100,000 breaks the column (int) in PostgreSQL only: COPY fails late in the file.
    const text = bigCsv('fail', (i) => (i === 100_000 ? '99999999999' : String(i % 97)));
    const file = path.join(home.dir, 'in/fail.csv');
    await writeFile(file, text);
    const r = await run(file);
    expect(r.files[0]).toMatchObject({ status: 'failed', rowsLoaded: 0, sha256: sha256(text) });
    expect(r.files[0]!.message).toMatch(/out of range for type integer/);
    const rec = await db.pool.query('SELECT sha256, status FROM runner.run_files WHERE run_id = $1', [
      r.runId,
    ]);
    expect(rec.rows).toEqual([{ sha256: sha256(text), status: 'failed' }]);
    expect(await ledger()).toEqual([]);
    expect(await count()).toBe(0);
  });

  it('with --force, loads known content again and takes its ledger row over', async () => {
    const text = bigCsv('forced');
    const file = path.join(home.dir, 'in/forced.csv');
    await writeFile(file, text);
    const first = await run(file);
    expect(first.files[0]!.status).toBe('loaded');
    const forced = await run(file, { force: true });
    expect(forced.files[0]).toMatchObject({ status: 'loaded', rowsLoaded: N, sha256: sha256(text) });
    expect(await count()).toBe(2 * N);
    expect(await ledger()).toEqual([
      { sha256: sha256(text), file, rows_loaded: String(N), run_id: String(forced.runId) },
    ]);
    expect(sha256(await readFile(file))).toBe(sha256(text));
  });
});
