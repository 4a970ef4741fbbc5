import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import { erp } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/**
 * Input files come only from ERP_HOME and ERP_INPUT_DIRS: `--file` and `source.path` outside them,
 * through `..` or a symbolic link, are refused before the file is opened, naming the allowed
 * directories, and no error line quotes a byte of such a file.
 */

let db: TestDatabase;
let home: TestHome;
let outside: string;
const SECRET = 'root:SECRET-HASH:19000:0:99999:7:::';

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE codes (code text NOT NULL)');
  outside = await mkdtemp(path.join(os.tmpdir(), 'erp-outside-'));
  await writeFile(path.join(outside, 'shadow'), `${SECRET}\n`);
  await writeFile(path.join(outside, 'codes.csv'), 'code\nA\nB\n');
  await home.link(['sql']);
  await home.write({
    'pipelines/codes.yaml': `
source: { kind: file, path: 'in/*.csv' }
format: { kind: csv, header: false, columns: [code] }
validate:
  fields:
    code: { type: string, required: true, max_length: 3 }
sink: { kind: postgres, table: public.codes }
`,
    'in/ok.csv': 'A\n',
  });
  await symlink(path.join(outside, 'shadow'), path.join(home.dir, 'in', 'link.csv'));
});

afterAll(async () => {
  await rm(outside, { recursive: true, force: true });
});

async function run(files: string[], inputDirs?: string[]) {
  const app = { ...testApp(db, home.dir), ...(inputDirs ? { inputDirs } : {}) };
  return runPipeline(app, await loadPipeline(home.dir, 'codes'), { files, dryRun: true });
}

describe('input files', () => {
  it('refuses a file outside ERP_HOME, by path, by .. or by a link, naming the allowed roots', async () => {
    for (const file of [
      path.join(outside, 'shadow'),
      path.join(home.dir, '..', path.basename(outside), 'shadow'),
      path.join(home.dir, 'in', 'link.csv'),
    ]) {
      const r = await run([file]);
      expect(r.status).toBe('failed');
      expect(r.error).toBe(
        `${file}: not inside an allowed input directory (${home.dir}); input files come from ERP_HOME or a directory listed in ERP_INPUT_DIRS`,
      );
      expect(JSON.stringify(r)).not.toContain('SECRET');
    }
  });

  it('refuses a source.path glob that reaches outside, and reads a directory listed in ERP_INPUT_DIRS', async () => {
    // The glob of the pipeline itself picks up the link: refused too.
    const all = await runPipeline(testApp(db, home.dir), await loadPipeline(home.dir, 'codes'), {
      dryRun: true,
    });
    expect(all.status).toBe('failed');
    expect(JSON.stringify(all)).not.toContain('SECRET');
    const ok = await run([path.join(outside, 'codes.csv')], [outside]);
    expect(ok.files.map((f) => [f.status, f.rowsRead])).toEqual([['validated', 3]]);
  });

  it('erp validate --file ../../etc/passwd: refused, exit non-zero, no line of the file printed', async () => {
    const rel = path.relative(home.dir, path.join(outside, 'shadow'));
    const r = await erp(['validate', 'codes', '--file', rel], { DATABASE_URL: db.url, ERP_HOME: home.dir });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('not inside an allowed input directory');
    expect(r.stdout + r.stderr).not.toContain('SECRET');
  });
});
