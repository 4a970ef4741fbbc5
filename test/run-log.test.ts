import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { resolveRunnable } from '../src/jobs/definition.js';
import { executeRun } from '../src/jobs/execute.js';
import { createQueuedRun } from '../src/jobs/submit.js';
import { createLogger } from '../src/log.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/**
 * A run's story in the log: every line logged while a run executes — the run, each step, each
 * file of a pipeline step — carries the run's id and job, so a grep of the id finds all of it.
 */

let db: TestDatabase;
let home: TestHome;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE public.items (sku text NOT NULL, price numeric(10,2))');
  await home.write({
    'pipelines/items.yaml': `
source: { kind: file, path: 'in/*.csv' }
format: { kind: csv }
validate:
  fields:
    sku: { type: string, required: true }
    price: { type: decimal }
sink: { kind: postgres, table: public.items, mode: append }
`,
    'in/a.csv': 'sku,price\nA-1,1.00\n',
    'in/b.csv': 'sku,price\nB-1,2.00\n,3.00\n',
    'jobs/nightly-items.yaml': `
steps:
  - sql: t/clear.sql
  - pipeline: items
  - sql: t/fail.sql
`,
    'sql/t/clear.sql': 'DELETE FROM public.items;\n',
    'sql/t/fail.sql': 'SELECT 1 / 0;\n',
  });
});

describe('the log of a run', () => {
  it('names the run and the job on every line, the step on step lines and the file on file lines', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const app = { ...testApp(db, home.dir), log: createLogger('debug', false, sink) };
    const runnable = await resolveRunnable(home.dir, 'nightly-items');
    const runId = (await createQueuedRun(db.pool, runnable, {}, { requestedBy: 'run-log-test' }))!;
    const outcome = await executeRun(app, {
      runId,
      runnable,
      params: {},
      dryRun: false,
      signal: new AbortController().signal,
    });
    expect(outcome.status).toBe('failed');
    await new Promise((resolve) => setImmediate(resolve));

    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatchObject({ runId, job: 'nightly-items' });
    const files = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('file '));
    expect(files.map((l) => [path.basename(String(l.file)), l.step, l.status])).toEqual([
      ['a.csv', 'items', 'loaded'],
      ['b.csv', 'items', 'loaded'],
    ]);
    expect(lines.filter((l) => l.msg === 'step running').map((l) => l.step)).toEqual([
      't/clear.sql',
      'items',
      't/fail.sql',
    ]);
    // The failure is one line with the error under err, and names the step it happened in.
    const end = lines.find((l) => l.msg === 'run attempt ended');
    expect(end).toMatchObject({
      status: 'failed',
      step: 't/fail.sql',
      err: { message: expect.stringContaining('division by zero') },
    });
  });
});
