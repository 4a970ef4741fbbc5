/**
 * Whether dist/ holds the current src/: the CLI tests spawn dist/cli.js, so a stale build tests old
 * code and a missing one fails them with nothing saying why. The global set-up builds when this
 * says so (test/helpers/global-setup.ts).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Why `root`/dist/ does not hold the current `root`/src/ — dist/cli.js missing, or older than a
 * source file (TypeScript or a console asset the build copies) — or null when it is current.
 */
export function staleDist(root = '.'): string | null {
  let built: number;
  try {
    built = statSync(path.join(root, 'dist/cli.js')).mtimeMs;
  } catch {
    return 'dist/cli.js is missing';
  }
  const newer = (dir: string): string | null => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const found = e.isDirectory() ? newer(p) : statSync(p).mtimeMs > built ? p : null;
      if (found) return found;
    }
    return null;
  };
  const source = newer(path.join(root, 'src'));
  return source ? `dist/ is older than ${path.relative(root, source)}` : null;
}

/**
 * Runs `npm run build` when dist/ is stale, saying so in one line; throws one line naming the
 * failure (after the build's own output) when the build fails.
 */
export function ensureBuilt(root = '.'): void {
  const stale = staleDist(root);
  if (!stale) return;
  console.log(`global set-up: ${stale}; running npm run build (the CLI tests spawn dist/cli.js)`);
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    throw new Error(
      `npm run build failed (${r.error ? r.error.message : `exit ${r.status}`}): dist/ is stale and the CLI tests would test old code; fix the build above`,
    );
  }
}
