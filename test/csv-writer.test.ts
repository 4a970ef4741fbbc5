import { Writable } from 'node:stream';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import {
  createCsvWriter,
  neutraliseFormula,
  recordEncoder,
  type CsvWriterOptions,
} from '../src/csv/writer.js';
import type { Batch, Cell, ColumnType } from '../src/stages/types.js';

async function* batchesOf(columns: string[], rows: Cell[][], size = 2): AsyncGenerator<Batch> {
  for (let i = 0; i < rows.length; i += size) {
    yield { columns, rows: rows.slice(i, i + size), lines: rows.slice(i, i + size).map((_, k) => i + k + 1) };
  }
}

/** A Writable that collects bytes; with `slow`, each write completes a tick later and the buffer is tiny. */
function sink(slow = false): { out: Writable; text: () => string; drains: () => number } {
  const chunks: Buffer[] = [];
  let drains = 0;
  const out = new Writable({
    highWaterMark: slow ? 16 : 16384,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      if (slow) setImmediate(cb);
      else cb();
    },
  });
  out.on('drain', () => drains++);
  return { out, text: () => Buffer.concat(chunks).toString('utf8'), drains: () => drains };
}

async function exportCsv(
  columns: string[],
  types: ColumnType[],
  rows: Cell[][],
  options: CsvWriterOptions = {},
  slow = false,
) {
  const s = sink(slow);
  const written = await createCsvWriter(options).write(columns, types, batchesOf(columns, rows), s.out);
  return { written, text: s.text(), drains: s.drains(), finished: s.out.writableFinished };
}

const columns = ['code', 'amount', 'qty', 'day', 'note'];
const types: ColumnType[] = ['text', 'decimal', 'int', 'date', 'text'];

