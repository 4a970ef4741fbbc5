/**
 * Project homes for tests: a temporary ERP_HOME (the `home` fixture of fixtures.ts makes one per
 * file; a test that needs another calls createTestHome), and an app context on one.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { AppContext } from '../../src/app.js';
import type { TestDatabase } from './db.js';

/** A temporary project home. */
export interface TestHome {
  /** The home directory: ERP_HOME. */
  dir: string;
  /** `var/` inside it: the ERP_DATA_DIR an app on this home uses by default. */
  dataDir: string;
  /** Writes `files` (path relative to the home → content), making their directories. */
  write(files: Record<string, string | Buffer>): Promise<void>;
  /** Links the repository's own directories (say `sql`, `pipelines`) into the home, by name. */
  link(dirs: string[]): Promise<void>;
}

/** A temporary home; `remove` deletes it. */
export async function createTestHome(label: string): Promise<TestHome & { remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `erp-${label}-`));
  const linked = new Set<string>();
  return {
    dir,
    dataDir: path.join(dir, 'var'),
    async write(files) {
      for (const [rel, content] of Object.entries(files)) {
        // A linked directory is the repository's own: a test's file there would land in the repository.
        const top = rel.split('/')[0]!;
        if (linked.has(top))
          throw new Error(`home.write: ${rel} would be written into the repository's ${top}/`);
        const file = path.join(dir, rel);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, content);
      }
    },
    async link(dirs) {
      for (const d of dirs) {
        await symlink(path.resolve(d), path.join(dir, d));
        linked.add(d);
      }
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
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
