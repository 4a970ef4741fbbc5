import { copyFile, mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseYaml } from '../src/config/yaml.js';
import { retentionSchema } from '../src/compliance/retention.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { startSshd, type TestSshd } from './helpers/sshd.js';
import { erp as runErp, killChildren, type Result } from './helpers/runner.js';

/*
 * Retention on real runs: imports with rejects and reject reports, exports that wrote files,
 * partners' archived files on a real SFTP server, delivered interchanges. Everything is made
 * old, three legal holds (a run, a month, a partner) cover part of it, and `erp purge --dry-run`
 * then the shipped retention-purge job must remove exactly what is past its period and not held,
 * and record it in the audit trail.
 */
let db: TestDatabase;
let sshd: TestSshd;
let home: TestHome;
let env: Record<string, string>;
const DAY = 86_400_000;

const partner = (name: string): string => `
name: ${name}
description: test partner
sftp:
  host: 127.0.0.1
  port_env: ERP_SFTP_PORT
  user_env: ERP_SFTP_USER
  private_key_file_env: ERP_SFTP_KEY_FILE
  host_key_sha256_env: ERP_SFTP_HOST_KEY_SHA256
  base_dir_env: ERP_SFTP_ROOT
  inbox: ${name}/inbox
  outbox: ${name}/outbox
  archive: ${name}/archive
  error: ${name}/error
`;

const erp = (args: string[]): Promise<Result> => runErp(args, env);
const one = async <T>(sql: string, params: unknown[] = []): Promise<T> =>
  (await db.pool.query(sql, params)).rows[0] as T;
const count = async (sql: string, params: unknown[] = []): Promise<number> =>
  Number((await one<{ n: string }>(`SELECT count(*) AS n FROM ${sql}`, params)).n);

/** Run ids by role. */
const runs = { loadedOld: 0, loadedHeld: 0, exportOld: 0, exportHeldMonth: 0, exportRecent: 0 };
const archive = (p: string, f: string): string => path.join(sshd.root, p, 'archive', f);

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  sshd = await startSshd();
  await db.pool.query(`CREATE TABLE public.items (sku text, qty int)`);
  await home.write({
    'pipelines/imp.yaml': `
source: { kind: file, path: in/a.csv }
format: { kind: csv }
validate:
  fields:
    sku: { type: string, required: true }
    qty: { type: int, required: true }
sink: { kind: postgres, table: public.items }
rejects: { max_reject_rate: 0.9 }
`,
    'pipelines/exp.yaml': `
source:
  kind: postgres
  sql: SELECT sku, qty FROM public.items ORDER BY sku
  params: { period: { type: string } }
format: { kind: csv }
sink: { kind: file, dir: out, name: 'items-{period}.{ext}' }
`,
    'in/a.csv': 'sku,qty\nA,1\nB,x\nC,3\n',
    'in/b.csv': 'sku,qty\nD,4\nE,y\n',
    'partners/VENDOR.yaml': partner('VENDOR'),
    'partners/HELDCO.yaml': partner('HELDCO'),
    'retention.yaml': `
periods: { runs: 300d, rejects: 200d, reject_reports: 200d, exports: 200d, partner_archives: 300d, interchanges: 300d }
holds: []
`,
  });
  await mkdir(path.join(home.dir, 'out'));
  await mkdir(path.join(home.dir, 'jobs'));
  await copyFile('jobs/retention-purge.yaml', path.join(home.dir, 'jobs', 'retention-purge.yaml'));
  for (const p of ['VENDOR', 'HELDCO'])
    for (const d of ['inbox', 'outbox', 'archive', 'error'])
      await mkdir(path.join(sshd.root, p, d), { recursive: true });
  env = {
    DATABASE_URL: db.url,
    ERP_HOME: home.dir,
    ERP_SFTP_PORT: String(sshd.port),
    ERP_SFTP_USER: sshd.user,
    ERP_SFTP_KEY_FILE: sshd.privateKeyPath,
    ERP_SFTP_HOST_KEY_SHA256: sshd.hostKeyFingerprint,
    ERP_SFTP_ROOT: sshd.root,
  };
}, 120_000);
afterAll(async () => {
  await killChildren();
  await sshd?.stop();
});

