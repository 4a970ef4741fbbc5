import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort, waitFor } from '../runner.js';

/**
 * Servers the chaos suite owns, so it can kill and restart them without touching the machine's
 * shared PostgreSQL and Redis:
 *
 *   initdb + pg_ctl (the installed server binaries) ──► a private cluster on 127.0.0.1:<free port>
 *   redis-server --save '' --appendonly no           ──► 127.0.0.1:<free port>; restarts come back empty
 */

const run = promisify(execFile);

/** Where the PostgreSQL server binaries are (Debian's layout), newest version first. */
function pgBin(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? ['17', '16', '15', '14', '13'].filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
    : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server binaries under ${base}/<version>/bin`);
  return path.join(base, versions[0]!, 'bin');
}

export interface PgCluster {
  port: number;
  /** Connection string of `database` on this cluster, as the superuser `root`. */
  url(database?: string): string;
  /** Stops the server (fast shutdown: sessions are terminated), waits `downMs`, starts it again. */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its files. */
  destroy(): Promise<void>;
}

/**
 * A private PostgreSQL cluster. initdb refuses to run as root, so as root the cluster belongs to
 * the `postgres` user and its commands run through runuser.
 */
export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBin();
  const root = process.getuid?.() === 0;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'erp-chaos-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const as = (cmd: string, args: string[]): [string, string[]] =>
    root ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const exec = async (cmd: string, args: string[]): Promise<void> => {
    const [c, a] = as(path.join(bin, cmd), args);
    await run(c, a, { timeout: 60_000 });
  };
  if (root) {
    await chmod(dir, 0o755);
    await chown(
      dir,
      Number((await run('id', ['-u', 'postgres'])).stdout),
      Number((await run('id', ['-g', 'postgres'])).stdout),
    );
  }
  const port = await freePort();
  const url = (database = 'postgres'): string => `postgres://root@127.0.0.1:${port}/${database}`;
  try {
    await exec('initdb', [
      '-D',
      data,
      '-A',
      'trust',
      '-U',
      'root',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
  const start = async (): Promise<void> => {
    await exec('pg_ctl', ['-D', data, '-o', options, '-l', log, '-w', '-t', '60', 'start']);
  };
  const stop = async (): Promise<void> => {
    await exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']).catch(() => undefined);
  };
  try {
    await start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url,
    start,
    stop,
    async restart(downMs = 2000) {
      await stop();
      await sleep(downMs);
      await start();
    },
    async destroy() {
      await exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `sql` on `url` on a connection of its own. */
export async function sqlOn(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface RedisServer {
  url: string;
  /** Kills the server (SIGKILL); it comes back with `start()`, empty. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server without persistence: after a kill and a start it is empty, as a crashed cache would be. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    child = proc;
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await waitFor(
        () => {
          if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
          return (
            probe.status === 'ready' ||
            (probe.status === 'wait' || probe.status === 'end'
              ? probe.connect().then(
                  () => true,
                  () => false,
                )
              : false)
          );
        },
        10_000,
        `redis-server on port ${port}`,
        50,
      );
    } finally {
      probe.disconnect();
    }
  };
  const kill = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const closed = new Promise((resolve) => proc.once('close', resolve));
    proc.kill('SIGKILL');
    await closed;
  };
  await start();
  return { url, start, kill, stop: kill };
}
