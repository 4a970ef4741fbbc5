import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { test, type TestHome } from './helpers/fixtures.js';
import { appendAudit, GENESIS, hashOf, verifyAudit, type AuditRow } from '../src/audit/trail.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { erp as runErp, killChildren, type Result } from './helpers/runner.js';

/**
 * The audit trail on the real PostgreSQL: what erp appends, that PostgreSQL refuses changes, and
 * that `erp audit verify` names a row edited, deleted or swapped behind its back (as a superuser
 * disabling the trigger would), through the built CLI.
 */

let db: TestDatabase;
let home: TestHome;
const dbs: TestDatabase[] = [];

const erp = (args: string[], env: Record<string, string> = {}, url = db.url): Promise<Result> =>
  runErp(args, { DATABASE_URL: url, ERP_HOME: home.dir, ERP_USER: 'alice', ...env });

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE public.items (sku text PRIMARY KEY, price numeric(10,2))');
  await home.write({
    'pipelines/items.yaml': `
source: { kind: file, path: 'in/items.csv' }
format: { kind: csv }
validate:
  fields:
    sku: { type: string, required: true }
    price: { type: decimal, precision: 10, scale: 2 }
transform: { mapping: items }
sink: { kind: postgres, table: public.items, mode: upsert, key: [sku] }
`,
    'mappings/items.yaml': 'columns:\n  sku: { trim: true }\n  price: {}\n',
    'jobs/close.yaml': `
params:
  period: { type: period }
steps:
  - sql: jobs/close.sql
  - pipeline: items
`,
    'sql/jobs/close.sql': "SELECT :'period' AS period;\n",
    'in/items.csv': 'sku,price\nA,1.00\nB,2.50\n',
  });
});
afterAll(async () => {
  await killChildren();
  for (const d of dbs) await d.drop();
});

async function rows(pool = db.pool): Promise<AuditRow[]> {
  return (
    await pool.query<AuditRow>(
      `SELECT seq::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, actor, host, action,
         subject, detail::text AS detail, prev_hash, hash FROM audit.events ORDER BY seq`,
    )
  ).rows;
}

/** A database of its own holding a chain of `n` events, for tampering with. */
async function chainOf(n: number): Promise<TestDatabase> {
  const d = await createTestDatabase('audit_tamper');
  dbs.push(d);
  for (let i = 1; i <= n; i++) {
    await appendAudit(d.pool, {
      action: 'test.event',
      subject: `thing:${i}`,
      detail: { i, note: 'é "q"\n' },
    });
  }
  return d;
}

/** Runs `sql` with the append-only triggers off, as a superuser tampering would. */
async function tamper(d: TestDatabase, sql: string): Promise<void> {
  const c = await d.pool.connect();
  try {
    await c.query(`BEGIN; SET LOCAL session_replication_role = replica; ${sql}; COMMIT`);
  } finally {
    c.release();
  }
}

