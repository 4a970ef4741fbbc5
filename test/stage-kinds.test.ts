import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { UserError } from '../src/errors.js';
import { loadPipeline, pipelineSchema } from '../src/pipeline/definition.js';
import { runPipeline } from '../src/pipeline/run.js';
import { FILE_SOURCES, FORMATS, SINKS, SOURCES, TABLE_SINKS } from '../src/stages/registry.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { testApp } from './helpers/home.js';

/**
 * Stage kinds are descriptors in explicit lists (src/stages/registry.ts). The fixed-width reader is
 * the proof that a kind is one file plus one line there: everything else — the pipeline schema and
 * its JSON Schema, FILE_SOURCES, whether an import may use it — follows from its descriptor.
 */

let db: TestDatabase;
let home: TestHome;

const STATEMENT = [
  'BANK STATEMENT 2026-11',
  'A-1     0000012.50Steel bolt',
  '',
  'A-2     0000000.25Hex nut   ',
  'B-9     short',
  'C-3               Washer    ',
].join('\r\n');

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE public.items (sku text NOT NULL, price numeric(10,2), name text)');
  await home.link(['sql']);
  await home.write({
    'pipelines/statement.yaml': `
source: { kind: file, path: 'in/*.txt' }
format:
  kind: fixed-width
  skip_lines: 1
  columns:
    - { name: sku, start: 1, width: 8 }
    - { name: price, start: 9, width: 10 }
    - { name: name, start: 19, width: 10 }
validate:
  fields:
    sku: { type: string, required: true }
    price: { type: decimal, precision: 10, scale: 2 }
    name: { type: string }
sink: { kind: postgres, table: public.items, mode: append }
`,
    'in/statement.txt': STATEMENT,
  });
});

describe('the fixed-width reader', () => {
  it('loads each line as a record of character ranges, trimmed, and rejects a short line by its number', async () => {
    const def = await loadPipeline(home.dir, 'statement');
    const r = await runPipeline(testApp(db, home.dir), def, {});
    expect(r.status).toBe('succeeded');
    expect(r.files[0]).toMatchObject({ status: 'loaded', rowsRead: 4, rowsLoaded: 3, rowsRejected: 1 });
    expect(r.files[0]!.rejects).toEqual([
      expect.objectContaining({
        line: 5,
        field: null,
        reason: 'the line has 13 characters; the columns need 28',
      }),
    ]);
    const { rows } = await db.pool.query('SELECT sku, price::text, name FROM items ORDER BY sku');
    expect(rows).toEqual([
      { sku: 'A-1', price: '12.50', name: 'Steel bolt' },
      { sku: 'A-2', price: '0.25', name: 'Hex nut' },
      { sku: 'C-3', price: null, name: 'Washer' },
    ]);
  });

  it('rejects a line holding a byte invalid in its encoding, naming the line and the bytes', async () => {
    await db.pool.query('TRUNCATE items');
    await writeFile(
      path.join(home.dir, 'in/statement.txt'),
      Buffer.concat([
        Buffer.from('TITLE\nD-1     0000001.00Caf'),
        Buffer.from([0xe9]),
        Buffer.from('     \n'),
      ]),
    );
    const def = await loadPipeline(home.dir, 'statement');
    const r = await runPipeline(testApp(db, home.dir), def, { force: true });
    expect(r.files[0]!.rejects).toEqual([
      expect.objectContaining({
        line: 2,
        reason: expect.stringContaining('invalid utf-8 byte sequence \\xE9'),
      }),
    ]);
  });

  it('is refused in an export, which needs a format that writes', async () => {
    await writeFile(
      path.join(home.dir, 'pipelines/statement-out.yaml'),
      `source: { kind: postgres, sql: 'SELECT 1 AS one' }
format: { kind: fixed-width, columns: [{ name: one, start: 1, width: 3 }] }
sink: { kind: file, dir: var/out, name: 'x.{ext}' }
`,
    );
    const err = await loadPipeline(home.dir, 'statement-out').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/statement-out\.yaml.*format\.kind.*an export one that writes/s);
  });
});

describe('the stage lists', () => {
  it('are where the pipeline schema, its JSON Schema and FILE_SOURCES come from', () => {
    const json = JSON.stringify(z.toJSONSchema(pipelineSchema, { io: 'input' }));
    for (const k of [...SOURCES, ...FORMATS, ...SINKS]) expect(json).toContain(`"const":"${k.kind}"`);
    expect(FILE_SOURCES).toEqual(SOURCES.filter((k) => k.role === 'file source').map((k) => k.kind));
    expect(TABLE_SINKS).toEqual(SINKS.filter((k) => k.role === 'table sink').map((k) => k.kind));
  });

  it("match the README's stage table, kind for kind", () => {
    const readme = readFileSync('README.md', 'utf8');
    const table = readme.slice(readme.indexOf('### Stages'), readme.indexOf('| `validate` |'));
    const listed: Record<string, string[]> = {};
    let stage = '';
    for (const m of table.matchAll(/^\| (`(\w+)`)? *\| `([\w-]+)` \|/gm)) {
      stage = m[2] ?? stage;
      (listed[stage] ??= []).push(m[3]!);
    }
    expect(listed).toEqual({
      source: SOURCES.map((k) => k.kind),
      format: FORMATS.map((k) => k.kind),
    });
    const sinks = readme.slice(readme.indexOf('| `sink` |'), readme.indexOf('| `rejects` |'));
    expect([...sinks.matchAll(/^\| (?:`sink`)? *\| `([\w-]+)` \|/gm)].map((m) => m[1])).toEqual(
      SINKS.map((k) => k.kind),
    );
  });
});
