import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import { type FileResult } from '../src/pipeline/result.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { makeHome, testApp } from './helpers/home.js';

/** Strict decoding of CSV input: a bad byte is a row reject naming where it is, in validate and load alike. */

const PIPELINE = (format = ''): string => `
description: people
source: { kind: file, path: 'in/*.csv' }
format: { kind: csv${format} }
validate:
  fields:
    id: { type: int, required: true }
    name: { type: string }
    note: { type: string }
sink: { kind: postgres, table: public.people, mode: append }
`;

let db: TestDatabase;
let home: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  db = await createTestDatabase('csv_encoding');
  await db.pool.query('CREATE TABLE people (id int, name text, note text)');
  home = await makeHome({ 'pipelines/people.yaml': PIPELINE(), 'in/.keep': '' });
});
afterAll(async () => {
  await db?.drop();
  await home?.remove();
});
beforeEach(async () => {
  await db.pool.query('TRUNCATE people; TRUNCATE runner.ingested_files, runner.runs CASCADE');
  await writeFile(path.join(home.dir, 'pipelines/people.yaml'), PIPELINE());
});

async function runOn(bytes: Buffer, dryRun = false, name = 'in.csv'): Promise<FileResult> {
  const file = path.join(home.dir, 'in', name);
  await writeFile(file, bytes);
  const def = await loadPipeline(home.dir, 'people');
  const r = await runPipeline(testApp(db, home.dir), def, { files: [file], dryRun, force: true });
  return r.files[0]!;
}

const people = async (): Promise<unknown[]> =>
  (await db.pool.query('SELECT id, name, note FROM people ORDER BY id')).rows;

describe('CSV strict decoding', () => {
  it('rejects a row holding bytes that are not UTF-8, naming line, field, byte offset and the bytes', async () => {
    const f = await runOn(Buffer.from('id,name,note\n1,Caf\xe9,x\n2,Bob,y\n', 'latin1'));
    expect(f.status).toBe('loaded');
    expect(f.rowsRejected).toBe(1);
    expect(f.rejects[0]).toMatchObject({
      line: 2,
      field: 'name',
      value: 'Caf\\xE9',
      reason: 'invalid utf-8 byte sequence \\xE9 at byte offset 18',
    });
    expect(await people()).toEqual([{ id: 2, name: 'Bob', note: 'y' }]);
    const report = await readFile(f.rejectReport!, 'utf8');
    expect(report).toContain('Caf\\xE9');
    expect(report).not.toContain('\uFFFD');
  });

  it('loads U+FFFD in place of bad bytes only when on_invalid_encoding is replace', async () => {
    await writeFile(path.join(home.dir, 'pipelines/people.yaml'), PIPELINE(', on_invalid_encoding: replace'));
    const f = await runOn(Buffer.from('id,name,note\n1,Caf\xe9,x\n', 'latin1'));
    expect(f.rowsRejected).toBe(0);
    expect(await people()).toEqual([{ id: 1, name: 'Caf\uFFFD', note: 'x' }]);
  });

  it('reads the same bytes exactly when the pipeline declares latin1 (windows-1252)', async () => {
    await writeFile(path.join(home.dir, 'pipelines/people.yaml'), PIPELINE(', encoding: latin1'));
    const f = await runOn(Buffer.from('id,name,note\n1,Caf\xe9,\x80 5\n', 'latin1'));
    expect(f.rowsRejected).toBe(0);
    expect(await people()).toEqual([{ id: 1, name: 'Café', note: '€ 5' }]);
  });

  it('rejects a row with a NUL byte in validate and in the load alike, and loads the rest', async () => {
    const bytes = Buffer.from('id,name,note\n1,Al\0ice,x\n2,Bob,y\n', 'latin1');
    const dry = await runOn(bytes, true);
    const load = await runOn(bytes, false);
    for (const f of [dry, load]) {
      expect(f.rowsRejected).toBe(1);
      expect(f.rejects).toEqual([
        {
          file: expect.any(String),
          line: 2,
          field: 'name',
          value: 'Al\\x00ice',
          reason: 'a NUL byte (\\x00) at byte offset 17; text cannot hold NUL',
        },
      ]);
    }
    expect(load.status).toBe('loaded');
    expect(await people()).toEqual([{ id: 2, name: 'Bob', note: 'y' }]);
  });

  it('finds a bad byte whatever the chunk boundaries, in a file larger than a read', async () => {
    const good = Buffer.from(
      'id,name,note\n' + Array.from({ length: 60_000 }, (_, i) => `${i},Zoë ${i},€\n`).join(''),
    );
    const bad = Buffer.concat([good, Buffer.from('60000,x\xff\xfey,z\n', 'latin1'), good.subarray(13)]);
    const f = await runOn(bad, true);
    expect(f.rowsRejected).toBe(1);
    expect(f.rejects[0]).toMatchObject({
      line: 60_002,
      field: 'name',
      value: 'x\\xFF\\xFEy',
      reason: `invalid utf-8 byte sequence \\xFF at byte offset ${good.length + 7}`,
    });
  });
});

describe('validate and load agree', () => {
  /** Every import pipeline shipped, on every fixture file of its format in fixtures/. */
  it('on every fixture in fixtures/', async () => {
    const root = path.resolve('.');
    const shipped = await readdir(path.join(root, 'pipelines'));
    const fixtures: string[] = [];
    for (const dir of await readdir(path.join(root, 'fixtures'), { recursive: true })) {
      if (/\.(csv|xlsx)$/.test(dir)) fixtures.push(path.join(root, 'fixtures', dir));
    }
    expect(fixtures.length).toBeGreaterThan(5);
    const app = { ...testApp(db, root), dataDir: path.join(home.dir, 'var') };
    let compared = 0;
    for (const name of shipped) {
      const def = await loadPipeline(root, name.replace(/\.yaml$/, ''));
      const kind = (def.config as { format?: { kind?: string } }).format?.kind;
      if ((def.config as { source: { kind: string } }).source.kind !== 'file') continue;
      for (const file of fixtures.filter((f) => f.endsWith(`.${kind}`))) {
        const dry = await runPipeline(app, def, { files: [file], dryRun: true, force: true });
        const load = await runPipeline(app, def, { files: [file], force: true });
        const summary = (f: FileResult) => ({
          ok: f.status !== 'failed',
          rowsRead: f.rowsRead,
          rowsRejected: f.rowsRejected,
          rejects: f.rejects.map((j) => `${j.line} ${j.field} ${j.reason}`),
          message: f.message,
        });
        expect(summary(load.files[0]!), `${name} on ${file}`).toEqual(summary(dry.files[0]!));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(10);
  });
});
