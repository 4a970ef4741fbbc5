import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { BENCH_DDL, generateCsv } from '../../benchmarks/generate.js';
import { killChildren, waitFor, type Child } from '../helpers/runner.js';
import { startSshd, type TestSshd } from '../helpers/sshd.js';
import {
  clean,
  makeStage,
  queuedRunId,
  startServers,
  untilCopying,
  untilRunning,
  type Servers,
  type Stage,
} from '../helpers/chaos/stage.js';

/**
 * The chaos suite: each scenario is one fault on a real server the suite owns — a worker killed
 * with SIGKILL, PostgreSQL restarted, Redis restarted empty, a full disk, SIGTERM, an uncaught
 * exception — and checks that every row landed once (count and distinct keys), the ledger,
 * runner.runs and the processes' exit codes. A new fault is one more `scenario(…)`.
 */

const run = promisify(execFile);

const ROWS = 200_000;
const BAD_ROWS = 50_000;

const FILES: Record<string, string> = {
  'pipelines/big.yaml': `
source: { kind: file, path: 'in/big.csv' }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
    price: { type: decimal, precision: 12, scale: 2 }
sink: { kind: postgres, table: public.big }
`,
  // Every row is rejected (a SKU is not an int): the reject report is as large as the file.
  'pipelines/allbad.yaml': `
source: { kind: file, path: 'in/bad.csv' }
format: { kind: csv }
validate:
  fields:
    sku: { type: int, required: true }
sink: { kind: postgres, table: public.bad }
`,
  'jobs/slow.yaml': `
params:
  tag: { type: string }
  secs: { type: int, default: 3 }
lock: [tag]
retries: { attempts: 3, backoff: 1s }
steps:
  - sql: t/slow.sql
`,
  'sql/t/slow.sql': `SELECT pg_sleep(:'secs');\nINSERT INTO marks (tag) VALUES (:'tag');\n`,
  'jobs/tick.yaml': `
lock: false
schedules:
  - cron: '*/2 * * * * *'
steps:
  - sql: t/tick.sql
`,
  'sql/t/tick.sql': `SELECT 1;\n`,
  // Over SFTP, from and to the scenario's own sshd (its partner file is written by the scenario).
  'pipelines/sftp-in.yaml': `
source: { kind: sftp, partner: CHAOS, glob: 'hours-*.csv' }
format: { kind: csv }
validate:
  fields:
    emp: { type: string, required: true }
    hours: { type: decimal, precision: 5, scale: 2, required: true }
sink: { kind: postgres, table: public.hours, mode: append }
`,
  'pipelines/sftp-out.yaml': `
source: { kind: postgres, sql: 'SELECT id, pad FROM public.outrows ORDER BY id' }
format: { kind: csv }
sink: { kind: sftp, partner: CHAOS, name: 'out-{run_id}.{ext}' }
`,
};

const DDL = `CREATE TABLE big ${BENCH_DDL}; CREATE TABLE marks (tag text NOT NULL); CREATE TABLE bad (sku int, name text);
  CREATE TABLE hours (emp text NOT NULL, hours numeric(5,2) NOT NULL); CREATE TABLE outrows (id int, pad text);`;

/** Rows of the SFTP scenarios' files (about 60 MB): still in transfer when the server is killed. */
const SFTP_ROWS = 600_000;

let servers: Servers | string;
let data: string;

beforeAll(async () => {
  servers = await startServers();
  if (typeof servers === 'string') {
    process.stderr.write(`chaos: ${servers}; skipping\n`);
    return;
  }
  data = await mkdtemp(path.join(os.tmpdir(), 'erp-chaos-data-'));
  await generateCsv(path.join(data, 'big.csv'), ROWS);
  let bad = 'sku,name\n';
  for (let i = 0; i < BAD_ROWS; i++) bad += `SKU-${i},a name long enough to fill the reject report quickly\n`;
  await writeFile(path.join(data, 'bad.csv'), bad);
});

