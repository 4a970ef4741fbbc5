import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';
import { startSshd, type TestSshd } from './helpers/sshd.js';

/** Pipelines whose files come from, or go to, a partner's real SFTP server (OpenSSH on loopback). */

let db: TestDatabase;
let sshd: TestSshd;
let home: TestHome;
const saved = { ...process.env };

const PARTNER = (pin: string): string => `
name: CLOCK
sftp:
  host: 127.0.0.1
  port_env: TEST_SFTP_PORT
  user_env: TEST_SFTP_USER
  private_key_file_env: TEST_SFTP_KEY
  host_key_sha256: ['${pin}']
  base_dir_env: TEST_SFTP_ROOT
  inbox: inbox
  outbox: outbox
  archive: archive
  error: error
  ready: { mode: stable, interval_ms: 200 }
  retry: { attempts: 3, base_delay_ms: 100 }
`;

const IMPORT = `
source: { kind: sftp, partner: CLOCK, glob: 'hours-*.csv' }
format: { kind: csv }
validate:
  fields:
    emp: { type: string, required: true }
    hours: { type: decimal, precision: 5, scale: 2, required: true }
sink: { kind: postgres, table: public.hours, mode: append }
rejects: { max_rejects: 0 }
`;

const EXPORT = `
source: { kind: postgres, sql: 'SELECT emp, hours FROM public.hours ORDER BY emp, hours' }
format: { kind: csv }
sink: { kind: sftp, partner: CLOCK, name: 'hours-{run_id}.{ext}' }
`;

const remote = (dir: string): Promise<string[]> => readdir(path.join(sshd.root, dir)).then((f) => f.sort());

async function run(name: string) {
  return runPipeline(testApp(db, home.dir), await loadPipeline(home.dir, name));
}

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  sshd = await startSshd();
  await db.pool.query('CREATE TABLE hours (emp text NOT NULL, hours numeric(5,2) NOT NULL)');
  Object.assign(process.env, {
    TEST_SFTP_PORT: String(sshd.port),
    TEST_SFTP_USER: sshd.user,
    TEST_SFTP_KEY: sshd.privateKeyPath,
    TEST_SFTP_ROOT: sshd.root,
  });
  await home.link(['sql']);
  await home.write({
    'partners/CLOCK.yaml': PARTNER(sshd.hostKeyFingerprint),
    'pipelines/hours.yaml': IMPORT,
    'pipelines/hours-out.yaml': EXPORT,
  });
}, 120_000);
afterAll(async () => {
  process.env = saved;
  await sshd?.stop();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE hours; TRUNCATE runner.ingested_files, runner.runs CASCADE');
});

describe('source sftp', () => {
  it('downloads ready files, loads each once, and archives them after the commit', async () => {
    await writeFile(path.join(sshd.root, 'inbox/hours-1.csv'), 'emp,hours\nE1,8.00\nE2,7.50\n');
    await writeFile(path.join(sshd.root, 'inbox/other.txt'), 'not for this pipeline');
    const r = await run('hours');
    expect(r.status).toBe('succeeded');
    expect(r.files.map((f) => [f.file, f.status, f.rowsLoaded])).toEqual([
      [`sftp:CLOCK${sshd.root}/inbox/hours-1.csv`, 'loaded', 2],
    ]);
    expect(await remote('inbox')).toEqual(['other.txt']);
    expect(await remote('archive')).toEqual(['hours-1.csv']);
    // The partner delivers the same content again under a new name: archived, not loaded.
    await writeFile(path.join(sshd.root, 'inbox/hours-2.csv'), 'emp,hours\nE1,8.00\nE2,7.50\n');
    const again = await run('hours');
    expect(again.files[0]).toMatchObject({ status: 'skipped', rowsLoaded: 0 });
    expect(await remote('archive')).toEqual(['hours-1.csv', 'hours-2.csv']);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM hours')).rows[0].n).toBe(2);
  });

  it('moves a file that fails to load to the error directory with a report, loading nothing', async () => {
    await writeFile(path.join(sshd.root, 'inbox/hours-bad.csv'), 'emp,hours\nE1,8.00\nE2,lots\n');
    const r = await run('hours');
    expect(r.files[0]).toMatchObject({ status: 'failed', rowsLoaded: 0 });
    expect(await remote('inbox')).toEqual(['other.txt']);
    expect(await remote('error')).toEqual(['hours-bad.csv', 'hours-bad.csv.error.txt']);
    const report = await readFile(path.join(sshd.root, 'error/hours-bad.csv.error.txt'), 'utf8');
    expect(report).toMatch(/more than 0 rejected rows \(max_rejects\)/);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM hours')).rows[0].n).toBe(0);
  });

  it('refuses a server whose host key is not pinned, touching nothing', async () => {
    const other = PARTNER('SHA256:' + 'A'.repeat(43));
    await writeFile(path.join(home.dir, 'partners/CLOCK.yaml'), other);
    await writeFile(path.join(sshd.root, 'inbox/hours-3.csv'), 'emp,hours\nE3,1.00\n');
    try {
      const r = await run('hours');
      expect(r.status).toBe('failed');
      expect(r.error).toMatch(/host key/i);
      expect(await remote('inbox')).toContain('hours-3.csv');
    } finally {
      await writeFile(path.join(home.dir, 'partners/CLOCK.yaml'), PARTNER(sshd.hostKeyFingerprint));
    }
  });
});

