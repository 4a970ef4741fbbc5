import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { promisify } from 'node:util';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, UserError } from '../src/errors.js';
import { createXlsxFormat, xlsxFormatSchema, type XlsxFormatConfig } from '../src/stages/format-xlsx.js';
import type { Batch, Cell, ColumnType, Reject } from '../src/stages/types.js';
import { classifyNumberFormat, columnLetter, excelSerialToIso, plainNumber } from '../src/xlsx/cells.js';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'erp-xlsx-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function config(overrides: Record<string, unknown> = {}): XlsxFormatConfig {
  return xlsxFormatSchema.parse({ kind: 'xlsx', ...overrides });
}

interface ReadResult {
  columns: readonly string[];
  rows: Cell[][];
  lines: number[];
  rejects: Reject[];
}

async function readXlsx(file: string, overrides: Record<string, unknown> = {}): Promise<ReadResult> {
  const rejects: Reject[] = [];
  const out: ReadResult = { columns: [], rows: [], lines: [], rejects };
  const format = createXlsxFormat(config(overrides));
  for await (const batch of format.read(createReadStream(file), path.basename(file), (r) =>
    rejects.push(r),
  )) {
    out.columns = batch.columns;
    out.rows.push(...batch.rows);
    out.lines.push(...batch.lines);
  }
  return out;
}

async function writeWorkbook(name: string, build: (wb: ExcelJS.Workbook) => void): Promise<string> {
  const wb = new ExcelJS.Workbook();
  build(wb);
  const file = path.join(dir, name);
  await wb.xlsx.writeFile(file);
  return file;
}

/** The text of one part of a zip, via Info-ZIP's unzip. */
async function unzipPart(file: string, part: string): Promise<string> {
  const { stdout } = await run('unzip', ['-p', file, part], { maxBuffer: 1 << 26 });
  return stdout;
}

/** Rebuilds `src` as `dest` with its parts in `order` (first), optionally rewriting some. */
async function repack(
  src: string,
  dest: string,
  order: string[],
  edit: Record<string, (xml: string) => string> = {},
): Promise<void> {
  const work = await mkdtemp(path.join(dir, 'repack-'));
  await run('unzip', ['-q', '-o', src, '-d', work]);
  for (const [part, fn] of Object.entries(edit)) {
    const p = path.join(work, part);
    await writeFile(p, fn(await readFile(p, 'utf8')));
  }
  const { stdout } = await run('unzip', ['-Z1', src]);
  const parts = stdout.split('\n').filter((p) => p !== '' && !p.endsWith('/'));
  const ordered = [...order, ...parts.filter((p) => !order.includes(p))];
  await rm(dest, { force: true });
  await run('zip', ['-q', '-X', path.resolve(dest), ...ordered], { cwd: work });
}

/** A workbook from hand-written XML parts, for cases exceljs cannot write. */
async function handmade(
  name: string,
  sheetData: string,
  opts: {
    sharedStrings?: string[];
    numFmts?: string;
    cellXfs?: string;
    date1904?: boolean;
    target?: string;
  } = {},
): Promise<string> {
  const work = await mkdtemp(path.join(dir, 'hand-'));
  const ns = 'http://schemas.openxmlformats.org/spreadsheetml/2006/main';
  const rel = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';
  const parts: Record<string, string> = {
    '[Content_Types].xml': `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>`,
    '_rels/.rels': `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="${rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>`,
    'xl/workbook.xml': `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="${ns}" xmlns:r="${rel}"><workbookPr${opts.date1904 ? ' date1904="1"' : ''}/><sheets><sheet name="Hand" sheetId="1" r:id="rId1"/></sheets></workbook>`,
    'xl/_rels/workbook.xml.rels': `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="${rel}/worksheet" Target="${opts.target ?? 'worksheets/sheet1.xml'}"/><Relationship Id="rId2" Type="${rel}/styles" Target="styles.xml"/><Relationship Id="rId3" Type="${rel}/sharedStrings" Target="sharedStrings.xml"/></Relationships>`,
    'xl/styles.xml': `<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="${ns}">${opts.numFmts ?? ''}<fonts count="1"><font/></fonts><fills count="1"><fill/></fills><borders count="1"><border/></borders><cellXfs>${opts.cellXfs ?? '<xf numFmtId="0"/>'}</cellXfs></styleSheet>`,
    'xl/sharedStrings.xml': `<?xml version="1.0" encoding="UTF-8"?><sst xmlns="${ns}">${(opts.sharedStrings ?? []).join('')}</sst>`,
    'xl/worksheets/sheet1.xml': `<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="${ns}"><sheetData>${sheetData}</sheetData></worksheet>`,
  };
  for (const [p, xml] of Object.entries(parts)) {
    await mkdir(path.dirname(path.join(work, p)), { recursive: true });
    await writeFile(path.join(work, p), xml);
  }
  const file = path.join(dir, name);
  await run('zip', ['-q', '-X', file, ...Object.keys(parts)], { cwd: work });
  return file;
}

