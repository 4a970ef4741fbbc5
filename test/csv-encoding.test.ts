import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadPipeline } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import { type FileResult } from '../src/pipeline/result.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

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

const execFileAsync = promisify(execFile);

let db: TestDatabase;
let home: TestHome;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE people (id int, name text, note text)');
  await home.link(['sql']);
  await home.write({ 'pipelines/people.yaml': PIPELINE(), 'in/.keep': '' });
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
  /** One bad row between two good ones; `bad` is the raw second line, `field` the column it spoils. */
  const CASES: { name: string; encoding?: string; bad: Buffer; field: string; reason: RegExp }[] = [
    {
      name: 'a Latin-1 é',
      bad: Buffer.from('2,Caf\xe9,x', 'latin1'),
      field: 'name',
      reason: /\\xE9 at byte offset 27$/,
    },
    {
      name: 'a lone continuation byte',
      bad: Buffer.from('2,a\x80b,x', 'latin1'),
      field: 'name',
      reason: /\\x80 at/,
    },
    {
      name: 'a sequence cut short by a delimiter',
      bad: Buffer.from('2,\xe2\x82,x', 'latin1'),
      field: 'name',
      reason: /\\xE2\\x82 at/,
    },
    {
      name: 'an overlong encoding',
      bad: Buffer.from('2,\xc0\xaf,x', 'latin1'),
      field: 'name',
      reason: /\\xC0 at/,
    },
    {
      name: 'a surrogate encoded in UTF-8',
      bad: Buffer.from('2,\xed\xa0\x80,x', 'latin1'),
      field: 'name',
      reason: /\\xED at/,
    },
    {
      name: 'a code point above U+10FFFF',
      bad: Buffer.from('2,\xf4\x90\x80\x80,x', 'latin1'),
      field: 'name',
      reason: /\\xF4 at/,
    },
    {
      name: 'a byte never valid in UTF-8',
      bad: Buffer.from('2,x,\xff', 'latin1'),
      field: 'note',
      reason: /\\xFF at/,
    },
    {
      name: 'a NUL',
      bad: Buffer.from('2,x,a\0b', 'latin1'),
      field: 'note',
      reason: /NUL byte \(\\x00\) at byte offset 27; text cannot hold NUL/,
    },
    {
      name: 'a bad byte in a quoted field over two lines',
      bad: Buffer.from('2,"two\nlines \xe9",x', 'latin1'),
      field: 'name',
      reason: /\\xE9 at/,
    },
    {
      name: 'a lone surrogate in UTF-16LE',
      encoding: 'utf-16le',
      bad: Buffer.concat([
        Buffer.from('2,a', 'utf16le'),
        Buffer.from([0x00, 0xd8]),
        Buffer.from(',x', 'utf16le'),
      ]),
      field: 'name',
      reason: /invalid utf-16le byte sequence \\x00\\xD8 at/,
    },
  ];
  const enc = (text: string, encoding = 'utf-8'): Buffer =>
    Buffer.from(text, encoding === 'utf-16le' ? 'utf16le' : 'utf8');

  it.each(CASES)('on $name: the row is rejected by both, naming its field, and the rest loads', async (c) => {
    const pipeline = c.encoding ? `, encoding: ${c.encoding}` : '';
    await writeFile(path.join(home.dir, 'pipelines/people.yaml'), PIPELINE(pipeline));
    const bytes = Buffer.concat([
      enc('id,name,note\n1,Ann,é\n', c.encoding),
      c.bad,
      enc('\n3,Bob,😀\n', c.encoding),
    ]);
    const dry = await runOn(bytes, true);
    const load = await runOn(bytes, false);
    const summary = (f: FileResult) => ({
      status: f.status,
      rowsRead: f.rowsRead,
      rowsRejected: f.rowsRejected,
      rejects: f.rejects.map((j) => ({ line: j.line, field: j.field, value: j.value, reason: j.reason })),
    });
    expect(summary(dry)).toEqual({ ...summary(load), status: 'validated' });
    expect(load.status).toBe('loaded');
    expect(load.rejects).toHaveLength(1);
    expect(load.rejects[0]).toMatchObject({ line: 3, field: c.field });
    expect(load.rejects[0]!.reason).toMatch(c.reason);
    expect(load.rejects[0]!.value).toMatch(/\\x[0-9A-F]{2}/);
    expect(load.rejects[0]!.value).not.toContain('\uFFFD');
    expect(await people()).toEqual([
      { id: 1, name: 'Ann', note: 'é' },
      { id: 3, name: 'Bob', note: '😀' },
    ]);
  });

  it('erp validate and erp run print the same rejects for a file holding every one of them', async () => {
    const bytes = Buffer.concat([
      Buffer.from('id,name,note\n1,Ann,é\n'),
      ...CASES.filter((c) => !c.encoding).flatMap((c, i) => [
        Buffer.from(c.bad.toString('latin1').replace(/^2,/, `${i + 10},`), 'latin1'),
        Buffer.from('\n'),
      ]),
      // A row with a field too many as well: rejected for that, its bad bytes escaped all the same.
      Buffer.from('4,Caf\xe9,x,extra\n', 'latin1'),
      Buffer.from('3,Bob,😀\n'),
    ]);
    await writeFile(
      path.join(home.dir, 'pipelines/people.yaml'),
      PIPELINE('') + 'rejects: { max_reject_rate: 1 }\n',
    );
    const file = path.join(home.dir, 'in', 'all-errors.csv');
    await writeFile(file, bytes);
    const cli = (args: string[]) =>
      execFileAsync(process.execPath, [path.resolve('dist/cli.js'), ...args, '--file', file], {
        env: { ...process.env, DATABASE_URL: db.url, ERP_HOME: home.dir, LOG_LEVEL: 'warn' },
      }).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
      );
    const validate = await cli(['validate', 'people']);
    const run = await cli(['run', 'people', '--inline']);
    const rejectLines = (out: string) => out.split('\n').filter((l) => /^\s+line \d+[,:]/.test(l));
    const n = CASES.filter((c) => !c.encoding).length + 1;
    expect(rejectLines(validate.out), validate.out).toHaveLength(n);
    expect(validate.out).toContain('value "4,Caf\\\\xE9,x,extra": expected 3 fields, found 4');
    expect(validate.out).not.toContain('\uFFFD');
    expect(rejectLines(run.out), run.out).toEqual(rejectLines(validate.out));
    expect(validate.out).toMatch(new RegExp(`valid 2, rejected ${n}`));
    expect(run.out).toMatch(new RegExp(`loaded 2, rejected ${n}`));
    expect(run.code).toBe(validate.code);
  });

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
