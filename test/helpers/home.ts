import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { AppContext } from '../../src/app.js';
import type { TestDatabase } from './db.js';

/** A project home of the test's own: the given files (path → content), and sql/ from the repository. */
export async function makeHome(
  files: Record<string, string | Buffer>,
): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'erp-home-'));
  await symlink(path.resolve('sql'), path.join(dir, 'sql'));
  for (const [rel, content] of Object.entries(files)) {
    // sql/ is the repository's own (a link): a test's SQL file there would land in the repository.
    if (rel.split('/')[0] === 'sql')
      throw new Error(`makeHome: ${rel} would be written into the repository's sql/; use makeJobsHome`);
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** An app context on a test database and home, logging nothing. */
export function testApp(db: TestDatabase, home: string): AppContext {
  return {
    pool: db.pool,
    log: pino({ level: 'silent' }),
    home,
    dataDir: path.join(home, 'var'),
    rejectsInTable: 1000,
  };
}