describe('xlsx reader: workbooks written by exceljs', () => {
  let file: string;
  beforeAll(async () => {
    file = await writeWorkbook('typed.xlsx', (wb) => {
      wb.addWorksheet('Cover').addRow(['not this one']);
      const ws = wb.addWorksheet('Items');
      ws.addRow(['id', 'name', 'price', 'on', 'at', 'active', 'calc', 'label', 'note']);
      ws.addRow([
        1,
        'Müller & Söhne',
        12.5,
        new Date(Date.UTC(2026, 10, 30)),
        new Date(Date.UTC(2026, 10, 30, 10, 15, 30)),
        true,
        { formula: 'C2*2', result: 25 },
        { richText: [{ text: 'rich ' }, { font: { bold: true }, text: 'text' }] },
        { text: 'our site', hyperlink: 'https://example.com' },
      ]);
      ws.addRow([]);
      ws.addRow([
        2,
        'Bolt',
        1e21,
        null,
        null,
        false,
        { formula: 'C4>0', result: true },
        { formula: 'B4&"!"', result: 'Bolt!' },
      ]);
      ws.addRow([
        3,
        '=not a formula',
        0.1 + 0.2,
        null,
        null,
        null,
        { formula: 'NA()', result: { error: '#N/A' } },
      ]);
      ws.addRow([
        4,
        'tiny',
        1e-7,
        null,
        null,
        null,
        { formula: '1/0', result: { error: '#DIV/0!' } },
        null,
        'x',
      ]);
      ws.getCell('D2').numFmt = 'yyyy-mm-dd';
      ws.getCell('E2').numFmt = 'yyyy-mm-dd hh:mm:ss';
    });
  });

  it('reads the chosen sheet as COPY-ready text with the sheet row numbers', async () => {
    const r = await readXlsx(file, { sheet: 'Items' });
    expect(r.columns).toEqual(['id', 'name', 'price', 'on', 'at', 'active', 'calc', 'label', 'note']);
    expect(r.rows[0]).toEqual([
      '1',
      'Müller & Söhne',
      '12.5',
      '2026-11-30',
      '2026-11-30T10:15:30',
      'true',
      '25',
      'rich text',
      'our site',
    ]);
    // Row 3 is empty and skipped; trailing empty cells are NULL.
    expect(r.rows[1]).toEqual([
      '2',
      'Bolt',
      '1000000000000000000000',
      null,
      null,
      'false',
      'true',
      'Bolt!',
      null,
    ]);
    expect(r.lines).toEqual([2, 4]);
  });

  it('rejects error cells naming the file, sheet, row and column letter', async () => {
    const r = await readXlsx(file, { sheet: 2 });
    expect(r.rejects).toEqual([
      {
        file: 'typed.xlsx[Items]',
        line: 5,
        field: 'calc',
        value: '#N/A',
        reason: 'row 5, column G: the cell holds the error #N/A (formula =NA())',
      },
      {
        file: 'typed.xlsx[Items]',
        line: 6,
        field: 'calc',
        value: '#DIV/0!',
        reason: 'row 6, column G: the cell holds the error #DIV/0! (formula =1/0)',
      },
    ]);
  });

  it('reads by position, with explicit columns and skipped rows', async () => {
    const r = await readXlsx(file, {
      sheet: 2,
      skip_rows: 1,
      header: false,
      columns: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'],
    });
    expect(r.lines).toEqual([2, 4]);
    const renamed = await readXlsx(file, {
      sheet: 'Items',
      columns: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'],
    });
    expect(renamed.columns[0]).toBe('a');
    expect(renamed.rows).toHaveLength(2);
  });

  it('says which sheets exist when the sheet is missing', async () => {
    await expect(readXlsx(file, { sheet: 'Summary' })).rejects.toThrow(
      new UserError("typed.xlsx: the workbook has no sheet 'Summary'; its sheets are: 'Cover', 'Items'"),
    );
    await expect(readXlsx(file, { sheet: 3 })).rejects.toThrow(
      /has 2 sheets, so sheet 3 does not exist; its sheets are: 'Cover', 'Items'/,
    );
  });

  it('reads dates of a 1904-system workbook', async () => {
    const f = await writeWorkbook('mac.xlsx', (wb) => {
      wb.properties.date1904 = true;
      const ws = wb.addWorksheet('Mac');
      ws.addRow(['day', 'at']);
      ws.addRow([new Date(Date.UTC(2026, 10, 30)), new Date(Date.UTC(1999, 11, 31, 23, 59, 59))]);
    });
    expect(await unzipPart(f, 'xl/workbook.xml')).toContain('date1904="1"');
    const r = await readXlsx(f);
    expect(r.rows).toEqual([['2026-11-30', '1999-12-31T23:59:59']]);
  });

  it('keeps multi-byte characters that straddle chunk boundaries (exceljs turns some into U+FFFD)', async () => {
    const f = await writeWorkbook('utf8.xlsx', (wb) => {
      const ws = wb.addWorksheet('U');
      ws.addRow(['text', 'n']);
      for (let i = 0; i < 20000; i++) ws.addRow([`Müller-Lüdenscheidt ${i} 日本語テキスト`, i]);
    });
    const r = await readXlsx(f);
    expect(r.rows).toHaveLength(20000);
    expect(r.rows.filter((row) => row[0] !== `Müller-Lüdenscheidt ${row[1]} 日本語テキスト`)).toEqual([]);
  });

  it('reads a workbook whose metadata parts come after the sheet, and absolute relationship targets', async () => {
    const moved = path.join(dir, 'reordered.xlsx');
    await repack(
      file,
      moved,
      [
        'xl/sharedStrings.xml',
        'xl/_rels/workbook.xml.rels',
        'xl/worksheets/sheet2.xml',
        'xl/worksheets/sheet1.xml',
      ],
      {
        'xl/_rels/workbook.xml.rels': (xml) =>
          xml.replace(/Target="worksheets\//g, 'Target="/xl/worksheets/'),
      },
    );
    const { stdout } = await run('unzip', ['-Z1', moved]);
    const order = stdout.split('\n');
    expect(order.indexOf('xl/worksheets/sheet2.xml')).toBeLessThan(order.indexOf('xl/styles.xml'));
    expect(order.indexOf('xl/worksheets/sheet2.xml')).toBeLessThan(order.indexOf('xl/workbook.xml'));
    const r = await readXlsx(moved, { sheet: 'Items' });
    expect(r.rows[0]!.slice(0, 5)).toEqual([
      '1',
      'Müller & Söhne',
      '12.5',
      '2026-11-30',
      '2026-11-30T10:15:30',
    ]);
    expect(r.rejects).toHaveLength(2);
  });
});

describe('xlsx reader: hand-written XML', () => {
  it('reads every cell type the format defines', async () => {
    const f = await handmade(
      'kinds.xlsx',
      '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="inlineStr"><is><t>c</t></is></c><c r="D1" t="str"><v>d</v></c><c r="E1" t="str"><v>e</v></c><c r="F1" t="str"><v>f</v></c><c r="G1" t="str"><v>g</v></c><c r="H1" t="str"><v>h</v></c></row>' +
        '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="inlineStr"><is><r><t>in</t></r><r><rPr><b/></rPr><t xml:space="preserve">line </t></r><r><t>rich</t></r></is></c>' +
        '<c r="C2" t="d"><v>2026-11-30T00:00:00Z</v></c><c r="D2" s="1"><v>0.4375</v></c><c r="E2" s="2"><v>1.5</v></c><c r="F2" s="3"><v>46356.75</v></c>' +
        '<c r="G2" t="b"><f>TRUE()</f><v>1</v></c><c r="H2" t="str"><f>"a"&amp;"b"</f><v>a&amp;b</v></c></row>' +
        '<row r="4"><c r="A4" t="s"><v>3</v></c><c r="B4" t="str"><v>line_x000D_break</v></c><c r="C4" t="d"><v>2026-11-30T08:00:00</v></c></row>' +
        '<row r="5"><c r="A5"><f>SUM(1,2)</f></c></row>' +
        '<row r="6"><c r="A6" t="s"><v>99</v></c><c r="J6" t="inlineStr"><is><t>stray</t></is></c></row>',
      {
        sharedStrings: [
          '<si><t>a</t></si>',
          '<si><t>b</t></si>',
          '<si><r><t>Tōkyō </t></r><r><rPr><i/></rPr><t>東京</t></r><rPh sb="0" eb="2"><t>トウキョウ</t></rPh></si>',
          '<si><t>x</t></si>',
        ],
        numFmts:
          '<numFmts count="2"><numFmt numFmtId="164" formatCode="[h]:mm:ss"/><numFmt numFmtId="165" formatCode="dd/mm/yyyy\\ hh:mm"/></numFmts>',
        cellXfs: '<xf numFmtId="0"/><xf numFmtId="20"/><xf numFmtId="164"/><xf numFmtId="165"/>',
      },
    );
    const r = await readXlsx(f);
    expect(r.columns).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    expect(r.rows).toEqual([
      [
        'Tōkyō 東京',
        'inline rich',
        '2026-11-30',
        '10:30:00',
        '36:00:00',
        '2026-11-30T18:00:00',
        'true',
        'a&b',
      ],
      ['x', 'line\rbreak', '2026-11-30T08:00:00', null, null, null, null, null],
    ]);
    expect(r.rejects.map((x) => [x.file, x.line, x.field, x.reason])).toEqual([
      [
        'kinds.xlsx[Hand]',
        5,
        'a',
        'row 5, column A: the formula =SUM(1,2) has no cached result (the workbook was saved by a program that does not calculate; open and save it in Excel or LibreOffice)',
      ],
      [
        'kinds.xlsx[Hand]',
        6,
        'a',
        'row 6, column A: shared string 99 does not exist in xl/sharedStrings.xml (also column J)',
      ],
    ]);
  });

  it('rejects a row whose text holds NUL (_x0000_), inline or shared, naming row and column', async () => {
    const f = await handmade(
      'nul.xlsx',
      '<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>name</t></is></c></row>' +
        '<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="inlineStr"><is><t>Al_x0000_ice</t></is></c></row>' +
        '<row r="3"><c r="A3"><v>2</v></c><c r="B3" t="s"><v>0</v></c></row>' +
        '<row r="4"><c r="A4"><v>3</v></c><c r="B4" t="inlineStr"><is><t>Bob _x005F_x0000_</t></is></c></row>',
      { sharedStrings: ['<si><t>x_x0000_</t></si>'] },
    );
    const r = await readXlsx(f);
    expect(r.rows).toEqual([['3', 'Bob _x0000_']]);
    expect(r.rejects).toEqual([
      {
        file: 'nul.xlsx[Hand]',
        line: 2,
        field: 'name',
        value: 'Al\\x00ice',
        reason: 'row 2, column B: a NUL character (_x0000_); text cannot hold NUL',
      },
      {
        file: 'nul.xlsx[Hand]',
        line: 3,
        field: 'name',
        value: 'x\\x00',
        reason: 'row 3, column B: a NUL character (_x0000_); text cannot hold NUL',
      },
    ]);
  });

  it('reads 1904 serials and refuses unusable headers', async () => {
    const f = await handmade(
      'h1904.xlsx',
      '<row r="1"><c r="A1" t="inlineStr"><is><t>d</t></is></c></row><row r="2"><c r="A2" s="1"><v>0.5</v></c></row><row r="3"><c r="A3" s="1"><v>44894.25</v></c></row>',
      {
        date1904: true,
        cellXfs: '<xf numFmtId="0"/><xf numFmtId="22"/>',
      },
    );
    // Format 22 shows a date and a time: 0.5 is noon of the 1904 system's day 0, 1904-01-01.
    expect((await readXlsx(f)).rows).toEqual([['1904-01-01T12:00:00'], ['2026-11-30T06:00:00']]);

    const gap = await handmade(
      'gap.xlsx',
      '<row r="3"><c r="A3" t="inlineStr"><is><t>a</t></is></c><c r="C3" t="inlineStr"><is><t>c</t></is></c></row>',
    );
    await expect(readXlsx(gap)).rejects.toThrow(
      new UserError('gap.xlsx[Hand], row 3, column B: the header cell is empty'),
    );
    const twice = await handmade(
      'twice.xlsx',
      '<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="B1" t="inlineStr"><is><t> a </t></is></c></row>',
    );
    await expect(readXlsx(twice)).rejects.toThrow(/row 1, column B: header column 'a' appears twice/);
    const empty = await handmade('empty.xlsx', '');
    await expect(readXlsx(empty)).rejects.toThrow(
      new UserError('empty.xlsx[Hand]: the sheet is empty; expected a header row'),
    );
  });

  it('refuses a file that is not an xlsx workbook', async () => {
    const f = path.join(dir, 'items.xlsx');
    await writeFile(f, 'id,name\n1,a\n');
    await expect(readXlsx(f)).rejects.toThrow(/items.xlsx: not a readable xlsx workbook/);
  });

  it('fails promptly when the input is cancelled mid-read', async () => {
    const f = await writeWorkbook('big.xlsx', (wb) => {
      const ws = wb.addWorksheet('B');
      ws.addRow(['n']);
      for (let i = 0; i < 50000; i++) ws.addRow([i]);
    });
    const input = createReadStream(f, { highWaterMark: 4096 });
    input.once('data', () => input.destroy(new CancelledError()));
    const format = createXlsxFormat(config());
    const read = async (): Promise<void> => {
      for await (const _ of format.read(input, 'big.xlsx', () => undefined)) {
        // consume
      }
    };
    await expect(read()).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('xlsx reader: a workbook written by LibreOffice', () => {
  const csv =
    'id,name,amount,day,flag\n' +
    '1,Müller,12.50,2026-11-30,yes\n' +
    '2,"a, b",-3.25,2024-02-29,\n' +
    '\n' +
    '3,x,1e21,1900-03-01,no\n';
  const expected = [
    ['1', 'Müller', '12.5', '2026-11-30', 'yes'],
    ['2', 'a, b', '-3.25', '2024-02-29', null],
    ['3', 'x', '1000000000000000000000', '1900-03-01', 'no'],
  ];

  it('reads the committed fixture (fixtures/xlsx/libreoffice-items.xlsx, made by make-fixtures.sh)', async () => {
    expect(await readFile('fixtures/xlsx/libreoffice-items.csv', 'utf8')).toBe(csv);
    const r = await readXlsx('fixtures/xlsx/libreoffice-items.xlsx');
    expect(r.columns).toEqual(['id', 'name', 'amount', 'day', 'flag']);
    expect(r.rows).toEqual(expected);
    expect(r.lines).toEqual([2, 3, 5]);
  });

  it('reads a CSV converted by soffice --headless in this run', async (ctx) => {
    const work = await mkdtemp(path.join(dir, 'lo-'));
    await writeFile(path.join(work, 'items.csv'), csv);
    // comma, double quote, UTF-8 (LibreOffice's text-encoding number 76)
    if (!(await soffice(ctx, work, ['--infilter=CSV:44,34,76', 'items.csv']))) return;
    const f = path.join(work, 'items.xlsx');
    expect(await unzipPart(f, 'docProps/app.xml')).toMatch(/LibreOffice/);
    const r = await readXlsx(f);
    expect(r.rows).toEqual(expected);
    expect(r.rejects).toEqual([]);
  });

  // The same dates saved by LibreOffice in each date system: LibreOffice writes the null date of the
  // spreadsheet (table:null-date) as the workbook's date system, `date1904="true"` for 1904-01-01.
  const dates = [
    ['a', '2026-11-30', '2026-11-30T10:15:00'],
    ['b', '1904-01-01', '1904-01-02T00:00:01'],
    ['c', '2024-02-29', '2024-02-29T23:59:59'],
    ['d', '1999-12-31', '2000-01-01T00:00:00.500'],
    ['e', '1904-01-02', '1904-01-01T12:00:00'],
  ];
  it.for([
    ['1900', 46356],
    ['1904', 46356 - 1462],
  ] as const)(
    'reads dates exactly from a workbook LibreOffice saved in the %s date system',
    async ([system, serial], ctx) => {
      const work = await mkdtemp(path.join(dir, `lo${system}-`));
      await writeFile(path.join(work, 'dates.fods'), flatOds(dates, system === '1904' ? '1904-01-01' : null));
      if (!(await soffice(ctx, work, ['dates.fods']))) return;
      const f = path.join(work, 'dates.xlsx');
      expect(await unzipPart(f, 'docProps/app.xml')).toMatch(/LibreOffice/);
      const book = await unzipPart(f, 'xl/workbook.xml');
      if (system === '1904') expect(book).toMatch(/<workbookPr[^>]* date1904="true"/);
      else expect(book).not.toMatch(/date1904="(true|1)"/);
      // The serials really differ by the 1,462 days between the systems; the reader must undo that.
      expect(await unzipPart(f, 'xl/worksheets/sheet1.xml')).toContain(
        `<c r="B2" s="1" t="n"><v>${serial}</v></c>`,
      );
      const r = await readXlsx(f);
      expect(r.rejects).toEqual([]);
      expect(r.columns).toEqual(['name', 'day', 'at']);
      // Fractions of a day as LibreOffice stores them (15 digits) come back to the millisecond.
      expect(r.rows).toEqual(dates.map(([n, d, t]) => [n, d, t!.replace(/T00:00:00$/, '')]));
    },
  );
});

/** A flat OpenDocument spreadsheet of (name, date, date-time) rows; `nullDate` sets its date system. */
function flatOds(rows: string[][], nullDate: string | null): string {
  const text = (v: string): string =>
    `<table:table-cell office:value-type="string"><text:p>${v}</text:p></table:table-cell>`;
  const date = (style: string, v: string): string =>
    `<table:table-cell table:style-name="${style}" office:value-type="date" office:date-value="${v}"/>`;
  const ymd =
    '<number:year number:style="long"/><number:text>-</number:text><number:month number:style="long"/>' +
    '<number:text>-</number:text><number:day number:style="long"/>';
  const hms =
    '<number:text> </number:text><number:hours number:style="long"/><number:text>:</number:text>' +
    '<number:minutes number:style="long"/><number:text>:</number:text><number:seconds number:style="long"/>';
  return `<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0"
 office:version="1.2" office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
 <office:automatic-styles>
  <number:date-style style:name="ymd">${ymd}</number:date-style>
  <number:date-style style:name="ymdhms">${ymd}${hms}</number:date-style>
  <style:style style:name="d" style:family="table-cell" style:data-style-name="ymd"/>
  <style:style style:name="dt" style:family="table-cell" style:data-style-name="ymdhms"/>
 </office:automatic-styles>
 <office:body><office:spreadsheet>
  ${nullDate ? `<table:calculation-settings><table:null-date table:date-value="${nullDate}"/></table:calculation-settings>` : ''}
  <table:table table:name="Dates">
   <table:table-row>${text('name')}${text('day')}${text('at')}</table:table-row>
   ${rows.map(([n, d, t]) => `<table:table-row>${text(n!)}${date('d', d!)}${date('dt', t!)}</table:table-row>`).join('\n   ')}
  </table:table>
 </office:spreadsheet></office:body>
</office:document>
`;
}

/**
 * Converts `args`' input in `work` to xlsx with LibreOffice (`soffice --headless`, a profile of its
 * own). False, with the test marked skipped and why, when LibreOffice is not installed
 * (scripts/setup.sh installs it where it can).
 */
async function soffice(ctx: { skip(note?: string): void }, work: string, args: string[]): Promise<boolean> {
  try {
    await run('soffice', ['--version']);
  } catch {
    ctx.skip(
      'soffice is not installed: scripts/setup.sh installs it as root (apt-get install -y --no-install-recommends libreoffice-calc-nogui)',
    );
    return false;
  }
  const input = args.pop()!;
  await run(
    'soffice',
    [
      `-env:UserInstallation=file://${work}/profile`,
      '--headless',
      ...args,
      '--convert-to',
      'xlsx',
      '--outdir',
      work,
      path.join(work, input),
    ],
    { timeout: 120_000 },
  );
  return true;
}

describe('xlsx value conversions', () => {
  it('writes numbers as plain decimals at Excel precision', () => {
    expect(plainNumber(1e21)).toBe('1000000000000000000000');
    expect(plainNumber(-1.5e-7)).toBe('-0.00000015');
    expect(plainNumber(0.1 + 0.2)).toBe('0.3');
    expect(plainNumber(123456789012345680000)).toBe('123456789012346000000');
    expect(plainNumber(-0)).toBe('0');
  });

  it('converts serials in both date systems, including Excel’s 1900 leap-year bug', () => {
    expect(excelSerialToIso(1, false)).toBe('1900-01-01');
    expect(excelSerialToIso(59, false)).toBe('1900-02-28');
    expect(excelSerialToIso(60, false)).toBeNull();
    expect(excelSerialToIso(61, false)).toBe('1900-03-01');
    expect(excelSerialToIso(46356, false)).toBe('2026-11-30');
    expect(excelSerialToIso(46356 - 1462, true)).toBe('2026-11-30');
    expect(excelSerialToIso(0, true)).toBe('1904-01-01');
    expect(excelSerialToIso(0.25, true, true)).toBe('06:00:00');
    expect(excelSerialToIso(0.25, false)).toBe('06:00:00');
    expect(excelSerialToIso(1, true)).toBe('1904-01-02');
    expect(excelSerialToIso(46356.999999999, false)).toBe('2026-12-01');
    expect(excelSerialToIso(-1, false)).toBeNull();
  });

  it('tells date formats from number formats', () => {
    expect(classifyNumberFormat('yyyy-mm-dd')).toBe('date');
    expect(classifyNumberFormat('[$-409]d-mmm-yy;@')).toBe('date');
    expect(classifyNumberFormat('#,##0.00 "days"')).toBe('number');
    expect(classifyNumberFormat('[Red][<0]#,##0.00;0.00')).toBe('number');
    expect(classifyNumberFormat('0.00E+00')).toBe('number');
    expect(classifyNumberFormat('General')).toBe('number');
    expect(classifyNumberFormat('[h]:mm')).toBe('elapsed');
    expect(columnLetter(0)).toBe('A');
    expect(columnLetter(27)).toBe('AB');
    expect(columnLetter(16383)).toBe('XFD');
  });
});

async function* batchesOf(columns: string[], rows: Cell[][], size = 2): AsyncGenerator<Batch> {
  for (let i = 0; i < rows.length; i += size) {
    yield { columns, rows: rows.slice(i, i + size), lines: rows.slice(i, i + size).map((_, k) => i + k + 1) };
  }
}

async function exportXlsx(
  file: string,
  columns: string[],
  types: ColumnType[],
  rows: Cell[][],
  overrides = {},
): Promise<number> {
  const out = createWriteStream(file);
  return createXlsxFormat(config(overrides)).write(columns, types, batchesOf(columns, rows), out);
}

describe('xlsx writer', () => {
  const columns = ['code', 'amount', 'qty', 'day', 'at', 'ok', 'big'];
  const types: ColumnType[] = ['text', 'decimal', 'int', 'date', 'timestamp', 'bool', 'decimal'];
  const rows: Cell[][] = [
    ['=SUM(A1)', '-12.50', '42', '2026-11-30', '2026-11-30 10:15:00+01', 't', '12345678901234567890.5'],
    ['-cmd', '1250.75', '-7', '1999-12-31', '2026-01-01 00:00:00.5', 'f', '0.1'],
    ['+1', null, null, null, null, null, null],
    ['@A1', 'NaN', '0', 'infinity', '2026-06-30 23:59:59', 'false', '1e+21'],
    ['\tx', '0', '1', '2026-02-28', '2026-02-28 12:00:00', 'true', '-0.5'],
    ['plain', '3', '4', '2026-03-01', '2026-03-01 06:00:00', 't', '2'],
  ];

  it('writes typed cells that read back as the same values', async () => {
    const file = path.join(dir, 'export.xlsx');
    expect(await exportXlsx(file, columns, types, rows)).toBe(rows.length);
    const r = await readXlsx(file, { sheet: 'Sheet1' });
    expect(r.columns).toEqual(columns);
    expect(r.rows).toEqual([
      ['=SUM(A1)', '-12.5', '42', '2026-11-30', '2026-11-30T10:15:00', 'true', '12345678901234567890.5'],
      ['-cmd', '1250.75', '-7', '1999-12-31', '2026-01-01T00:00:00.500', 'false', '0.1'],
      ['+1', null, null, null, null, null, null],
      ['@A1', 'NaN', '0', 'infinity', '2026-06-30T23:59:59', 'false', '1000000000000000000000'],
      ['\tx', '0', '1', '2026-02-28', '2026-02-28T12:00:00', 'true', '-0.5'],
      ['plain', '3', '4', '2026-03-01', '2026-03-01T06:00:00', 'true', '2'],
    ]);
    // What exceljs's own reader sees: real numbers, dates and booleans.
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(file);
    const ws = wb.getWorksheet('Sheet1')!;
    expect(ws.getCell('B2').value).toBe(-12.5);
    expect(ws.getCell('B2').numFmt).toBe('#,##0.00');
    expect(ws.getCell('D2').value).toEqual(new Date(Date.UTC(2026, 10, 30)));
    expect(ws.getCell('D2').numFmt).toBe('yyyy-mm-dd');
    expect(ws.getCell('F2').value).toBe(true);
    expect(ws.getCell('A1').font?.bold).toBe(true);
    expect(ws.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
  });

  it('writes text exactly, as inline strings that are never formulas, while numbers stay numbers', async () => {
    const file = path.join(dir, 'inject.xlsx');
    await exportXlsx(file, columns, types, rows);
    const xml = await unzipPart(file, 'xl/worksheets/sheet1.xml');
    expect(xml).not.toMatch(/<f[ >]/);
    // No leading ': an inline string is text to every spreadsheet; neutralising is CSV's business.
    expect(xml).toContain('<c r="A2" t="inlineStr"><is><r><t>=SUM(A1)</t></r></is></c>');
    expect(xml).toContain('<t>-cmd</t>');
    expect(xml).toContain('<t>+1</t>');
    expect(xml).toContain('<t>@A1</t>');
    expect(xml).not.toContain('&apos;');
    expect(xml).toMatch(/<c r="B2" s="\d+"><v>-12.5<\/v><\/c>/);
    expect(xml).toMatch(/<c r="C3" s="\d+"><v>-7<\/v><\/c>/);
    expect(xml).toMatch(/<c r="F2" t="b"><v>1<\/v><\/c>/);
    // More than 15 significant digits cannot be a double without loss: kept as text, unescaped.
    expect(xml).toContain('<t>12345678901234567890.5</t>');
    expect(xml).toMatch(/<col min="1" max="1" width="\d+/);
    expect(xml).toContain('state="frozen"');
  });

  it('writes CR as _x000D_ and reads every _xHHHH_ escape back, so text with CR, controls and literal escapes survives', async () => {
    const file = path.join(dir, 'cr.xlsx');
    const texts = [
      'cr\rhere',
      'lf\nhere',
      'crlf\r\nhere',
      'bell\x07 tab\t',
      'literal _x000D_ and _x005F_',
      ' spaced ',
    ];
    await exportXlsx(
      file,
      ['note'],
      ['text'],
      texts.map((t) => [t]),
    );
    const xml = await unzipPart(file, 'xl/worksheets/sheet1.xml');
    expect(xml).toContain('<t>cr_x000D_here</t>');
    expect(xml).not.toContain('\r');
    const r = await readXlsx(file);
    expect(r.rows).toEqual(texts.map((t) => [t]));
  });

  it('keeps dates of years below 100 and outside Excel’s range as they are (Date.UTC would read 0001 as 1901)', async () => {
    const file = path.join(dir, 'old-dates.xlsx');
    const old: Cell[][] = [
      ['0001-01-01', '0099-12-31 23:59:59'],
      ['1899-12-31', '1900-02-28 12:00:00'],
      ['1900-03-01', '1900-03-01 00:00:00.001'],
      ['9999-12-31', '9999-12-31 23:59:59.999'],
    ];
    await exportXlsx(file, ['day', 'at'], ['date', 'timestamp'], old);
    const r = await readXlsx(file);
    expect(r.rows).toEqual([
      // Before 1900-03-01 Excel has no date: exact text, which the date/timestamp fields accept.
      ['0001-01-01', '0099-12-31 23:59:59'],
      ['1899-12-31', '1900-02-28 12:00:00'],
      ['1900-03-01', '1900-03-01T00:00:00.001'],
      ['9999-12-31', '9999-12-31T23:59:59.999'],
    ]);
  });

  // The writer reads exceljs 4.4.0 internals (pinned in package.json) to honour back-pressure: the
  // worksheet's part stream (`ws.stream`) piping into its zip entry (`pipes[0]`), and that entry's
  // drain flag. If an exceljs upgrade moves them, this test fails rather than memory growing silently.
  it('waits for a destination that does not drain (exceljs internals it relies on are still there)', async () => {
    const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: new PassThrough() });
    const ws = wb.addWorksheet('y');
    ws.addRow(['a']).commit();
    const entry = (ws as unknown as { stream: { pipes: { _writableState?: { needDrain?: boolean } }[] } })
      .stream.pipes[0];
    expect(typeof entry?._writableState?.needDrain).toBe('boolean');

    const total = 200_000;
    let pulled = 0;
    async function* lazy(): AsyncGenerator<Batch> {
      for (let i = 0; i < total; i += 1000) {
        const rows: Cell[][] = Array.from({ length: 1000 }, (_, k) => [
          String(i + k),
          `row ${i + k} ${'x'.repeat(40)}`,
        ]);
        pulled += rows.length;
        yield { columns: ['n', 'text'], rows, lines: rows.map((_, k) => i + k + 2) };
      }
    }
    // A destination that takes nothing until released.
    let release: (() => void) | null = null;
    const held: (() => void)[] = [];
    let bytes = 0;
    const out = new Writable({
      highWaterMark: 1 << 16,
      write(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        if (release === null) held.push(cb);
        else cb();
      },
    });
    const done = createXlsxFormat(config()).write(['n', 'text'], ['int', 'text'], lazy(), out);
    // Let the writer run until it stops pulling rows: back-pressure, not the whole export in memory.
    let before = -1;
    while (pulled !== before) {
      before = pulled;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(pulled).toBeLessThan(total / 4);
    release = () => undefined;
    for (const cb of held.splice(0)) cb();
    expect(await done).toBe(total);
    expect(pulled).toBe(total);
    expect(bytes).toBeGreaterThan(0);
  });

  it('continues on a new sheet when a sheet is full, and writes an empty export as a header', async () => {
    const file = path.join(dir, 'split.xlsx');
    const many: Cell[][] = Array.from({ length: 7 }, (_, i) => [
      String(i),
      String(i),
      String(i),
      null,
      null,
      null,
      null,
    ]);
    await exportXlsx(file, columns, types, many, { sheet_name: 'Ledger', max_rows_per_sheet: 4 });
    const first = await readXlsx(file, { sheet: 'Ledger' });
    const second = await readXlsx(file, { sheet: 'Ledger (2)' });
    const third = await readXlsx(file, { sheet: 3 });
    expect([...first.rows, ...second.rows, ...third.rows].map((r) => r[0])).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
      '5',
      '6',
    ]);
    expect(second.columns).toEqual(columns);

    const empty = path.join(dir, 'empty-export.xlsx');
    expect(await exportXlsx(empty, columns, types, [])).toBe(0);
    const e = await readXlsx(empty);
    expect(e.rows).toEqual([]);
  });

  it('refuses text longer than an Excel cell holds', async () => {
    const file = path.join(dir, 'long.xlsx');
    await expect(exportXlsx(file, ['t'], ['text'], [['x'.repeat(40000)]])).rejects.toThrow(
      /column 't': 40000 characters exceed Excel's limit of 32767/,
    );
  });

  it('sets explicit column widths and no frozen pane when asked', async () => {
    const file = path.join(dir, 'widths.xlsx');
    await exportXlsx(file, ['a', 'b'], ['text', 'int'], [['x', '1']], {
      column_widths: { a: 42 },
      freeze_header: false,
    });
    const xml = await unzipPart(file, 'xl/worksheets/sheet1.xml');
    expect(xml).toContain('<col min="1" max="1" width="42"');
    expect(xml).not.toContain('frozen');
  });
});

describe('xlsx format config', () => {
  it('has defaults and refuses unknown keys and bad sheet names', () => {
    expect(config()).toMatchObject({
      sheet: 1,
      header: true,
      skip_rows: 0,
      sheet_name: 'Sheet1',
      freeze_header: true,
      column_widths: 'auto',
    });
    expect(xlsxFormatSchema.safeParse({ kind: 'xlsx', sheets: 2 }).success).toBe(false);
    expect(xlsxFormatSchema.safeParse({ kind: 'xlsx', sheet_name: 'a/b' }).success).toBe(false);
    expect(
      xlsxFormatSchema.safeParse({ kind: 'xlsx', number_formats: { decimal: '0.000' } }).data?.number_formats,
    ).toEqual({
      date: 'yyyy-mm-dd',
      timestamp: 'yyyy-mm-dd hh:mm:ss',
      decimal: '0.000',
      int: '0',
    });
  });

  it('needs columns without a header', async () => {
    const file = await writeWorkbook('nohdr.xlsx', (wb) => wb.addWorksheet('S').addRow([1]));
    await expect(readXlsx(file, { header: false })).rejects.toThrow(/without a header needs `columns`/);
  });
});
