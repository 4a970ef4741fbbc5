import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { workbookParts, writeZip, type ZipEntry } from './helpers/zip.js';

/**
 * Hostile workbooks, generated here in a few MB of zip, run through the built CLI
 * (`erp run … --inline`): exit 1, one line naming the file, peak RSS below 300 MB, nothing left in
 * the temp directory, the run recorded as failed.
 */
const CLI = path.resolve('dist/cli.js');
let db: TestDatabase;
let home: TestHome;

const PIPELINE = (extra: string): string => `
source: { kind: file, path: 'in/*.xlsx' }
format: { kind: xlsx${extra} }
sink: { kind: postgres, table: public.hostile, mode: append }
`;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE hostile (a text)');
  await home.link(['sql']);
  await home.write({
    'pipelines/hostile.yaml': PIPELINE(''),
    // The streaming limits, with the ratio check (which catches all of these first) out of the way.
    'pipelines/hostile-streaming.yaml': PIPELINE(
      ', max_compression_ratio: 1000000, max_uncompressed_mb: 100000',
    ),
    'pipelines/hostile-small.yaml': PIPELINE(', max_uncompressed_mb: 1, max_compression_ratio: 1000000'),
    'in/.keep': '',
  });
});

/** The parts of a workbook whose sheet is `head` + `repeat` × `times` + `tail`. */
function hostileBook(
  head: string,
  repeat: string,
  times: number,
  tail: string,
  sheetFirst = false,
): ZipEntry[] {
  const parts = workbookParts({ sheetXml: '' });
  const sheetName = 'xl/worksheets/sheet1.xml';
  const [open, close] = parts[sheetName]!.split('<sheetData></sheetData>');
  delete parts[sheetName];
  const sheet: ZipEntry = {
    name: sheetName,
    head: `${open}<sheetData>${head}`,
    repeat,
    times,
    tail: `${tail}</sheetData>${close}`,
  };
  const rest = Object.entries(parts).map(([name, data]) => ({ name, data }));
  return sheetFirst ? [sheet, ...rest] : [...rest, sheet];
}

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  peakRssMb: number;
  tempLeft: string[];
}