describe('source sftp, server killed mid-transfer', () => {
  it('retries the download after the server is killed and restarted, and loads the file once', async () => {
    // ~60 MB, so the transfer is still running when the first bytes land in the local temp file.
    await rm(path.join(sshd.root, 'inbox/hours-3.csv'), { force: true });
    const rows = 600_000;
    const pad = 'x'.repeat(90);
    let body = 'emp,hours\n';
    for (let i = 0; i < rows; i++) body += `E${i}${pad},8.00\n`;
    await writeFile(path.join(sshd.root, 'inbox/hours-big.csv'), body);
    // Downloads land in the run's own temporary directory, ERP_DATA_DIR/tmp/<run>/sftp-…/.
    const tmpRoot = path.join(home.dir, 'var', 'tmp');
    let restarted: Promise<void> | undefined;
    const watch = setInterval(() => {
      void (async () => {
        if (restarted) return;
        const dirs = (await readdir(tmpRoot).catch(() => [])).map((run) => path.join(tmpRoot, run));
        for (const runDir of dirs) {
          for (const d of await readdir(runDir).catch(() => [])) {
            if (!d.startsWith('sftp-')) continue;
            const tmp = runDir;
            for (const f of await readdir(path.join(tmp, d)).catch(() => [])) {
              const size = await stat(path.join(tmp, d, f)).then(
                (st) => st.size,
                () => 0,
              );
              if (size > 1 << 20 && size < body.length) restarted ??= sshd.restart();
            }
          }
        }
      })();
    }, 2);
    try {
      const r = await run('hours');
      await restarted;
      expect(restarted).toBeDefined();
      expect(r.files.map((f) => [f.status, f.rowsLoaded])).toEqual([['loaded', rows]]);
    } finally {
      clearInterval(watch);
    }
    const loaded = await db.pool.query('SELECT count(*)::int AS n, count(DISTINCT emp)::int AS d FROM hours');
    expect(loaded.rows[0]).toEqual({ n: rows, d: rows });
    // Nothing of the download is left in the run's temporary directory.
    for (const run of await readdir(tmpRoot).catch(() => []))
      expect(await readdir(path.join(tmpRoot, run))).toEqual([]);
    expect(await remote('archive')).toContain('hours-big.csv');
  }, 120_000);
});

describe('sink sftp', () => {
  it('uploads an export atomically to the partner directory', async () => {
    await db.pool.query(`INSERT INTO hours VALUES ('E1', 8), ('E2', 7.5)`);
    const r = await run('hours-out');
    expect(r.status).toBe('succeeded');
    const name = `hours-${r.runId}.csv`;
    expect(await remote('outbox')).toEqual([name]);
    expect(await readFile(path.join(sshd.root, 'outbox', name), 'utf8')).toBe(
      'emp,hours\nE1,8.00\nE2,7.50\n',
    );
    // A second export under the same name is refused rather than overwriting the partner's file.
    await writeFile(
      path.join(home.dir, 'pipelines/hours-out.yaml'),
      EXPORT.replace('hours-{run_id}', 'hours-fixed'),
    );
    await writeFile(path.join(sshd.root, 'outbox/hours-fixed.csv'), 'theirs');
    const clash = await run('hours-out');
    expect(clash.status).toBe('failed');
    expect(await readFile(path.join(sshd.root, 'outbox/hours-fixed.csv'), 'utf8')).toBe('theirs');
  });
});
