import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createXlsxFormat } from '../src/stages/format-xlsx.js';
import { xlsxFormatSchema } from '../src/xlsx/options.js';
import type { Cell } from '../src/stages/types.js';
import { workbookParts, writeZip } from './helpers/zip.js';

/**
 * Workbooks shaped the way other producers write them (Apple Numbers, LibreOffice, other libraries),
 * built here part by part: each must read exactly like the plain one.
 */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'erp-xlsx-producers-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const REL = 'http://schemas.openxmlformats.org/officeDocument/2006/relationships';

/** Header, a text, a number and a date cell (style 1 = yyyy-mm-dd); inline strings unless `shared`. */
function sheetXml(serial: number, shared = false): string {
  const text = (ref: string, s: string, i: number): string =>
    shared ? `<c r="${ref}" t="s"><v>${i}</v></c>` : `<c r="${ref}" t="inlineStr"><is><t>${s}</t></is></c>`;
  return (
    `<row r="1">${text('A1', 'name', 0)}${text('B1', 'qty', 1)}${text('C1', 'day', 2)}</row>` +
    `<row r="2">${text('A2', 'Café', 3)}<c r="B2"><v>12.5</v></c><c r="C2" s="1"><v>${serial}</v></c></row>`
  );
}
const SHARED = ['name', 'qty', 'day', 'Café'];
const EXPECTED: Cell[][] = [['Café', '12.5', '2026-11-30']];

async function read(parts: Record<string, string>, order?: string[], sheet: string | number = 1) {
  const file = path.join(dir, `${Math.random().toString(36).slice(2)}.xlsx`);
  const names = order ?? Object.keys(parts);
  await writeZip(
    file,
    names.map((name) => ({ name, data: parts[name]! })),
  );
  const format = createXlsxFormat(xlsxFormatSchema.parse({ kind: 'xlsx', sheet }));
  const rows: Cell[][] = [];
  let columns: readonly string[] = [];
  for await (const b of format.read(createReadStream(file), 'book.xlsx', () => undefined)) {
    rows.push(...b.rows);
    columns = b.columns;
  }
  return { columns, rows };
}

describe('workbooks of other producers', () => {
  it('reads the plain shape (shared strings, styles, relative targets)', async () => {
    const r = await read(workbookParts({ sheetXml: sheetXml(46356, true), sharedStrings: SHARED }));
    expect(r.columns).toEqual(['name', 'qty', 'day']);
    expect(r.rows).toEqual(EXPECTED);
  });

  it('reads parts whose elements carry a namespace prefix (<x:workbook>, <x:c>)', async () => {
    const r = await read(
      workbookParts({ sheetXml: sheetXml(46356, true), sharedStrings: SHARED, prefix: 'x' }),
    );
    expect(r.rows).toEqual(EXPECTED);
  });

  it('reads absolute relationship targets with no styles and no shared-strings part', async () => {
    const r = await read(
      workbookParts({
        sheetXml: sheetXml(46356).replace(' s="1"', ''),
        sheetTarget: '/xl/worksheets/sheet1.xml',
        styles: null,
      }),
    );
    // Without styles the serial is a plain number, as Excel would show it.
    expect(r.rows).toEqual([['Café', '12.5', '46356']]);
  });

  it('reads a sheet part named worksheets/sheet.xml (Apple Numbers)', async () => {
    const r = await read(
      workbookParts({
        sheetXml: sheetXml(46356),
        sheetTarget: 'worksheets/sheet.xml',
        sheetPart: 'xl/worksheets/sheet.xml',
      }),
    );
    expect(r.rows).toEqual(EXPECTED);
  });

  it('finds the workbook and its sheet under any part names, through _rels/.rels', async () => {
    const r = await read(
      workbookParts({
        sheetXml: sheetXml(46356),
        workbookPart: 'book/main.xml',
        sheetTarget: '../data/first%20sheet.xml',
        sheetPart: 'data/first sheet.xml',
      }),
    );
    expect(r.rows).toEqual(EXPECTED);
  });

  it('reads inline strings only, with the sheet stored before workbook.xml', async () => {
    const parts = workbookParts({ sheetXml: sheetXml(46356) });
    const order = Object.keys(parts).sort((a) => (a.includes('worksheets') ? -1 : 1));
    expect(order[0]).toBe('xl/worksheets/sheet1.xml');
    expect((await read(parts, order)).rows).toEqual(EXPECTED);
  });

  it('reads the worksheet after a chart sheet, and says clearly when asked for the chart sheet', async () => {
    const parts = workbookParts({
      sheetXml: sheetXml(46356),
      extraSheets: '<sheet name="Chart1" sheetId="2" r:id="rIdC"/>',
      extraRels: `<Relationship Id="rIdC" Type="${REL}/chartsheet" Target="chartsheets/sheet1.xml"/>`,
    });
    parts['xl/chartsheets/sheet1.xml'] = '<chartsheet/>';
    expect((await read(parts, undefined, 'Data')).rows).toEqual(EXPECTED);
    await expect(read(parts, undefined, 1)).rejects.toThrow(
      "book.xlsx: sheet 'Chart1' is a chartsheet (xl/chartsheets/sheet1.xml), not a worksheet with cells; its sheets are: 'Chart1', 'Data'",
    );
  });

  it.each([
    ['1', true],
    ['true', true],
    ['0', false],
    ['false', false],
  ])('honours date1904="%s" as the OOXML boolean it is', async (value, is1904) => {
    const serial = is1904 ? 46356 - 1462 : 46356;
    const r = await read(
      workbookParts({ sheetXml: sheetXml(serial), workbookPr: `<workbookPr date1904="${value}"/>` }),
    );
    expect(r.rows).toEqual(EXPECTED);
  });

  it('reads serial 0 of the 1904 system as 1904-01-01', async () => {
    const r = await read(
      workbookParts({ sheetXml: sheetXml(0), workbookPr: '<workbookPr date1904="true"/>' }),
    );
    expect(r.rows).toEqual([['Café', '12.5', '1904-01-01']]);
  });
});