async function runId(args: string[]): Promise<number> {
  const r = await erp([...args, '--inline']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return Number((await one<{ id: string }>(`SELECT max(id) AS id FROM runner.runs`)).id);
}

/** Moves a run (and its files' records) back to `at`. */
async function age(id: number, at: Date): Promise<void> {
  await db.pool.query(
    `UPDATE runner.runs SET created_at = $2, started_at = $2, finished_at = $2 WHERE id = $1`,
    [id, at],
  );
  await db.pool.query(`UPDATE runner.run_files SET finished_at = $2 WHERE run_id = $1`, [id, at]);
}

describe('retention', () => {
  it('sets up runs, reports, exports, archives and interchanges of various ages', async () => {
    const old = new Date(Date.now() - 500 * DAY);
    runs.loadedOld = await runId(['run', 'imp']);
    runs.loadedHeld = await runId(['run', 'imp', '--file', 'in/b.csv']);
    runs.exportOld = await runId(['run', 'exp', '--param', 'period=2025-01']);
    runs.exportHeldMonth = await runId(['run', 'exp', '--param', 'period=2024-03']);
    runs.exportRecent = await runId(['run', 'exp', '--param', 'period=2026-11']);
    for (const id of [runs.loadedOld, runs.loadedHeld, runs.exportOld]) await age(id, old);
    await age(runs.exportHeldMonth, new Date('2024-03-15T12:00:00Z'));
    expect(await count(`runner.rejects WHERE run_id IN ($1, $2)`, [runs.loadedOld, runs.loadedHeld])).toBe(2);
    const reports = (
      await db.pool.query<{ r: string }>(
        `SELECT reject_report AS r FROM runner.run_files WHERE reject_report IS NOT NULL`,
      )
    ).rows.map((x) => x.r);
    expect(reports).toHaveLength(2);
    for (const r of reports) expect(existsSync(r)).toBe(true);
    expect((await readdir(path.join(home.dir, 'out'))).sort()).toEqual([
      'items-2024-03.csv',
      'items-2025-01.csv',
      'items-2026-11.csv',
    ]);

    for (const [p, f, at] of [
      ['VENDOR', 'old.x12', old],
      ['VENDOR', 'march.x12', new Date('2024-03-10T00:00:00Z')],
      ['VENDOR', 'new.x12', new Date()],
      ['HELDCO', 'old.x12', old],
    ] as const) {
      await writeFile(archive(p, f), 'ISA*00*...~');
      await utimes(archive(p, f), at, at);
    }
    for (const [p, isa13, delivered] of [
      ['VENDOR', 1, old],
      ['HELDCO', 2, old],
      ['VENDOR', 3, null],
    ] as const) {
      const { id } = await one<{ id: string }>(
        `INSERT INTO edi.interchanges (direction, partner, isa13, status, file_name, created_at)
         VALUES ('out', $1, $2, 'sent', $3, $4) RETURNING id`,
        [p, isa13, `${p}-${isa13}.x12`, old],
      );
      await db.pool.query(
        `INSERT INTO edi.outbound_files (interchange_id, partner, file_name, content, delivered_at) VALUES ($1, $2, $3, 'ISA*…~', $4)`,
        [id, p, `${p}-${isa13}.x12`, delivered],
      );
    }
    // The holds: a run, a month, a partner.
    await writeFile(
      path.join(home.dir, 'retention.yaml'),
      `periods: { runs: 300d, rejects: 200d, reject_reports: 200d, exports: 200d, partner_archives: 300d, interchanges: 300d }
holds:
  - { run: ${runs.loadedHeld}, reason: 'dispute, case 17' }
  - { period: 2024-03, reason: 'tax audit of March 2024' }
  - { partner: HELDCO, reason: 'litigation hold' }
`,
    );
  });

  it('erp purge --dry-run lists what would go and what the holds keep, and removes nothing', async () => {
    const before = await snapshot();
    const r = await erp(['purge', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rejected rows \(runs\) older than .*: 1 would go, 1 kept by a legal hold/);
    expect(r.stdout).toContain(`run ${runs.loadedOld}: 1 rejected rows`);
    expect(r.stdout).toMatch(/reject reports older than .*: 1 would go, 1 kept by a legal hold/);
    expect(r.stdout).toMatch(
      /exported files older than .*: 1 would go, 1 kept by a legal hold\n {2}out\/items-2025-01\.csv/,
    );
    expect(r.stdout).toMatch(
      new RegExp(
        `run records older than .*: 1 would go, 1 kept by a legal hold\\n  run ${runs.exportOld} \\(exp,`,
      ),
    );
    expect(r.stdout).toMatch(
      /archived partner files older than .*: 1 would go, 2 kept by a legal hold\n {2}VENDOR .*VENDOR\/archive\/old\.x12/,
    );
    expect(r.stdout).toMatch(
      /raw interchanges older than .*: 1 would go, 1 kept by a legal hold\n {2}VENDOR VENDOR-1\.x12/,
    );
    expect(r.stdout).toContain('dry run: nothing was removed');
    expect(await snapshot()).toEqual(before);
  });

  it('the shipped retention-purge job removes exactly that, and records it in the audit trail', async () => {
    const r = await erp(['run', 'retention-purge', '--inline']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(
      'purged rejected rows (runs): 1 (1 held), reject reports: 1 (1 held), exported files: 1 (1 held), run records: 1 (1 held), archived partner files: 1 (2 held), raw interchanges: 1 (1 held)',
    );
    const s = await snapshot();
    expect(s.rejects).toEqual([runs.loadedHeld]);
    expect(s.reports).toEqual([true]); // the held run's report, still on disk
    expect(s.exports).toEqual(['items-2024-03.csv', 'items-2026-11.csv']);
    // Purged: the old export's run. Kept: the runs in the file ledger, the held month, the recent one.
    expect(s.runs).toEqual([
      runs.loadedOld,
      runs.loadedHeld,
      runs.exportHeldMonth,
      runs.exportRecent,
      (s.runs as number[]).at(-1),
    ]);
    expect(s.archives).toEqual(['HELDCO/old.x12', 'VENDOR/march.x12', 'VENDOR/new.x12']);
    expect(s.interchanges).toEqual(['HELDCO-2.x12', 'VENDOR-3.x12']);

    const audit = await one<{ actor: string; detail: Record<string, unknown> }>(
      `SELECT actor, detail FROM audit.events WHERE action = 'retention.purged'`,
    );
    expect(audit.detail.removed).toEqual({
      rejects: 1,
      reject_reports: 1,
      exports: 1,
      runs: 1,
      partner_archives: 1,
      interchanges: 1,
    });
    expect(audit.detail.runs).toEqual([String(runs.exportOld)]);
    const verify = await erp(['audit', 'verify']);
    expect(verify.code, verify.stderr).toBe(0);

    // Run again: nothing left to purge.
    const again = await erp(['purge', '--dry-run']);
    expect(again.stdout).not.toMatch(/: [1-9]\d* would go/);
    expect(again.stdout).toMatch(/run records older than .*: 0 would go, 1 kept by a legal hold/);
  });

  it('erp schema --out writes its JSON Schema beside the others', async () => {
    const out = path.join(home.dir, 'schemas');
    const r = await erp(['schema', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const schema = JSON.parse(await readFile(path.join(out, 'retention.schema.json'), 'utf8')) as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(schema.properties)).toEqual(['periods', 'holds']);
  });

  it('validates the policy like every definition: file, line, field, expectation', () => {
    expect(() => parseYaml('retention.yaml', 'periods: { runs: 3 months }\n', retentionSchema)).toThrow(
      /retention\.yaml.*line 1.*periods\.runs.*a period like 90d, 12w or 7y/s,
    );
    expect(() =>
      parseYaml('retention.yaml', 'periods: { runs: 30d, rejects: 1y }\n', retentionSchema),
    ).toThrow(/periods\.rejects.*no longer than runs/s);
    expect(() =>
      parseYaml('retention.yaml', 'periods: {}\nholds:\n  - { partner: ACME }\n', retentionSchema),
    ).toThrow(/line 3.*holds\.0/s);
  });
});

/** What the purge may touch, as plain data. */
async function snapshot(): Promise<Record<string, unknown[]>> {
  const rows = async <T>(sql: string): Promise<T[]> => (await db.pool.query(sql)).rows as T[];
  const runIds = (await rows<{ id: string }>(`SELECT id FROM runner.runs ORDER BY id`)).map((r) =>
    Number(r.id),
  );
  const rejects = (
    await rows<{ run_id: string }>(`SELECT DISTINCT run_id FROM runner.rejects ORDER BY run_id`)
  ).map((r) => Number(r.run_id));
  const reports = (
    await rows<{ r: string }>(
      `SELECT reject_report AS r FROM runner.run_files WHERE reject_report IS NOT NULL ORDER BY id`,
    )
  ).map((r) => existsSync(r.r));
  const archives: string[] = [];
  for (const p of ['HELDCO', 'VENDOR'])
    for (const f of (await readdir(path.join(sshd.root, p, 'archive'))).sort()) archives.push(`${p}/${f}`);
  const interchanges = (
    await rows<{ f: string }>(`SELECT file_name AS f FROM edi.outbound_files ORDER BY 1`)
  ).map((r) => r.f);
  const exports = (await readdir(path.join(home.dir, 'out'))).sort();
  return { runs: runIds, rejects, reports, archives, interchanges, exports };
}
