import { once } from 'node:events';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  checkOutputName,
  createFileSink,
  fileSinkSchema,
  renderOutputName,
} from '../src/stages/sink-file.js';
import type { StageContext } from '../src/stages/types.js';
import { test } from './helpers/fixtures.js';

let home: string;
let ctx: StageContext;

test.beforeAll(async ({ home: h }) => {
  home = h.dir;
  ctx = {
    home,
    pool: null as unknown as pg.Pool,
    log: pino({ level: 'silent' }),
    signal: new AbortController().signal,
  };
});

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(home, 'out-'));
  return path.relative(home, dir);
}

function sink(dir: string, overrides: Record<string, unknown> = {}) {
  return createFileSink(
    fileSinkSchema.parse({ kind: 'file', dir, name: 'tb-{period}.{ext}', ...overrides }),
    ctx,
  );
}

async function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

describe('file sink', () => {
  it('writes under a temporary name and shows the file only on commit', async () => {
    const dir = await freshDir();
    const s = sink(dir);
    const name = s.outputName({ period: '2026-11', ext: 'csv' });
    expect(name).toBe('tb-2026-11.csv');
    const out = await s.open(name);
    await write(out.stream, 'a,b\n');
    const during = await readdir(path.join(home, dir));
    expect(during).toHaveLength(1);
    expect(during[0]).toMatch(/^\.tb-2026-11\.csv\.[0-9a-f]{12}\.part$/);
    out.stream.end('1,2\n');
    const final = await out.commit();
    expect(final).toBe(path.join(home, dir, 'tb-2026-11.csv'));
    expect(await readdir(path.join(home, dir))).toEqual(['tb-2026-11.csv']);
    expect(await readFile(final, 'utf8')).toBe('a,b\n1,2\n');
  });

  it('refuses to overwrite, both at open and when the file appears while writing', async () => {
    const dir = await freshDir();
    const s = sink(dir);
    await writeFile(path.join(home, dir, 'x.csv'), 'old');
    await expect(s.open('x.csv')).rejects.toThrow(
      new UserError(`${path.join(home, dir, 'x.csv')} already exists; set overwrite: true to replace it`),
    );

    const out = await s.open('y.csv');
    out.stream.end('new');
    // Another run lands the same name first.
    await writeFile(path.join(home, dir, 'y.csv'), 'theirs');
    await expect(out.commit()).rejects.toThrow(/y\.csv already exists; set overwrite: true/);
    expect(await readFile(path.join(home, dir, 'y.csv'), 'utf8')).toBe('theirs');
    expect(await readdir(path.join(home, dir))).toEqual(['x.csv', 'y.csv']);
  });

  it('replaces an existing file with overwrite: true', async () => {
    const dir = await freshDir();
    await writeFile(path.join(home, dir, 'x.csv'), 'old');
    const out = await sink(dir, { overwrite: true }).open('x.csv');
    out.stream.end('new');
    await out.commit();
    expect(await readFile(path.join(home, dir, 'x.csv'), 'utf8')).toBe('new');
    expect(await readdir(path.join(home, dir))).toEqual(['x.csv']);
  });

  it('leaves nothing behind on abort', async () => {
    const dir = await freshDir();
    const out = await sink(dir).open('gone.csv');
    await write(out.stream, 'partial');
    await out.abort();
    expect(await readdir(path.join(home, dir))).toEqual([]);
    await out.abort();
    await expect(out.commit()).rejects.toThrow(/already committed or aborted/);
  });

  it('accepts only plain file names', async () => {
    const dir = await freshDir();
    const s = sink(dir);
    for (const bad of [
      '../escape.csv',
      'a/b.csv',
      'a\\b.csv',
      '..',
      '.',
      '',
      '.hidden',
      'nul\0.csv',
      'x'.repeat(300),
    ]) {
      await expect(s.open(bad)).rejects.toBeInstanceOf(UserError);
    }
    expect(() => renderOutputName('{period}.csv', { period: '../../etc/passwd' })).toThrow(
      /contains a path separator/,
    );
    expect(checkOutputName('ledger 2026-11.xlsx')).toBe('ledger 2026-11.xlsx');
    expect(await readdir(path.join(home, dir))).toEqual([]);
  });

  it('fills the name template and refuses unknown or missing placeholders', () => {
    expect(renderOutputName('x-{date}-{run_id}.{ext}', { date: '2026-11-30', run_id: 42, ext: 'xlsx' })).toBe(
      'x-2026-11-30-42.xlsx',
    );
    expect(renderOutputName('x-{date}.csv', {})).toMatch(/^x-\d{4}-\d{2}-\d{2}\.csv$/);
    expect(() => renderOutputName('x-{period}.csv', {})).toThrow(
      "the output name 'x-{period}.csv' uses {period}, but the run has no period",
    );
    const parsed = fileSinkSchema.safeParse({ kind: 'file', dir: 'out', name: 'x-{month}.csv' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toMatch(
      /unknown placeholder; allowed: \{date\}, \{period\}, \{as_of\}, \{run_id\}, \{ext\}/,
    );
    expect(fileSinkSchema.parse({ kind: 'file', dir: 'out', name: 'a.csv' }).overwrite).toBe(false);
  });

  it('says when the directory is missing', async () => {
    await expect(sink('no/such/dir').open('a.csv')).rejects.toThrow(
      /output directory .*no\/such\/dir does not exist/,
    );
    expect(sink('exports').describe()).toBe('file exports/tb-{period}.{ext}');
  });
});