// Each command is a process of the built CLI: on a busy machine each start takes seconds.
describe('audit trail', { timeout: 300_000 }, () => {
  it('records runs requested, a --force reload, a cancel and the definitions each run used', async () => {
    expect((await erp(['run', 'close', '--period', '2026-11', '--inline'])).code).toBe(0);
    const forced = await erp(['run', 'items', '--inline', '--force'], { ERP_USER: 'bob' });
    expect(forced.code).toBe(0);
    const detached = await erp(['run', 'items', '--detach', '--force'], {
      ERP_QUEUE_PREFIX: `test-audit-${process.pid}`,
    });
    const queuedId = detached.stdout.trim();
    expect(queuedId).toMatch(/^\d+$/);
    expect((await erp(['cancel', queuedId], { ERP_USER: 'carol' })).code).toBe(0);

    const trail = await rows();
    expect(trail.map((r) => [r.actor, r.action, r.subject])).toEqual([
      ['alice', 'run.requested', 'run:1'],
      ['bob', 'run.requested', 'run:2'],
      ['bob', 'file.force_reload', 'run:2'],
      ['alice', 'run.requested', `run:${queuedId}`],
      ['carol', 'run.cancel_requested', `run:${queuedId}`],
    ]);
    expect(JSON.parse(trail[1]!.detail)).toMatchObject({ name: 'items', options: { force: true } });
    expect(JSON.parse(trail[2]!.detail)).toMatchObject({
      pipeline: 'items',
      previous_run: 1,
      file: 'in/items.csv',
    });

    // Each definition's SHA-256, as the file is now, in the run record and in `erp runs show`.
    const sha = async (rel: string): Promise<string> =>
      createHash('sha256')
        .update(await readFile(path.join(home.dir, rel)))
        .digest('hex');
    const show = await erp(['runs', 'show', '1']);
    expect(show.code).toBe(0);
    for (const rel of [
      'jobs/close.yaml',
      'sql/jobs/close.sql',
      'pipelines/items.yaml',
      'mappings/items.yaml',
    ]) {
      expect(show.stdout).toContain(`${rel}  ${await sha(rel)}`);
    }
    expect(JSON.parse(trail[0]!.detail).definitions).toHaveLength(4);

    const verify = await erp(['audit', 'verify']);
    expect(verify.stderr).toBe('');
    expect(verify.stdout).toBe(`audit trail intact: 5 rows; head seq 5 hash ${trail[4]!.hash}\n`);
    expect(verify.code).toBe(0);
  });

  it('records a failed run resumed, by whoever resumed it', async () => {
    await writeFile(path.join(home.dir, 'sql/jobs/flaky.sql'), 'SELECT 1 / 0 AS boom;\n');
    await writeFile(path.join(home.dir, 'jobs/flaky.yaml'), 'steps:\n  - sql: jobs/flaky.sql\n');
    const failed = await erp(['run', 'flaky', '--inline']);
    expect(failed.code).toBe(1);
    const id = (await db.pool.query<{ id: string }>("SELECT id::text FROM runner.runs WHERE name = 'flaky'"))
      .rows[0]!.id;
    await writeFile(path.join(home.dir, 'sql/jobs/flaky.sql'), 'SELECT 1 AS fine;\n');
    const resumed = await erp(['run', '--resume', id, '--inline'], { ERP_USER: 'dave' });
    expect(resumed.code, resumed.stderr).toBe(0);
    const trail = await db.pool.query<{ actor: string; action: string; detail: { from_step: number } }>(
      `SELECT actor, action, detail FROM audit.events WHERE subject = $1 ORDER BY seq`,
      [`run:${id}`],
    );
    expect(trail.rows).toEqual([
      { actor: 'alice', action: 'run.requested', detail: expect.objectContaining({ name: 'flaky' }) },
      { actor: 'dave', action: 'run.resumed', detail: { previous_status: 'failed', from_step: 1 } },
    ]);
    expect((await erp(['audit', 'verify'])).code).toBe(0);
  });

  it('chains console actions and user and role changes, never a password hash', async () => {
    const d = await chainOf(0);
    await d.pool.query(
      `INSERT INTO console.users (name, role, password_hash) VALUES ('eve', 'viewer', 'scrypt$secret-hash')`,
    );
    await d.pool.query(`BEGIN; SET LOCAL erp.actor = 'admin1';
      UPDATE console.users SET role = 'admin', password_hash = 'scrypt$other' WHERE name = 'eve'; COMMIT`);
    await d.pool.query(
      `INSERT INTO console.actions (actor, address, action, detail) VALUES ('eve', '10.0.0.9', 'login', '{}')`,
    );
    await d.pool.query(`DELETE FROM console.users WHERE name = 'eve'`);
    const trail = await rows(d.pool);
    expect(trail.map((r) => [r.actor, r.action, r.subject, r.detail])).toEqual([
      ['root', 'user.created', 'user:eve', '{"role": "viewer"}'],
      [
        'admin1',
        'user.changed',
        'user:eve',
        '{"role": {"to": "admin", "from": "viewer"}, "password_changed": true}',
      ],
      ['eve', 'console.login', 'console', '{}'],
      ['root', 'user.deleted', 'user:eve', '{"role": "admin"}'],
    ]);
    expect(trail.map((r) => r.detail).join()).not.toContain('scrypt');
    expect((await verifyAudit(d.pool)).problems).toEqual([]);
  });

  it('hashes the same payload in PostgreSQL and in Node, chained from 64 zeros', async () => {
    const trail = await rows();
    expect(trail[0]!.prev_hash).toBe(GENESIS);
    for (let i = 0; i < trail.length; i++) {
      expect(hashOf(trail[i]!)).toBe(trail[i]!.hash);
      if (i > 0) expect(trail[i]!.prev_hash).toBe(trail[i - 1]!.hash);
    }
  });

  it('is refused UPDATE, DELETE and TRUNCATE, even for its owner', async () => {
    const d = await chainOf(1);
    for (const sql of [
      "UPDATE audit.events SET actor = 'mallory' WHERE seq = 1",
      'DELETE FROM audit.events WHERE seq = 1',
      'TRUNCATE audit.events',
    ]) {
      await expect(d.pool.query(sql)).rejects.toThrow(/audit.events is append-only/);
    }
    const grants = await db.pool.query<{ p: string }>(
      `SELECT privilege_type AS p FROM information_schema.role_table_grants
       WHERE table_schema = 'audit' AND table_name = 'events' AND grantee = 'erp_app' ORDER BY 1`,
    );
    expect(grants.rows.map((r) => r.p)).toEqual(['INSERT', 'SELECT']);
  });

  it('keeps one total chain under concurrent appends', async () => {
    const d = await chainOf(0);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        appendAudit(d.pool, { action: 'test.concurrent', subject: `n:${i}` }),
      ),
    );
    // Pages of 7 rows: the walk carries the chain across pages.
    const r = await verifyAudit(d.pool, 50, 7);
    expect(r).toMatchObject({ rows: 40, problems: [] });
    expect(r.head?.seq).toBe('40');
  });

  it('names a row edited in SQL', async () => {
    const d = await chainOf(6);
    expect((await erp(['audit', 'verify'], {}, d.url)).code).toBe(0);
    await tamper(d, "UPDATE audit.events SET actor = 'mallory' WHERE seq = 3");
    const r = await erp(['audit', 'verify'], {}, d.url);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'erp audit: seq 3 (test.event thing:3): its content does not match its hash — the row was edited\n',
    );
    expect(r.stderr).toMatch(/the trail is NOT intact \(6 rows checked; head seq 6/);
  });

  it('names a row edited with its hash recomputed: the next row no longer links to it', async () => {
    const d = await chainOf(5);
    await tamper(
      d,
      `UPDATE audit.events SET detail = '{"i": 2}', hash = encode(sha256(convert_to(audit.payload(seq, at, actor, host,
         action, subject, '{"i": 2}'::jsonb, prev_hash), 'UTF8')), 'hex') WHERE seq = 2`,
    );
    const r = await erp(['audit', 'verify'], {}, d.url);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'erp audit: seq 3 (test.event thing:3): its previous hash is not the hash of seq 2',
    );
  });

  it('names a row deleted in SQL', async () => {
    const d = await chainOf(6);
    await tamper(d, 'DELETE FROM audit.events WHERE seq = 4');
    const r = await erp(['audit', 'verify'], {}, d.url);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('erp audit: seq 4 missing: deleted (the chain goes from seq 3 to 5)\n');
    expect(r.stderr).toContain('seq 5 (test.event thing:5): its previous hash is not the hash of seq 3');
  });

  it('names rows swapped in SQL', async () => {
    const d = await chainOf(6);
    await tamper(d, 'UPDATE audit.events SET seq = -seq WHERE seq IN (2, 3)');
    await tamper(d, 'UPDATE audit.events SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE seq < 0');
    const r = await erp(['audit', 'verify'], {}, d.url);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'erp audit: seq 2 (test.event thing:3): the row written as seq 3 is here — rows were reordered\n',
    );
    expect(r.stderr).toContain(
      'erp audit: seq 3 (test.event thing:2): the row written as seq 2 is here — rows were reordered\n',
    );
  });

  it('exports a date range as CSV or JSON lines that an auditor can re-check', async () => {
    const d = await chainOf(3);
    await tamper(d, "UPDATE audit.events SET at = '2026-10-31 23:59:59.5+00' WHERE seq = 1");
    await tamper(d, "UPDATE audit.events SET at = '2026-11-30 23:59:59+00' WHERE seq = 2");
    await tamper(d, "UPDATE audit.events SET at = '2026-12-01 00:00:00+00' WHERE seq = 3");
    const jsonl = await erp(
      ['audit', 'export', '--from', '2026-11-01', '--to', '2026-11-30', '--format', 'jsonl'],
      {},
      d.url,
    );
    expect(jsonl.code).toBe(0);
    const lines = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditRow);
    expect(lines.map((l) => l.seq)).toEqual(['2']);
    expect(lines[0]).toMatchObject({
      at: '2026-11-30T23:59:59.000000Z',
      action: 'test.event',
      subject: 'thing:2',
    });
    // The export carries everything the hash covers: recomputing it shows this row was changed.
    expect(hashOf(lines[0]!)).not.toBe(lines[0]!.hash);

    const e = await chainOf(2);
    const out = path.join(home.dir, 'audit.csv');
    const csv = await erp(
      ['audit', 'export', '--from', '2000-01-01', '--to', '2999-12-31', '--out', out],
      {},
      e.url,
    );
    expect(csv.code).toBe(0);
    expect(csv.stderr).toBe(`wrote 2 audit rows to ${out}\n`);
    const text = await readFile(out, 'utf8');
    expect(text.split('\n')[0]).toBe('seq,at,actor,host,action,subject,detail,prev_hash,hash');
    expect(text).toContain(`,${GENESIS},`);
    const again = await erp(['audit', 'export', '--out', out], {}, e.url);
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`erp: --out ${out}: cannot create it (EEXIST)\n`);
    const bad = await erp(['audit', 'export', '--from', '2026-13-01'], {}, e.url);
    expect(bad.stderr).toBe(
      "erp: --from '2026-13-01' is not a date: expected YYYY-MM-DD or an ISO 8601 timestamp\n",
    );
  });
});
