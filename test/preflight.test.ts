import { afterAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { pino } from 'pino';
import { resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import { fireTick, loadSchedules } from '../src/runner/scheduler.js';
import {
  erp as runErp,
  killChildren,
  REDIS_URL,
  removeKeys,
  startWorkerProcess,
  testPrefix,
  testQueue,
  waitFor,
  type Result,
} from './helpers/runner.js';

/**
 * Preflight: a broken job is refused before its run is recorded — exit 2, every problem listed
 * with its file, line and key — and `erp list` and `erp validate` find the same problems.
 */

let db: TestDatabase;
let home: TestHome;
const erp = (args: string[], env: Record<string, string> = {}): Promise<Result> =>
  runErp(args, { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_PARTNER_PORT: '', ...env });

const CSV = 'code,name,born\nA,Ann,01/02/2000\n';

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  // people.code is unique; people_plain has no unique index at all.
  await db.pool.query(`CREATE TABLE people (code text PRIMARY KEY, name text, born date);
    CREATE TABLE people_plain (code text, name text, born date);`);
  // A sql/ of the test's own: the job's SQL files never land in the repository's sql/.
  await home.write({
    'in/people.csv': CSV,
    'var/exports/.keep': '',
    // 1. a mapping file that does not exist, and a date format in lower case.
    'pipelines/no-mapping.yaml': `
source: { kind: file, path: in/people.csv }
format: { kind: csv }
validate:
  fields:
    born: { type: date, format: mm/dd/yyyy }
transform: { mapping: nowhere }
sink: { kind: postgres, table: public.people, mode: append }
`,
    // 2. a mapping key typo (form: for from:).
    'pipelines/typo.yaml': `
source: { kind: file, path: in/people.csv }
format: { kind: csv }
transform: { mapping: typo }
sink: { kind: postgres, table: public.people, mode: append }
`,
    'mappings/typo.yaml': `
columns:
  code: { form: code }
  name: {}
`,
    // 3. an upsert whose key has no unique index.
    'pipelines/no-index.yaml': `
source: { kind: file, path: in/people.csv }
format: { kind: csv }
validate:
  fields:
    born: { type: date, format: MM/DD/YYYY }
sink: { kind: postgres, table: public.people_plain, mode: upsert, key: [code] }
`,
    // 4. a partner whose port variable is not set.
    'partners/VENDOR.yaml': `
name: VENDOR
sftp:
  host: 127.0.0.1
  port_env: ERP_PARTNER_PORT
  user: erp
  private_key_file: /nonexistent/key
  host_key_sha256: ['SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']
  inbox: VENDOR/inbox
  outbox: VENDOR/outbox
  archive: VENDOR/archive
  error: VENDOR/error
`,
    'pipelines/from-vendor.yaml': `
source: { kind: sftp, partner: VENDOR, glob: 'people-*.csv' }
format: { kind: csv }
sink: { kind: postgres, table: public.people, mode: upsert, key: [code] }
`,
    // 5. a SQL step with a parameter the job does not have.
    'sql/jobs/touch.sql': `SELECT :'period' AS period, :'company' AS company;`,
    // An export whose file is already there.
    'sql/jobs/people.sql': `SELECT code, name FROM people WHERE name <> :'who';`,
    'pipelines/people-export.yaml': `
source:
  kind: postgres
  query: sql/jobs/people.sql
  params:
    who: { type: string, default: nobody }
format: { kind: csv }
sink: { kind: file, dir: var/exports, name: 'people.{ext}', overwrite: false }
`,
    'var/exports/people.csv': 'stale\n',
    'jobs/broken.yaml': `
params:
  period: { type: period, default: current_month }
schedules:
  - { cron: '0 2 * * *', timezone: UTC }
steps:
  - pipeline: no-mapping
  - pipeline: typo
  - pipeline: no-index
  - pipeline: from-vendor
  - sql: jobs/touch.sql
  - pipeline: people-export
    params: { who: Ann }
`,
    // An identifier that is not one.
    'pipelines/bad-ident.yaml': `
source: { kind: file, path: in/people.csv }
format: { kind: csv }
sink:
  kind: postgres
  table: public.people
  mode: upsert
  key: ['code; drop table people']
`,
    'pipelines/good.yaml': `
source: { kind: file, path: in/people.csv }
format: { kind: csv }
validate:
  fields:
    born: { type: date, format: MM/DD/YYYY }
sink: { kind: postgres, table: public.people, mode: upsert, key: [code] }
`,
  });
});
afterAll(killChildren);

async function runCount(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM runner.runs');
  return rows[0]!.n;
}