async function runCli(pipeline: string, file: string): Promise<Outcome> {
  const temp = await mkdtemp(path.join(tmpdir(), 'erp-hostile-tmp-'));
  try {
    const child = spawn(process.execPath, [CLI, 'run', pipeline, '--inline', '--file', file], {
      env: { ...process.env, DATABASE_URL: db.url, ERP_HOME: home.dir, TMPDIR: temp, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let peak = 0;
    const poll = setInterval(() => {
      readFile(`/proc/${child.pid}/status`, 'utf8').then(
        (s) => {
          const m = /VmHWM:\s+(\d+) kB/.exec(s);
          if (m) peak = Math.max(peak, Number(m[1]) / 1024);
        },
        () => undefined,
      );
    }, 25);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearInterval(poll);
    return { code, stdout, stderr, peakRssMb: Math.round(peak), tempLeft: await readdir(temp) };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

async function lastRunStatus(): Promise<string> {
  const r = await db.pool.query<{ status: string }>(
    'SELECT status FROM runner.runs ORDER BY id DESC LIMIT 1',
  );
  return r.rows[0]!.status;
}

async function expectFailed(
  pipeline: string,
  name: string,
  entries: ZipEntry[],
  message: RegExp,
): Promise<void> {
  await mkdir(path.join(home.dir, 'in'), { recursive: true });
  const file = path.join(home.dir, 'in', name);
  await writeZip(file, entries);
  const o = await runCli(pipeline, file);
  expect(o.code, o.stderr + o.stdout).toBe(1);
  const lines = `${o.stdout}\n${o.stderr}`.split('\n').filter((l) => message.test(l));
  expect(lines, o.stderr + o.stdout).toHaveLength(1);
  expect(o.stderr + o.stdout).not.toMatch(/\n\s+at |Fatal|RangeError|Invalid string length/);
  expect(o.peakRssMb).toBeGreaterThan(0);
  expect(o.peakRssMb).toBeLessThan(300);
  expect(o.tempLeft).toEqual([]);
  expect(await lastRunStatus()).toBe('failed');
  await rm(file);
}

const CELLS = 213_000_000; // × 15 bytes = 3.2 GB
const CHARS = 3_000_000_000;

describe('hostile workbooks', () => {
  it('a zip bomb of one huge row: refused by its compression ratio before inflating', async () => {
    await expectFailed(
      'hostile',
      'bomb.xlsx',
      hostileBook('<row r="1">', '<c><v>1</v></c>', CELLS, '</row>'),
      /bomb\.xlsx: part xl\/worksheets\/sheet1\.xml expands \d+ times .*max_compression_ratio 200/,
    );
  });

  it('the same bomb with the ratio check off: stopped by max_cells_per_row while streaming', async () => {
    await expectFailed(
      'hostile-streaming',
      'bomb-row.xlsx',
      hostileBook('<row r="1">', '<c><v>1</v></c>', CELLS, '</row>'),
      /bomb-row\.xlsx\[Data\], row 1: more than 16384 cells in the row \(max_cells_per_row\)/,
    );
  });

  it('one 3 GB cell: stopped by max_cell_chars while streaming, naming row and column', async () => {
    await expectFailed(
      'hostile-streaming',
      'cell.xlsx',
      hostileBook('<row r="1"><c r="B1" t="inlineStr"><is><t>', 'A', CHARS, '</t></is></c></row>'),
      /cell\.xlsx\[Data\], row 1, column B: the cell has more than 32767 characters \(max_cell_chars\)/,
    );
  });

  it('many shared strings: stopped by max_shared_strings', async () => {
    const parts = workbookParts({ sheetXml: '', sharedStrings: [] });
    const entries: ZipEntry[] = Object.entries(parts).map(([name, data]) =>
      name === 'xl/sharedStrings.xml'
        ? {
            name,
            head: '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">',
            repeat: '<si><t>x</t></si>',
            times: 5_000_000,
            tail: '</sst>',
          }
        : { name, data },
    );
    await expectFailed(
      'hostile-streaming',
      'strings.xlsx',
      entries,
      /strings\.xlsx: xl\/sharedStrings\.xml: more than 1000000 shared strings \(max_shared_strings\)/,
    );
  });

  it('one 3 GB shared string: stopped by max_cell_chars while streaming, naming the string', async () => {
    const parts = workbookParts({ sheetXml: '', sharedStrings: [] });
    const entries: ZipEntry[] = Object.entries(parts).map(([name, data]) =>
      name === 'xl/sharedStrings.xml'
        ? {
            name,
            head: '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>a</t></si><si><t>',
            repeat: 'A',
            times: CHARS,
            tail: '</t></si></sst>',
          }
        : { name, data },
    );
    await expectFailed(
      'hostile-streaming',
      'string.xlsx',
      entries,
      /string\.xlsx: xl\/sharedStrings\.xml, shared string 2: more than 32767 characters \(max_cell_chars\)/,
    );
  });

  it('a workbook larger than max_uncompressed_mb: refused from the declared sizes before reading', async () => {
    await expectFailed(
      'hostile-small',
      'big.xlsx',
      hostileBook('<row r="1">', '<c><v>1</v></c>', 100_000, '</row>'),
      /big\.xlsx: the workbook expands to more than 1048576 bytes \(max_uncompressed_mb\); refused before reading it/,
    );
  });

  it('a zip that declares a small sheet and inflates to 3.2 GB: stopped at the declared size', async () => {
    const entries = hostileBook('<row r="1">', '<c><v>1</v></c>', CELLS, '</row>');
    const sheet = entries.at(-1) as Extract<ZipEntry, { repeat: string }>;
    sheet.declaredSize = 4096;
    await expectFailed(
      'hostile',
      'liar.xlsx',
      entries,
      /liar\.xlsx\[Data\]: the part cannot be unzipped \(too many bytes in the stream\. expected 4096\. got at least \d+\); the file is damaged/,
    );
  });

  it('a sheet that is not UTF-8 (a Latin-1 é): the file fails naming the sheet and the byte offset', async () => {
    const parts = workbookParts({
      sheetXml: '<row r="1"><c r="A1" t="inlineStr"><is><t>Caf\u00e9</t></is></c></row>',
    });
    const sheet = Buffer.from(parts['xl/worksheets/sheet1.xml']!.replace('Caf\u00e9', 'Caf\xe9'), 'latin1');
    const offset = sheet.indexOf(0xe9);
    await expectFailed(
      'hostile',
      'latin1.xlsx',
      Object.entries(parts).map(([name, data]) => ({
        name,
        data: name.endsWith('sheet1.xml') ? sheet : data,
      })),
      new RegExp(
        `latin1\\.xlsx\\[Data\\]: invalid UTF-8 byte sequence \\\\xE9 at byte offset ${offset} of the part; an xlsx part must be UTF-8`,
      ),
    );
  });

  it('a NUL in the shared strings: the file fails as malformed XML, naming the part', async () => {
    const parts = workbookParts({
      sheetXml: '<row r="1"><c r="A1" t="s"><v>0</v></c></row>',
      sharedStrings: ['Al\u0000ice'],
    });
    await expectFailed(
      'hostile',
      'nul.xlsx',
      Object.entries(parts).map(([name, data]) => ({ name, data })),
      /nul\.xlsx: xl\/sharedStrings\.xml is malformed: .*disallowed character/,
    );
  });

  it('the bomb stored before workbook.xml: nothing is spooled to the temp directory', async () => {
    await expectFailed(
      'hostile-streaming',
      'first.xlsx',
      hostileBook('<row r="1">', '<c><v>1</v></c>', CELLS, '</row>', true),
      /first\.xlsx\[Data\], row 1: more than 16384 cells in the row/,
    );
  });
});