describe('csv writer', () => {
  it('writes a header and rows that read back the same, NULL apart from empty text', async () => {
    const rows: Cell[][] = [
      ['A-1', '-12.50', '-7', '2026-11-30', 'say "hi", then\nleave'],
      ['B', null, '0', null, ''],
    ];
    const r = await exportCsv(columns, types, rows);
    expect(r.written).toBe(2);
    expect(r.finished).toBe(true);
    expect(r.text).toBe(
      'code,amount,qty,day,note\n' + 'A-1,-12.50,-7,2026-11-30,"say ""hi"", then\nleave"\n' + 'B,,0,,""\n',
    );
    const back = parse(r.text, {
      columns: true,
      cast: (v, ctx) => (v === '' && !ctx.quoting ? null : v),
    }) as Record<string, Cell>[];
    expect(back.map((o) => columns.map((c) => o[c]))).toEqual(rows);
  });

  it('neutralises formulas in text but leaves numbers in numeric columns alone', async () => {
    const rows: Cell[][] = [
      ['=SUM(A1)', '-12.50', '-7', '2026-11-30', '-cmd'],
      ['+1', '+3.5', '1e+21', null, '@A1'],
      ['\tx', '0', '1', null, '\rcr'],
      ['\nlf', '-0.01', '2', null, '＝1+1'],
      ['-12.50', '=1+1', '3', null, 'plain'],
    ];
    const r = await exportCsv(columns, types, rows);
    const lines = parse(r.text, { relax_column_count: true }) as string[][];
    expect(lines.slice(1)).toEqual([
      ["'=SUM(A1)", '-12.50', '-7', '2026-11-30', "'-cmd"],
      ["'+1", '+3.5', '1e+21', '', "'@A1"],
      ["'\tx", '0', '1', '', "'\rcr"],
      ["'\nlf", '-0.01', '2', '', "'＝1+1"],
      // Text that looks like a number is still text; a formula in a numeric column is still escaped.
      ["'-12.50", "'=1+1", '3', '', 'plain'],
    ]);
  });

  it('quotes a field holding a CR, an LF or both, whatever the record delimiter (RFC 4180)', async () => {
    const rows: Cell[][] = [['cr\rhere'], ['lf\nhere'], ['both\r\nhere'], ['plain']];
    for (const record_delimiter of ['lf', 'crlf'] as const) {
      const r = await exportCsv(['note'], ['text'], rows, { record_delimiter, escape_formulas: false });
      const eol = record_delimiter === 'lf' ? '\n' : '\r\n';
      expect(r.text).toBe(['note', '"cr\rhere"', '"lf\nhere"', '"both\r\nhere"', 'plain', ''].join(eol));
      expect(parse(r.text, { columns: true })).toEqual(rows.map(([note]) => ({ note })));
    }
  });

  it('doubles the quote character it quotes with, and leaves the other one alone', async () => {
    const rows: Cell[][] = [["it's"], ['say "hi"'], ['a|b']];
    const single = await exportCsv(['note'], ['text'], rows, { quote: "'", delimiter: '|' });
    expect(single.text).toBe(['note', "'it''s'", 'say "hi"', "'a|b'", ''].join('\n'));
    expect(parse(single.text, { quote: "'", escape: "'", delimiter: '|', columns: true })).toEqual(
      rows.map(([note]) => ({ note })),
    );
    const double = await exportCsv(['note'], ['text'], rows, { delimiter: '|' });
    expect(double.text).toBe(['note', "it's", '"say ""hi"""', '"a|b"', ''].join('\n'));
  });

  it("works around csv-stringify's escape_formulas, which would alter negative numbers in numeric columns", () => {
    // What the option does with our cells (all text): the decimal is escaped too.
    expect(stringify([['-12.50', '-cmd']], { escape_formulas: true })).toBe("'-12.50,'-cmd\n");
    // It spares JS numbers, but those lose their formatting.
    expect(stringify([[-12.5, '-cmd']], { escape_formulas: true })).toBe("-12.5,'-cmd\n");
    // And a leading line feed is not escaped by it.
    expect(stringify([['\nx']], { escape_formulas: true })).toBe('"\nx"\n');
    expect(neutraliseFormula('\nx')).toBe("'\nx");
  });

  it('honours delimiter, BOM, CRLF, no header and escape_formulas: false', async () => {
    const r = await exportCsv(['a', 'b'], ['text', 'int'], [['=x', '1']], {
      delimiter: ';',
      bom: true,
      record_delimiter: 'crlf',
      header: false,
      escape_formulas: false,
    });
    expect(r.text).toBe('\uFEFF=x;1\r\n');
    const h = await exportCsv(['=a', 'b'], ['text', 'int'], [], {});
    expect(h.text).toBe("'=a,b\n");
    expect(h.written).toBe(0);
  });

  it('waits for drain on a slow destination and loses nothing', async () => {
    const rows: Cell[][] = Array.from({ length: 2000 }, (_, i) => [
      `item ${i}`,
      `${i}.50`,
      String(i),
      '2026-11-30',
      null,
    ]);
    const r = await exportCsv(columns, types, rows, {}, true);
    expect(r.drains).toBeGreaterThan(10);
    expect(r.written).toBe(2000);
    expect(r.text.split('\n')).toHaveLength(2002);
    expect(r.text.split('\n')[2000]).toBe('item 1999,1999.50,1999,2026-11-30,');
  });

  it('fails when the destination fails', async () => {
    const out = new Writable({
      write(_c, _e, cb) {
        cb(new Error('disk full'));
      },
    });
    const rows: Cell[][] = Array.from({ length: 10 }, () => ['x', '1', '1', null, null]);
    await expect(createCsvWriter().write(columns, types, batchesOf(columns, rows), out)).rejects.toThrow(
      'disk full',
    );
  });
});

describe('recordEncoder (the writer without csv-stringify, for the default quote)', () => {
  it('writes what csv-stringify writes with the same options, on generated rows', () => {
    const pieces = [
      '',
      'a',
      ' ',
      ',',
      ';',
      '\t',
      '|',
      '"',
      "'",
      '\r',
      '\n',
      '\r\n',
      'é',
      '😀',
      '=1',
      '-2',
      '\\.',
    ];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (const delimiter of [',', ';', '\t', '|', ']', '-', '^']) {
      for (const eol of ['\n', '\r\n']) {
        const rows: Cell[][] = [];
        for (let r = 0; r < 300; r++) {
          const row: Cell[] = [];
          for (let c = 0; c < 4; c++) {
            if (rnd(6) === 0) row.push(null);
            else {
              let v = '';
              for (let k = rnd(4); k > 0; k--) v += pieces[rnd(pieces.length)];
              row.push(v);
            }
          }
          rows.push(row);
        }
        const expected = stringify(rows, {
          delimiter,
          quote: '"',
          record_delimiter: eol,
          quoted_match: [/^$/, /[\r\n]/],
          escape_formulas: false,
          eof: true,
        });
        const ours = recordEncoder(delimiter, eol)(rows, 4, (v) => v);
        expect(ours, JSON.stringify({ delimiter, eol })).toBe(expected);
      }
    }
  });
});
