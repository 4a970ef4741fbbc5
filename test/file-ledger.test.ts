import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import { beginFile, recordRunFile, withLiterals, type RunFileRecord } from '../src/runs/store/files.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/**
 * The file's transaction in fewer round trips (src/runs/store/files.ts): BEGIN with the ledger
 * row, the record with COMMIT, each one simple-protocol message with its values written in as
 * literals. These hold the literals to what the parameters did, and the ledger to its promises:
 * a content enters once, a duplicate is found with the run that loaded it, and a record that
 * fails commits nothing. A pipeline sends the ledger row ahead of its COPY (or of replace's DELETE,
 * upsert's stage): content loaded before is skipped whatever the load met first.
 */

let db: TestDatabase;
let runId: number;
let home: TestHome;

const PIPELINE = (sink: string, extra = ''): string => `
source: { kind: file, path: 'in/*.csv' }
format: { kind: csv }
validate:
  fields:
    code: { type: string, required: true, max_length: 4 }
    qty: { type: int, required: true }
sink: { kind: postgres, table: public.things, ${sink} }
${extra}
`;

async function runItems(sink: string, extra = '', opts: Parameters<typeof runPipeline>[2] = {}) {
  await writeFile(path.join(home.dir, 'pipelines/things.yaml'), PIPELINE(sink, extra));
  return runPipeline(testApp(db, home.dir), await loadPipeline(home.dir, 'things'), opts);
}

const things = async (): Promise<unknown[]> =>
  (await db.pool.query('SELECT code, qty FROM public.things ORDER BY code')).rows;

/** Values that a careless literal would break: quotes, backslashes, a `$1`, line breaks, non-ASCII. */
const AWKWARD = [
  "O'Brien",
  'C:\\data\\in.csv',
  "\\' OR 1=1 --",
  'costs $1 and $2',
  'line\nbreak\r\nand\ttab',
  'Größe 😀 €',
  '',
  "''",
  '{"a","b"}',
  'NULL',
];

async function newRun(): Promise<number> {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO runner.runs (kind, name, status, requested_by, host) VALUES ('pipeline', 'p', 'running', 't', 'h') RETURNING id`,
  );
  return Number(rows[0]!.id);
}

const fileRecord = (over: Partial<RunFileRecord> = {}): RunFileRecord => ({
  runId,
  pipeline: 'p',
  file: 'in/a.csv',
  sha256: 'a'.repeat(64),
  size: 10,
  status: 'loaded',
  rowsRead: 3,
  rowsLoaded: 2,
  rowsRejected: 1,
  rejectReport: null,
  message: null,
  ...over,
});

async function withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await db.pool.connect();
  try {
    return await fn(c);
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    c.release();
  }
}

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE public.things (code text PRIMARY KEY, qty int NOT NULL)');
  await home.write({ 'pipelines/.keep': '', 'in/.keep': '' });
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE public.things, runner.ingested_files, runner.runs CASCADE');
  runId = await newRun();
});

describe('withLiterals', () => {
  it('means what the same statement with parameters means', async () => {
    const sql = `SELECT $1::text AS s, $2::bigint AS n, $3::text[] AS a, $4::bigint[] AS b, $5::text AS z,
      $6 = 'loaded' AS eq, $7::numeric AS f`;
    for (const s of AWKWARD) {
      const params = [s, 12345678901, [...AWKWARD, null], [1, null, 3], null, s, 1.5];
      const byParams = (await db.pool.query(sql, params)).rows[0];
      const byLiterals = (await db.pool.query(withLiterals(sql, params))).rows[0];
      expect(byLiterals).toEqual(byParams);
      expect(byLiterals.s).toBe(s);
      expect(byLiterals.a).toEqual([...AWKWARD, null]);
    }
  });

  it('refuses a value it cannot write as text', () => {
    expect(() => withLiterals('SELECT $1', [Buffer.from('x')])).toThrow(/no literal/);
  });
});

describe('beginFile', () => {
  const entry = (sha = 'b'.repeat(64)) => ({ pipeline: 'p', sha256: sha, file: 'in/b.csv', size: 5, runId });

  it('enters new content in an open transaction, which a ROLLBACK undoes', async () => {
    await withClient(async (c) => {
      expect(await beginFile(c, entry(), false)).toEqual({ entered: true });
      const { rows } = await c.query('SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS open');
      expect(rows[0].open).toBe(true);
      await c.query('ROLLBACK');
    });
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM runner.ingested_files');
    expect(rows[0].n).toBe(0);
  });

  it('finds content loaded before, with the run, the time and the name it loaded under', async () => {
    await withClient(async (c) => {
      expect((await beginFile(c, entry(), false)).entered).toBe(true);
      await c.query('COMMIT');
    });
    const first = runId;
    runId = await newRun();
    await withClient(async (c) => {
      const again = await beginFile(c, { ...entry(), file: 'in/copy.csv' }, false);
      expect(again.entered).toBe(false);
      if (again.entered) return;
      expect(again.previous).toMatchObject({ run_id: String(first), file: 'in/b.csv' });
      expect(again.previous!.loaded_at).toBeInstanceOf(Date);
    });
    // With force the entry is this run's.
    await withClient(async (c) => {
      expect(await beginFile(c, { ...entry(), file: 'in/copy.csv' }, true)).toEqual({ entered: true });
      await c.query('COMMIT');
    });
    const { rows } = await db.pool.query('SELECT run_id::int, file FROM runner.ingested_files');
    expect(rows).toEqual([{ run_id: runId, file: 'in/copy.csv' }]);
  });

  it('waits for a concurrent transaction holding the same content: a duplicate if it commits, ours if it rolls back', async () => {
    for (const outcome of ['COMMIT', 'ROLLBACK'] as const) {
      await db.pool.query('TRUNCATE runner.ingested_files');
      const a = await db.pool.connect();
      const b = await db.pool.connect();
      try {
        expect((await beginFile(a, entry(), false)).entered).toBe(true);
        let settled = false;
        const second = beginFile(b, entry(), false).finally(() => {
          settled = true;
        });
        await new Promise((r) => setTimeout(r, 200));
        expect(settled).toBe(false);
        await a.query(outcome);
        expect((await second).entered).toBe(outcome === 'ROLLBACK');
      } finally {
        await b.query('ROLLBACK').catch(() => undefined);
        a.release();
        b.release();
      }
    }
  });
});

describe('recordRunFile with commit', () => {
  it('commits the transaction with the record, its rejects and the counters', async () => {
    const rejects = AWKWARD.map((v, i) => ({
      file: 'in/a.csv',
      line: i + 2,
      field: 'f',
      value: v,
      reason: `r ${v}`,
    }));
    await withClient(async (c) => {
      expect(
        (
          await beginFile(
            c,
            { pipeline: 'p', sha256: 'a'.repeat(64), file: 'in/a.csv', size: 10, runId },
            false,
          )
        ).entered,
      ).toBe(true);
      await recordRunFile(c, fileRecord({ message: AWKWARD.join('|') }), rejects, {
        countInRun: true,
        ledger: true,
        commit: true,
      });
      // Committed: nothing is left for the ROLLBACK to undo.
      const { rows } = await c.query('SELECT pg_current_xact_id_if_assigned() AS x');
      expect(rows[0].x).toBeNull();
    });
    const seen = await db.pool.query(
      `SELECT (SELECT message FROM runner.run_files) AS message,
              (SELECT array_agg(value ORDER BY line) FROM runner.rejects) AS values,
              (SELECT rows_loaded::int FROM runner.ingested_files) AS ledger,
              (SELECT files_loaded FROM runner.runs WHERE id = $1) AS files`,
      [runId],
    );
    expect(seen.rows[0]).toEqual({ message: AWKWARD.join('|'), values: AWKWARD, ledger: 2, files: 1 });
  });

  it('commits nothing when the record fails: the transaction is left for the caller to roll back', async () => {
    await withClient(async (c) => {
      expect(
        (
          await beginFile(
            c,
            { pipeline: 'p', sha256: 'c'.repeat(64), file: 'in/c.csv', size: 1, runId },
            false,
          )
        ).entered,
      ).toBe(true);
      // No such run: the record breaks its foreign key.
      await expect(
        recordRunFile(c, fileRecord({ runId: runId + 1000 }), [], {
          countInRun: true,
          ledger: true,
          commit: true,
        }),
      ).rejects.toThrow(/foreign key/);
      await c.query('ROLLBACK');
    });
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM runner.ingested_files');
    expect(rows[0].n).toBe(0);
  });
});

describe('a pipeline run and the ledger row sent ahead of its load', () => {
  const file = (name: string): string => path.join(home.dir, 'in', name);

  for (const sink of ['mode: append', 'mode: replace', 'mode: upsert, key: [code]']) {
    it(`skips content loaded before and leaves the table as it was (${sink})`, async () => {
      await writeFile(file('a.csv'), 'code,qty\nA,1\nB,2\n');
      expect((await runItems(sink, '', { files: [file('a.csv')] })).files[0]).toMatchObject({
        status: 'loaded',
        rowsLoaded: 2,
      });
      await db.pool.query(`INSERT INTO public.things VALUES ('Z', 9)`);
      // The same content under another name.
      await writeFile(file('a-again.csv'), 'code,qty\nA,1\nB,2\n');
      const again = await runItems(sink, '', { files: [file('a-again.csv')] });
      expect(again.files[0]).toMatchObject({ status: 'skipped', rowsRead: 0, rowsLoaded: 0 });
      expect(again.files[0]!.message).toMatch(/already loaded by run \d+ .*a\.csv.*use --force/);
      // replace did not empty the table, upsert did not touch it.
      expect(await things()).toEqual([
        { code: 'A', qty: 1 },
        { code: 'B', qty: 2 },
        { code: 'Z', qty: 9 },
      ]);
      const counts = await db.pool.query(
        "SELECT files_loaded, files_skipped FROM runner.runs WHERE name = 'things' ORDER BY id",
      );
      expect(counts.rows).toEqual([
        { files_loaded: 1, files_skipped: 0 },
        { files_loaded: 0, files_skipped: 1 },
      ]);
    });
  }

  it('skips content loaded before even when its rows now break the reject policy, recording no rejects', async () => {
    const content = 'code,qty\nA,1\nTOOLONG,2\nB,x\n';
    await writeFile(file('p.csv'), content);
    expect((await runItems('mode: append', '', { files: [file('p.csv')] })).files[0]!.status).toBe('loaded');
    await writeFile(file('p-again.csv'), content);
    const again = await runItems('mode: append', 'rejects: { max_rejects: 0 }', {
      files: [file('p-again.csv')],
    });
    expect(again.files[0]).toMatchObject({ status: 'skipped', rowsRejected: 0, rejectReport: null });
    const rejects = await db.pool.query('SELECT count(*)::int AS n FROM runner.rejects WHERE run_id = $1', [
      again.runId,
    ]);
    expect(rejects.rows[0].n).toBe(0);
    const reports = await readdir(path.join(home.dir, 'var/runs', String(again.runId))).catch(() => []);
    expect(reports).toEqual([]);
    // A file that fails the policy and was not loaded before still fails.
    await writeFile(file('p-new.csv'), content.replace('A,1', 'C,3'));
    const fresh = await runItems('mode: append', 'rejects: { max_rejects: 0 }', {
      files: [file('p-new.csv')],
    });
    expect(fresh.files[0]).toMatchObject({ status: 'failed', policyExceeded: true });
  });

  it('enters a file without records in the ledger, and skips it the second time', async () => {
    await writeFile(file('empty.csv'), 'code,qty\n');
    expect((await runItems('mode: append', '', { files: [file('empty.csv')] })).files[0]).toMatchObject({
      status: 'loaded',
      rowsLoaded: 0,
    });
    expect((await runItems('mode: append', '', { files: [file('empty.csv')] })).files[0]!.status).toBe(
      'skipped',
    );
    expect(
      (await runItems('mode: append', '', { files: [file('empty.csv')], force: true })).files[0]!.status,
    ).toBe('loaded');
  });

  it('loads the same new content once when two runs meet it at the same time', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => `K${i},${i}`).join('\n');
    await writeFile(file('both.csv'), `code,qty\n${rows}\n`);
    await writeFile(
      path.join(home.dir, 'pipelines/things.yaml'),
      PIPELINE('mode: append').replace('max_length: 4', 'max_length: 6'),
    );
    const def = await loadPipeline(home.dir, 'things');
    const [a, b] = await Promise.all([
      runPipeline(testApp(db, home.dir), def, { files: [file('both.csv')] }),
      runPipeline(testApp(db, home.dir), def, { files: [file('both.csv')] }),
    ]);
    expect([a.files[0]!.status, b.files[0]!.status].sort()).toEqual(['loaded', 'skipped']);
    const n = await db.pool.query(
      'SELECT count(*)::int AS n, count(DISTINCT code)::int AS d FROM public.things',
    );
    expect(n.rows[0]).toEqual({ n: 5000, d: 5000 });
  });
});
