/**
 * The README's first command on a machine where PostgreSQL and Redis are installed but neither
 * configured nor running: scripts/fresh-services.sh gives it private network, PID and mount
 * namespaces with empty cluster and socket directories, so `npm run demo` must create the cluster,
 * the role and the databases, start both servers, and run the whole story. It runs on a copy of the
 * repository (timestamps kept, node_modules hard-linked), so the demo's build never rewrites the dist/
 * or the packages other test files are using.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const canRun =
  process.getuid?.() === 0 && spawnSync('unshare', ['--version'], { stdio: 'ignore' }).status === 0;
if (!canRun) console.log('fresh-machine: needs root and unshare; skipped');

describe('a fresh machine', () => {
  it.skipIf(!canRun)(
    '`npm run demo` creates, starts and uses its own PostgreSQL and Redis',
    async () => {
      const copy = await mkdtemp(path.join(tmpdir(), 'erp-fresh-'));
      try {
        const files = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
          encoding: 'utf8',
        }).stdout.split('\0');
        for (const f of files.filter(Boolean)) {
          await cp(f, path.join(copy, f), { recursive: true, preserveTimestamps: true }).catch(
            (err: NodeJS.ErrnoException) => {
              if (err.code !== 'ENOENT') throw err; // a file deleted in the work tree
            },
          );
        }
        // Hard links: the copy's node_modules costs no space, and whatever the demo's set-up does to
        // it (npm ci removes and rewrites files) never reaches the repository's own.
        const linked = spawnSync('cp', ['-al', 'node_modules', path.join(copy, 'node_modules')]);
        expect(linked.status, String(linked.stderr)).toBe(0);
        const child = spawn('bash', ['scripts/fresh-services.sh', 'npm', 'run', 'demo'], {
          cwd: copy,
          env: { ...process.env, DATABASE_URL: '', REDIS_URL: '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        expect(code, out.slice(-3000)).toBe(0);
        expect(out).toContain('setup: creating PostgreSQL cluster');
        expect(out).toContain('setup: creating PostgreSQL role');
        expect(out).toMatch(/erp run payroll-close --period 2026-11/);
      } finally {
        await rm(copy, { recursive: true, force: true });
      }
    },
    600_000,
  );
});
