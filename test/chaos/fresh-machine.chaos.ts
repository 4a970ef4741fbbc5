/**
 * The README's set-up on a machine where PostgreSQL and Redis are installed but neither configured
 * nor running: scripts/fresh-services.sh gives it private network, PID and mount namespaces with
 * empty cluster and socket directories, so scripts/setup.sh must create the cluster, the role and
 * the databases and start both servers; then a job runs through a worker on them. It runs on a copy of the
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
    'set-up creates and starts PostgreSQL and Redis, and a job runs through a worker on them',
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
        await cp('dist', path.join(copy, 'dist'), { recursive: true, preserveTimestamps: true });
        // The README's first command begins with this set-up; the rest of it (build, the whole
        // demo story) is the same on any machine, so the suite runs a job through a worker instead:
        // `bash scripts/fresh-services.sh npm run demo` runs all of it (docs: README, "The demo").
        const script = [
          'set -e',
          'bash scripts/setup.sh',
          'node dist/cli.js migrate',
          '(node dist/cli.js worker &)',
          'node dist/cli.js run items',
          `psql -h 127.0.0.1 -d ${'$'}(id -un) -Atc 'SELECT count(*) FROM sales.items'`,
        ].join('\n');
        const child = spawn('bash', ['scripts/fresh-services.sh', 'bash', '-c', script], {
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
        expect(out).toMatch(/applied .*schema at migration/);
        expect(out).toMatch(/step 1\/1 pipeline items: succeeded/);
        expect(Number(out.trim().split('\n').at(-1))).toBeGreaterThan(0);
      } finally {
        await rm(copy, { recursive: true, force: true });
      }
    },
    600_000,
  );
});
