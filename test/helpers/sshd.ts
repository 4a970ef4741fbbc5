import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { sftpEndpointSchema, type SftpEndpoint } from '../../src/sftp/endpoint.js';

/**
 * A real OpenSSH sshd on loopback for tests and benchmarks:
 *
 *   mkdtemp ─► host key + client key (ssh-keygen) ─► sshd_config ─► sshd -D -e -f config
 *                                                                     │
 *   tests ──ssh2 / OpenSSH sftp──► 127.0.0.1:<free port> ──internal-sftp──► <tmp>/files/{inbox,outbox,archive,error}
 *
 * Every file lives in one temp dir that `stop()` removes. `restart()` kills the server and its
 * session processes with SIGKILL (a crash, not a shutdown) and starts it again on the same port
 * with the same host key.
 */

const run = promisify(execFile);

const SSHD = '/usr/sbin/sshd';

/** A running test sshd. */
export interface TestSshd {
  host: string;
  port: number;
  /** The current OS user; the client key is authorized for it. */
  user: string;
  /** Private key (ed25519, no passphrase) the server accepts for `user`. */
  privateKeyPath: string;
  /** The server's host public key as `ssh-ed25519 AAAA…`, for a known_hosts line. */
  hostPublicKey: string;
  /** `SHA256:…` fingerprint of the host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** A temp dir the test owns, holding `inbox`, `outbox`, `archive` and `error` subdirectories. */
  root: string;
  /** An endpoint config for this server, pinned to its host key; `extra` overrides keys. */
  endpoint(extra?: Record<string, unknown>): SftpEndpoint;
  /**
   * Kills the server (SIGKILL, with its sessions) and starts it again on the same port and key,
   * after `downMs` (0: at once) during which connections are refused.
   */
  restart(downMs?: number): Promise<void>;
  /** Kills the server and its sessions and removes every temp file. Safe to call twice. */
  stop(): Promise<void>;
}

/** Installs openssh-server when `/usr/sbin/sshd` is missing (we run as root on a fresh machine). */
async function ensureSshd(): Promise<void> {
  if (existsSync(SSHD)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${SSHD} is missing and we are not root: install it with 'apt-get install -y openssh-server'`,
    );
  }
  // flock: test files running in parallel must not fight over the dpkg lock.
  const script =
    `test -x ${SSHD} || apt-get install -y -q openssh-server >/dev/null 2>&1 || ` +
    `(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q openssh-server >/dev/null)`;
  try {
    await run('flock', ['/tmp/erp-test-openssh-install.lock', 'sh', '-c', script], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300_000,
    });
  } catch (err) {
    throw new Error(`could not install openssh-server: ${(err as Error).message}`);
  }
  if (!existsSync(SSHD)) throw new Error(`openssh-server installed but ${SSHD} is still missing`);
}

/** A TCP port free on loopback right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** `SHA256:…` of an OpenSSH public key line, computed from its key blob. */
export function fingerprintOfPublicKey(line: string): string {
  const blob = line.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`not an OpenSSH public key line: ${line}`);
  const digest = createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64');
  return `SHA256:${digest.replace(/=+$/, '')}`;
}

async function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** Direct children of `pid`, from /proc (synchronous: the kill must not wait behind a busy event loop). */
function childrenOf(pid: number): number[] {
  try {
    // Linux lists the children of each thread; sshd is single-threaded.
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    // No such file (kernel without CONFIG_PROC_CHILDREN): scan every process's parent.
    const children: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        // Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
      } catch {
        // The process exited while we looked.
      }
    }
    return children;
  }
}

/**
 * Kills `pid` and every descendant with SIGKILL. sshd forks a process per connection in its own
 * session, so killing the listener alone would leave transfers running. Parents are stopped
 * first (SIGSTOP) so none can fork while the tree is walked.
 */
function killTree(pid: number): void {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    try {
      process.kill(tree[i]!, 'SIGSTOP');
    } catch {
      continue;
    }
    tree.push(...childrenOf(tree[i]!));
  }
  for (const p of tree) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

/** Starts a fresh sshd on a free loopback port; call `stop()` when done. */
export async function startSshd(): Promise<TestSshd> {
  await ensureSshd();
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });

  const dir = await mkdtemp(path.join(os.tmpdir(), 'erp-sshd-'));
  const root = path.join(dir, 'files');
  const hostKey = path.join(dir, 'host_ed25519');
  const clientKey = path.join(dir, 'client_ed25519');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  const config = path.join(dir, 'sshd_config');
  const host = '127.0.0.1';
  const user = os.userInfo().username;

  let child: ChildProcess | undefined;
  let stderr = '';
  let stopped = false;

  const launch = async (port: number): Promise<void> => {
    stderr = '';
    const proc = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => {
      // Keep the tail only: a long test logs a line per connection.
      stderr = (stderr + chunk).slice(-8192);
    });
    let exited = false;
    proc.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(host, port))) {
      if (exited) throw new Error(`sshd exited at start (port ${port}):\n${stderr}`);
      if (Date.now() > deadline) {
        killTree(proc.pid!);
        throw new Error(`sshd did not accept connections on ${host}:${port} within 10 s:\n${stderr}`);
      }
      await sleep(25);
    }
  };

  const kill = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc?.pid || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    killTree(proc.pid);
    await exited;
  };

  try {
    await mkdir(root);
    for (const sub of ['inbox', 'outbox', 'archive', 'error']) await mkdir(path.join(root, sub));
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'erp-test-host', '-f', hostKey]);
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'erp-test-client', '-f', clientKey]);
    await writeFile(authorizedKeys, await readFile(`${clientKey}.pub`));

    const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8'))
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(' ');
    const hostKeyFingerprint = fingerprintOfPublicKey(hostPublicKey);
    const { stdout } = await run('ssh-keygen', ['-lf', `${hostKey}.pub`]);
    if (stdout.split(/\s+/)[1] !== hostKeyFingerprint) {
      throw new Error(
        `fingerprint mismatch: computed ${hostKeyFingerprint}, ssh-keygen -lf says ${stdout.trim()}`,
      );
    }

    const port = await freePort();
    await writeFile(
      config,
      [
        `ListenAddress ${host}`,
        `Port ${port}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'UsePAM no',
        'MaxStartups 50',
        'LogLevel ERROR',
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );
    // Reports config errors as one clear message instead of an early exit.
    await run(SSHD, ['-t', '-f', config]);
    await launch(port);

    const server: TestSshd = {
      host,
      port,
      user,
      privateKeyPath: clientKey,
      hostPublicKey,
      hostKeyFingerprint,
      root,
      endpoint(extra = {}) {
        return sftpEndpointSchema.parse({
          host,
          port,
          user,
          private_key_file: clientKey,
          host_key_sha256: [hostKeyFingerprint],
          inbox: path.join(root, 'inbox'),
          outbox: path.join(root, 'outbox'),
          archive: path.join(root, 'archive'),
          error: path.join(root, 'error'),
          ...extra,
        });
      },
      async restart(downMs = 0) {
        if (stopped) throw new Error('sshd was stopped');
        await kill();
        if (downMs > 0) await sleep(downMs);
        await launch(port);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await kill();
        await rm(dir, { recursive: true, force: true });
      },
    };
    return server;
  } catch (err) {
    await kill();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