describe('preflight', () => {
  it('refuses a broken job with exit 2, listing every problem with file, line and key, and records nothing', async () => {
    const r = await erp(['run', 'broken', '--inline']);
    expect(r.code).toBe(2);
    const lines = r.stderr;
    expect(lines).toMatch(/^erp: broken: \d+ problems found before running; nothing was recorded/);
    expect(lines).toContain('mappings/nowhere.yaml: no such file');
    expect(lines).toMatch(
      /pipelines\/no-mapping\.yaml, line 6, validate\.fields\.born\.format: date format 'mm\/dd\/yyyy' needs/,
    );
    expect(lines).toMatch(/mappings\/typo\.yaml, line 3, columns\.code\.form: unknown key 'form'/);
    expect(lines).toMatch(
      /pipelines\/no-index\.yaml, line 7, sink\.key: an upsert on \(code\) needs a unique index or primary key of public\.people_plain/,
    );
    expect(lines).toMatch(
      /partners\/VENDOR\.yaml, sftp\.port_env: environment variable ERP_PARTNER_PORT is not set/,
    );
    expect(lines).toMatch(/sql\/jobs\/touch\.sql: uses :'company', which the job does not give/);
    expect(lines).toMatch(
      /pipelines\/people-export\.yaml, line 8, sink\.name: var\/exports\/people\.csv already exists and overwrite is off/,
    );
    expect(lines).not.toMatch(/at .*\.js:\d+/);
    expect(await runCount()).toBe(0);
    // A dry run and the queue path are refused the same way, before Redis is needed.
    const dry = await erp(['run', 'broken', '--dry-run']);
    expect(dry.code).toBe(2);
    expect(dry.stderr).toBe(lines);
    const queued = await erp(['run', 'broken'], { REDIS_URL: 'redis://127.0.0.1:1' });
    expect(queued.code).toBe(2);
    expect(await runCount()).toBe(0);
  });

  it('refuses an invalid identifier with exit 2, naming file, line and key', async () => {
    const r = await erp(['run', 'bad-ident', '--inline']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "pipelines/bad-ident.yaml, line 8, sink.key.0: 'code; drop table people' is not a valid SQL identifier",
    );
    expect(await runCount()).toBe(0);
  });

  it('erp list shows the broken definitions as INVALID with every problem, and the good one as fine', async () => {
    const r = await erp(['list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/broken\s+job\s+INVALID: /);
    expect(r.stdout).toMatch(/no-index\s+pipeline\s+INVALID: pipelines\/no-index\.yaml, line 7, sink\.key/);
    expect(r.stdout).toMatch(
      /bad-ident\s+pipeline\s+INVALID: pipelines\/bad-ident\.yaml, line 8, sink\.key\.0/,
    );
    expect(r.stdout).toMatch(/typo\s+pipeline\s+INVALID: mappings\/typo\.yaml, line 3/);
    expect(r.stdout).toMatch(/\n\s*good\s+pipeline\s*\n/);
    // The export file present is a matter for a run, not for the definition.
    expect(r.stdout).toMatch(/\n\s*people-export\s+pipeline\s*\n/);
  });

  it('erp validate runs the same checks', async () => {
    const r = await erp(['validate', 'no-index']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('sink.key: an upsert on (code) needs a unique index');
    const good = await erp(['validate', 'good']);
    expect(good.code).toBe(0);
  });

  it('runs a pipeline that passes', async () => {
    const r = await erp(['run', 'good', '--inline']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/loaded — read 1, loaded 1, rejected 0/);
  });

  it('the worker checks a queued run again: it fails it with every problem, and runs no step', async () => {
    const prefix = testPrefix('preflight');
    const { queue, redis } = testQueue(prefix);
    try {
      // Queued past erp run's own preflight, as a run queued before its definitions broke would be.
      const runnable = await resolveRunnable(home.dir, 'broken');
      const params = resolveParams(runnable.job, {});
      const runId = (await createQueuedRun(db.pool, runnable, params))!;
      await enqueueRun(queue, runId, runnable, params);
      await startWorkerProcess({
        DATABASE_URL: db.url,
        ERP_HOME: home.dir,
        ERP_QUEUE_PREFIX: prefix,
        REDIS_URL,
        ERP_PARTNER_PORT: '',
      });
      const run = await waitFor(
        async () => {
          const { rows } = await db.pool.query<{ status: string; error: string; error_kind: string }>(
            'SELECT status, error, error_kind FROM runner.runs WHERE id = $1',
            [runId],
          );
          return rows[0]?.status === 'failed' ? rows[0] : null;
        },
        30_000,
        'the worker to fail the run',
      );
      expect(run.error_kind).toBe('user');
      expect(run.error).toMatch(/^broken: \d+ problems found before running/);
      expect(run.error).toContain('mappings/nowhere.yaml: no such file');
      expect(run.error).toMatch(/sql\/jobs\/touch\.sql: uses :'company', which the job does not give/);
      const steps = await db.pool.query('SELECT 1 FROM runner.run_steps WHERE run_id = $1', [runId]);
      expect(steps.rowCount).toBe(0);
    } finally {
      await killChildren();
      await queue.close();
      await removeKeys(redis, prefix);
      redis.disconnect();
    }
  });

  it('the scheduler skips a tick of a broken job, logging every problem, and records nothing', async () => {
    const prefix = testPrefix('preflight-tick');
    const { queue, redis } = testQueue(prefix);
    const logged: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
    try {
      const entry = (await loadSchedules(home.dir)).find((e) => e.job.name === 'broken')!;
      const before = await runCount();
      const id = await fireTick(
        { pool: db.pool, log, home: home.dir, queue },
        entry,
        new Date('2026-11-02T02:00:00Z'),
      );
      expect(id).toBeNull();
      expect(await runCount()).toBe(before);
      expect(await queue.count()).toBe(0);
      const messages = logged.map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatch(/^tick skipped: broken failed its preflight, nothing was recorded: /);
      expect(messages[0]).toContain('mappings/nowhere.yaml: no such file');
    } finally {
      await queue.close();
      await removeKeys(redis, prefix);
      redis.disconnect();
    }
  });
});
