/**
 * The global set-up's check that dist/ holds the current src/ (test/helpers/dist.ts), on temporary
 * trees whose files get chosen modification times, and its build when it does not.
 */
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureBuilt, staleDist } from './helpers/dist.js';

const trees: string[] = [];
afterEach(async () => {
  await Promise.all(trees.splice(0).map((t) => rm(t, { recursive: true, force: true })));
});

/** A tree with `files` (path → modification time in seconds since the epoch). */
async function tree(files: Record<string, number>): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'erp-dist-'));
  trees.push(root);
  for (const [rel, mtime] of Object.entries(files)) {
    const p = path.join(root, rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, '');
    await utimes(p, mtime, mtime);
  }
  return root;
}

describe('staleDist', () => {
  it('is null when dist/cli.js is newer than every source file', async () => {
    const root = await tree({ 'src/cli.ts': 1000, 'src/a/b.ts': 1500, 'dist/cli.js': 2000 });
    expect(staleDist(root)).toBeNull();
  });

  it('names a missing dist/cli.js', async () => {
    const root = await tree({ 'src/cli.ts': 1000 });
    expect(staleDist(root)).toBe('dist/cli.js is missing');
  });

  it('names a source file newer than the build, however deep', async () => {
    const root = await tree({ 'src/cli.ts': 1000, 'src/x12/deep/writer.ts': 3000, 'dist/cli.js': 2000 });
    expect(staleDist(root)).toBe(`dist/ is older than ${path.join('src', 'x12', 'deep', 'writer.ts')}`);
  });

  it('counts a console asset the build copies, not only TypeScript', async () => {
    const root = await tree({ 'src/cli.ts': 1000, 'src/console/assets/app.js': 3000, 'dist/cli.js': 2000 });
    expect(staleDist(root)).toMatch(/older than src.console.assets.app\.js$/);
  });
});

describe('ensureBuilt', () => {
  /** A project whose build script is `build` (a shell command). */
  async function project(build: string, files: Record<string, number>): Promise<string> {
    const root = await tree(files);
    await writeFile(
      path.join(root, 'package.json'),
      JSON.stringify({ name: 'p', private: true, scripts: { build } }),
    );
    return root;
  }

  it('builds a stale tree, after which it is current', async () => {
    const root = await project('mkdir -p dist && touch dist/cli.js', { 'src/cli.ts': 1000 });
    expect(staleDist(root)).not.toBeNull();
    ensureBuilt(root);
    expect(existsSync(path.join(root, 'dist/cli.js'))).toBe(true);
    expect(staleDist(root)).toBeNull();
  });

  it('leaves a current tree alone', async () => {
    const root = await project('echo built > marker', { 'src/cli.ts': 1000, 'dist/cli.js': 2000 });
    ensureBuilt(root);
    expect(existsSync(path.join(root, 'marker'))).toBe(false);
  });

  it('fails with one line naming the failed build', async () => {
    const root = await project('echo "src/cli.ts(1,1): error TS1005" >&2; exit 2', { 'src/cli.ts': 1000 });
    expect(() => ensureBuilt(root)).toThrow(/^npm run build failed \(exit \d+\): dist\/ is stale/);
  });
});
