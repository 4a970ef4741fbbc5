import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createPool, queryOnce } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';

/** Server URL of the maintenance database the tests create their databases from. */
export const ADMIN_URL = process.env.TEST_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Name of this run's migrated template database. */
    templateDb: string;
  }
}

/**
 * Builds a template database once per `vitest run`: every migration applied. Each test file
 * clones it (`CREATE DATABASE … TEMPLATE …`), which takes milliseconds.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stale = staleDist();
  if (stale)
    console.warn(
      `\n*** ${stale}: the CLI tests spawn dist/cli.js and will test old code; run npm run build ***\n`,
    );
  // A template of this run's own, so concurrent runs never rebuild one another's template.
  const template = `erp_template_${randomBytes(4).toString('hex')}`;
  // Bank accounts and tax ids are encrypted at rest (src/compliance/keys.ts): the test workers and
  // the CLI processes they start inherit a key of this run's own.
  if (!process.env.ERP_KEYS_FILE) process.env.ERP_KEYS ??= `test:${randomBytes(32).toString('base64')}`;
  await queryOnce(ADMIN_URL, `CREATE DATABASE ${template}`);
  project.provide('templateDb', template);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${template}`;
  const pool = createPool(url.toString(), 1);
  try {
    await migrate(pool, 'sql');
  } finally {
    await pool.end();
  }
  return () => queryOnce(ADMIN_URL, `DROP DATABASE IF EXISTS ${template} WITH (FORCE)`);
}

/** Why dist/ does not hold the current src/ (missing, or older than a source file), or null. */
export function staleDist(): string | null {
  let built: number;
  try {
    built = statSync('dist/cli.js').mtimeMs;
  } catch {
    return 'dist/cli.js is missing';
  }
  const newer = (dir: string): string | null => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const found = e.isDirectory()
        ? newer(p)
        : e.name.endsWith('.ts') && statSync(p).mtimeMs > built
          ? p
          : null;
      if (found) return found;
    }
    return null;
  };
  const source = newer('src');
  return source ? `dist/ is older than ${source}` : null;
}