afterEach(() => killChildren());

afterAll(async () => {
  await killChildren();
  if (typeof servers !== 'string') {
    await servers.redis.stop();
    await servers.pg.destroy();
  }
  if (data) await rm(data, { recursive: true, force: true });
});

/** A scenario on a fresh stage (database, home, queue prefix); skipped when the servers could not start. */
function scenario(name: string, fn: (s: Stage, servers: Servers) => Promise<void>): void {
  it(name, async (ctx: TestContext) => {
    if (typeof servers === 'string') return ctx.skip(servers);
    const s = await makeStage(servers, FILES, DDL);
    try {
      await run('ln', ['-s', data, path.join(s.home, 'in')]);
      // The generated files live outside the home: an input directory of their own.
      s.env.ERP_INPUT_DIRS = data;
      await fn(s, servers);
    } finally {
      await killChildren();
      await s.close();
    }
  });
}

async function stopWorker(w: Child): Promise<void> {
  w.process.kill('SIGTERM');
  expect(await w.exited).toBe(0);
}

/**
 * Awaits `p` for at most `ms`, else fails naming what did not happen, with `diag()` (the runs'
 * states, the processes' last output): a scenario that hangs says where, not just "timed out".
 */
async function within<T>(what: string, p: Promise<T>, ms: number, diag: () => Promise<string>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  try {
    const r = await Promise.race([p.then((v) => ({ v })), late]);
    if (r === 'late') throw new Error(`${what}: not within ${ms} ms\n${await diag()}`);
    return r.v;
  } catch (err) {
    if (err instanceof Error && err.message.includes(' ms\n')) throw err;
    throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}\n${await diag()}`);
  } finally {
    clearTimeout(timer);
  }
}

describe('chaos', () => {
  scenario(
    'kill -9 of a worker mid-COPY: the run is marked abandoned at once and loaded once by another worker',
    async (s) => {
      const first = await s.worker();
      const id = await queuedRunId(s.erp(['run', 'big']));
      await untilCopying(s, 'big');
      first.process.kill('SIGKILL');
      expect(await first.exited).toBeNull();
      const second = await s.worker();
      // The reconciler of the new worker saw the dead owner: not left 'running' until a stall or a next run.
      await waitFor(
        () => second.stderr().includes(`run ${id} was abandoned by its process; now queued`),
        10_000,
        'the abandon',
      );
      await s.waitStatus(id, 'succeeded');
      expect(await s.rows('big', 'id')).toEqual({ n: ROWS, keys: ROWS });
      expect(await s.ledger('big')).toBe(1);
      expect(await s.run(id)).toMatchObject({ status: 'succeeded', attempts: 2, error: null });
      await stopWorker(second);
    },
  );

  scenario(
    'PostgreSQL restart mid-COPY: the worker lives on, the follower waits, the run succeeds once',
    async (s, srv) => {
      const worker = await s.worker();
      const follower = s.erp(['run', 'big']);
      const id = await queuedRunId(follower);
      await untilCopying(s, 'big');
      await srv.pg.restart(3000);
      expect(await follower.exited, follower.stderr()).toBe(0);
      expect(follower.stderr()).toContain('waiting for the database');
      expect(clean(follower.stderr() + follower.stdout())).toBe(true);
      expect(worker.process.exitCode).toBeNull();
      expect(await s.rows('big', 'id')).toEqual({ n: ROWS, keys: ROWS });
      expect(await s.ledger('big')).toBe(1);
      expect(await s.run(id)).toMatchObject({ status: 'succeeded', attempts: 2 });
      await stopWorker(worker);
      expect(clean(worker.stderr())).toBe(true);
    },
  );

  scenario('PostgreSQL restart mid-SQL step: the worker lives on, the step commits once', async (s, srv) => {
    const worker = await s.worker();
    const follower = s.erp(['run', 'slow', '--param', 'tag=pg']);
    const id = await queuedRunId(follower);
    await untilRunning(s, 'pg_sleep');
    await srv.pg.restart(3000);
    expect(await follower.exited, follower.stderr()).toBe(0);
    expect(worker.process.exitCode).toBeNull();
    expect(await s.rows('marks', 'tag')).toEqual({ n: 1, keys: 1 });
    expect(await s.run(id)).toMatchObject({ status: 'succeeded', attempts: 2 });
    await stopWorker(worker);
  });

  scenario(
    'erp migrate and erp run --inline during a PostgreSQL outage: one line, exit 1',
    async (s, srv) => {
      // Mid-run: the inline run's connections are cut under it.
      const inline = s.erp(['run', 'big', '--inline']);
      await untilCopying(s, 'big');
      await srv.pg.restart(2000);
      expect(await inline.exited).toBe(1);
      expect(clean(inline.stderr() + inline.stdout()), inline.stderr()).toBe(true);
      // Its failure was recorded once the database was back; nothing of the file stayed.
      expect(await s.one('SELECT status, error_kind FROM runner.runs WHERE name = $1', ['big'])).toEqual({
        status: 'failed',
        error_kind: 'infra',
      });
      expect(await s.rows('big', 'id')).toEqual({ n: 0, keys: 0 });
      expect(await s.ledger('big')).toBe(0);
      // Down: each command says so in one line.
      await srv.pg.stop();
      try {
        for (const args of [['migrate'], ['run', 'big', '--inline']]) {
          const r = s.erp(args);
          expect(await r.exited).toBe(1);
          expect(
            r
              .stderr()
              .trim()
              .split('\n')
              .filter((l) => l.startsWith('erp:')),
          ).toHaveLength(1);
          expect(clean(r.stderr()), r.stderr()).toBe(true);
        }
      } finally {
        await srv.pg.start();
      }
    },
  );

  scenario(
    'Redis killed and restarted empty with runs queued, running and followed: each run executes once',
    async (s, srv) => {
      const worker = await s.worker();
      // r1 runs long enough for r2 to be queued behind it when Redis goes.
      const a = s.erp(['run', 'slow', '--param', 'tag=r1', '--param', 'secs=12', '--detach']);
      expect(await a.exited).toBe(0);
      await untilRunning(s, 'pg_sleep');
      const b = s.erp(['run', 'slow', '--param', 'tag=r2', '--detach']);
      expect(await b.exited).toBe(0);
      // r3 is followed by its `erp run`, which rides out the outage and exits with the run's outcome.
      const c = s.erp(['run', 'slow', '--param', 'tag=r3']);
      const followed = await queuedRunId(c);
      const ids = [Number(a.stdout().trim()), Number(b.stdout().trim()), followed];
      expect(await s.run(ids[1]!)).toMatchObject({ status: 'queued' });
      const diag = async (): Promise<string> =>
        [
          `runs ${ids.join(', ')}: ${JSON.stringify(await Promise.all(ids.map((id) => s.run(id).catch(String))))}`,
          `worker stderr (tail):\n${worker.stderr().slice(-6000)}`,
          `follower stdout/stderr (tail):\n${c.stdout().slice(-1500)}\n${c.stderr().slice(-1500)}`,
        ].join('\n');
      await srv.redis.kill();
      await srv.redis.start();
      for (const id of ids)
        await within(`run ${id} succeeded`, s.waitStatus(id, 'succeeded', 40_000), 41_000, diag);
      expect(await within('the follower exits', c.exited, 15_000, diag), c.stderr()).toBe(0);
      expect(clean(c.stderr() + c.stdout()), c.stderr()).toBe(true);
      expect(await s.one('SELECT count(*)::int AS n, count(DISTINCT tag)::int AS tags FROM marks')).toEqual({
        n: 3,
        tags: 3,
      });
      expect(worker.process.exitCode).toBeNull();
      expect(worker.stderr()).toContain(
        `run ${ids[1]} was queued in PostgreSQL but missing from Redis; queued again`,
      );
      await within('the worker stops on SIGTERM', stopWorker(worker), 15_000, diag);
    },
  );

  scenario(
    'full disk for the reject report: the file is rolled back, the report removed, the run failed once',
    async (s) => {
      const disk = await smallDisk();
      try {
        const inline = disk.mounted
          ? s.erp(['run', 'allbad', '--inline'], { ERP_DATA_DIR: disk.dir })
          : limited(s, ['run', 'allbad', '--inline'], { ERP_DATA_DIR: disk.dir });
        expect(await inline.exited).toBe(1);
        expect(inline.stdout()).toMatch(/cannot write the reject report .*\((ENOSPC|EFBIG)/);
        expect(clean(inline.stderr() + inline.stdout()), inline.stderr()).toBe(true);
        expect(await reports(disk.dir)).toEqual([]);
        if (disk.mounted) {
          // Through a worker: failed once, not retried, and the worker lives on.
          const worker = await s.worker({ ERP_DATA_DIR: disk.dir });
          const follower = s.erp(['run', 'allbad']);
          const id = await queuedRunId(follower);
          expect(await follower.exited).toBe(1);
          expect(await s.run(id)).toMatchObject({ status: 'failed', attempts: 1, error_kind: 'user' });
          expect(worker.process.exitCode).toBeNull();
          expect(await reports(disk.dir)).toEqual([]);
          await stopWorker(worker);
        }
        expect(await s.rows('big', 'id')).toEqual({ n: 0, keys: 0 });
        expect(await s.ledger('allbad')).toBe(0);
      } finally {
        await disk.remove();
      }
    },
  );

  scenario('SIGTERM mid-step: the step finishes, the worker exits 0', async (s) => {
    const worker = await s.worker();
    const follower = s.erp(['run', 'slow', '--param', 'tag=term']);
    const id = await queuedRunId(follower);
    await untilRunning(s, 'pg_sleep');
    await stopWorker(worker);
    expect(await follower.exited).toBe(0);
    expect(await s.rows('marks', 'tag')).toEqual({ n: 1, keys: 1 });
    expect(await s.run(id)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  scenario(
    'an uncaught exception in a worker: the runs in hand go back, it exits 1, another worker runs them once',
    async (s) => {
      const crashFile = path.join(s.home, 'crash-now');
      const worker = await s.worker({ ERP_CHAOS_CRASH_FILE: crashFile }, [
        '--import',
        path.resolve('test/helpers/chaos/crash-preload.mjs'),
      ]);
      const a = s.erp(['run', 'slow', '--param', 'tag=crash', '--detach']);
      expect(await a.exited).toBe(0);
      const id = Number(a.stdout().trim());
      await untilRunning(s, 'pg_sleep');
      await writeFile(crashFile, '');
      expect(await worker.exited).toBe(1);
      expect(worker.stderr()).toContain('uncaught error: handing the runs in hand back and exiting');
      expect(await s.run(id)).toMatchObject({
        status: 'queued',
        error: 'attempt failed, will retry: the worker crashed (injected fault)',
      });
      const second = await s.worker();
      await s.waitStatus(id, 'succeeded');
      expect(await s.rows('marks', 'tag')).toEqual({ n: 1, keys: 1 });
      await stopWorker(second);
    },
  );

  scenario(
    'two schedulers with a PostgreSQL restart between ticks: one run per tick, none lost',
    async (s, srv) => {
      const env = { LOG_LEVEL: 'info' };
      const schedulers = [s.erp(['scheduler'], env), s.erp(['scheduler'], env)];
      const ticks = async (): Promise<number> =>
        (await s.one<{ n: number }>(`SELECT count(*)::int AS n FROM runner.runs WHERE name = 'tick'`)).n;
      await waitFor(
        async () => (await ticks()) >= 2,
        30_000,
        () => `two ticks (${schedulers.map((c) => c.stderr()).join('\n')})`,
      );
      await srv.pg.restart(3000);
      const after = await ticks();
      await waitFor(async () => (await ticks()) >= after + 2, 30_000, 'two ticks after the restart');
      for (const c of schedulers) c.process.kill('SIGTERM');
      for (const c of schedulers) {
        expect(await c.exited, c.stderr()).toBe(0);
        expect(clean(c.stderr())).toBe(true);
      }
      const { rows } = await s.pool.query<{ tick: string; n: number }>(
        `SELECT schedule_tick AS tick, count(*)::int AS n FROM runner.runs WHERE name = 'tick' GROUP BY 1 ORDER BY 1`,
      );
      expect(rows.every((r) => r.n === 1)).toBe(true);
      // The ticks due while the database was down were submitted once it was back: no gap.
      const times = rows.map((r) => Date.parse(r.tick.slice(r.tick.indexOf('@') + 1)));
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(2000);
    },
  );
  scenario(
    'sshd killed mid-download and down for seconds: the worker lives, the run retries, the file loads once',
    async (s) => {
      await withSshd(s, async (sshd, env) => {
        let body = 'emp,hours\n';
        const pad = 'x'.repeat(90);
        for (let i = 0; i < SFTP_ROWS; i++) body += `E${i}${pad},8.00\n`;
        await writeFile(path.join(sshd.root, 'inbox/hours-big.csv'), body);
        const worker = await s.worker(env);
        const follower = s.erp(['run', 'sftp-in'], env);
        const id = await queuedRunId(follower);
        // The download is under way: part of it is in the run's temporary directory.
        await untilPartial(path.join(s.home, 'var', 'tmp', String(id)), body.length);
        await sshd.restart(4000);
        expect(await follower.exited, follower.stderr()).toBe(0);
        expect(clean(follower.stderr() + follower.stdout()), follower.stderr()).toBe(true);
        expect(await s.rows('hours', 'emp')).toEqual({ n: SFTP_ROWS, keys: SFTP_ROWS });
        expect(await s.ledger('sftp-in')).toBe(1);
        expect(await s.run(id)).toMatchObject({ status: 'succeeded', error: null });
        // Nothing of the cut download is left, and the partner's file was archived once loaded.
        expect(await readdir(path.join(s.home, 'var', 'tmp', String(id))).catch(() => [])).toEqual([]);
        expect(await readdir(path.join(sshd.root, 'inbox'))).toEqual([]);
        expect(await readdir(path.join(sshd.root, 'archive'))).toEqual(['hours-big.csv']);
        expect(worker.process.exitCode).toBeNull();
        await stopWorker(worker);
        expect(clean(worker.stderr()), worker.stderr()).toBe(true);
      });
    },
  );

  scenario(
    'sshd killed mid-upload and down for seconds: the worker lives, the run retries, the partner gets one whole file',
    async (s) => {
      await withSshd(s, async (sshd, env) => {
        await s.pool.query(
          `INSERT INTO outrows SELECT i, repeat('y', 90) FROM generate_series(1, ${SFTP_ROWS}) AS i`,
        );
        const worker = await s.worker(env);
        const follower = s.erp(['run', 'sftp-out'], env);
        const id = await queuedRunId(follower);
        // The upload is under way: a partial temporary file is in the partner's directory.
        await untilPartial(path.join(sshd.root, 'outbox'), 90 * SFTP_ROWS);
        await sshd.restart(4000);
        expect(await follower.exited, follower.stderr()).toBe(0);
        expect(clean(follower.stderr() + follower.stdout()), follower.stderr()).toBe(true);
        expect(await s.run(id)).toMatchObject({ status: 'succeeded', error: null });
        // One whole file under its final name; no partial temporary file of the cut upload.
        const name = `out-${id}.csv`;
        expect(await readdir(path.join(sshd.root, 'outbox'))).toEqual([name]);
        const text = await readFile(path.join(sshd.root, 'outbox', name), 'utf8');
        const lines = text.trimEnd().split('\n');
        expect(lines).toHaveLength(SFTP_ROWS + 1);
        expect(new Set(lines.slice(1).map((l) => l.split(',')[0])).size).toBe(SFTP_ROWS);
        expect(worker.process.exitCode).toBeNull();
        await stopWorker(worker);
        expect(clean(worker.stderr()), worker.stderr()).toBe(true);
      });
    },
  );
});

/** Report files left under a data dir. */
async function reports(dir: string): Promise<string[]> {
  const runs = path.join(dir, 'runs');
  const out: string[] = [];
  for (const r of await readdir(runs).catch(() => [])) out.push(...(await readdir(path.join(runs, r))));
  return out;
}

/** `erp …` under a 256 KB file-size limit (`ulimit -f`): writes past it fail with EFBIG. */
function limited(s: Stage, args: string[], extra: Record<string, string>): Child {
  const child = spawn(
    'bash',
    ['-c', `ulimit -f 256 && exec "$0" "$@"`, process.execPath, path.resolve('dist/cli.js'), ...args],
    {
      cwd: s.home,
      env: { ...process.env, LOG_LEVEL: 'warn', ...s.env, ...extra },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return {
    process: child,
    stdout: () => out,
    stderr: () => err,
    exited: new Promise((resolve) => child.on('close', (code) => resolve(code))),
  };
}

/**
 * A data dir on a 256 KB tmpfs (ENOSPC); where mounting is not allowed, a plain dir, and the inline
 * run gets a file-size limit instead (only the tmpfs covers the worker case).
 */
async function smallDisk(): Promise<{ dir: string; mounted: boolean; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'erp-chaos-disk-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
    return {
      dir,
      mounted: true,
      async remove() {
        await run('umount', [dir]).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch {
    return { dir, mounted: false, remove: () => rm(dir, { recursive: true, force: true }) };
  }
}

/**
 * Runs `fn` with an sshd of the scenario's own and the partner CHAOS pinned to it; `env` points
 * `erp` at it. SFTP-level retries are few and short, so an outage of seconds fails the attempt
 * and the run's own retry takes over.
 */
async function withSshd(
  s: Stage,
  fn: (sshd: TestSshd, env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const sshd = await startSshd();
  try {
    await mkdir(path.join(s.home, 'partners'), { recursive: true });
    await writeFile(
      path.join(s.home, 'partners', 'CHAOS.yaml'),
      `name: CHAOS
sftp:
  host: 127.0.0.1
  port_env: CHAOS_SFTP_PORT
  user_env: CHAOS_SFTP_USER
  private_key_file_env: CHAOS_SFTP_KEY
  host_key_sha256: ['${sshd.hostKeyFingerprint}']
  base_dir_env: CHAOS_SFTP_ROOT
  inbox: inbox
  outbox: outbox
  archive: archive
  error: error
  ready: { mode: stable, interval_ms: 200 }
  retry: { attempts: 2, base_delay_ms: 200 }
`,
    );
    await fn(sshd, {
      CHAOS_SFTP_PORT: String(sshd.port),
      CHAOS_SFTP_USER: sshd.user,
      CHAOS_SFTP_KEY: sshd.privateKeyPath,
      CHAOS_SFTP_ROOT: sshd.root,
    });
  } finally {
    await sshd.stop();
  }
}

/** Resolves once a file under `dir` (at any depth) holds more than 1 MB and less than `whole` bytes. */
async function untilPartial(dir: string, whole: number): Promise<void> {
  const sizes = async (d: string): Promise<number[]> => {
    const out: number[] = [];
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) out.push(...(await sizes(p)));
      else
        out.push(
          await stat(p).then(
            (st) => st.size,
            () => 0,
          ),
        );
    }
    return out;
  };
  await waitFor(
    async () => (await sizes(dir)).some((n) => n > 1 << 20 && n < whole),
    60_000,
    `a partial transfer under ${dir}`,
    5,
  );
}
