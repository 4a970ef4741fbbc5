/**
 * A file's full reject report, as the runner wrote it (CSV beside the run, under the data
 * directory), served as is or converted to XLSX on the fly: CSV → csv-parse → the streaming XLSX
 * writer (src/xlsx/write.ts) → the response, in batches, waiting for the response to drain. Memory stays flat.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { parse } from 'csv-parse';
import { xlsxFormatSchema } from '../xlsx/options.js';
import type { Batch } from '../stages/types.js';
import { writeXlsx } from '../xlsx/write.js';

const COLUMNS = ['file', 'line', 'field', 'value', 'reason'] as const;
const BATCH_ROWS = 1000;

/**
 * The report's path if it exists and lies under `dataDir`; a path recorded in the database is
 * never followed outside the data directory.
 */
export async function reportPath(dataDir: string, recorded: string | null): Promise<string | null> {
  if (!recorded) return null;
  const root = path.resolve(dataDir);
  const full = path.resolve(root, recorded);
  if (full !== root && !full.startsWith(root + path.sep)) return null;
  try {
    return (await stat(full)).isFile() ? full : null;
  } catch {
    return null;
  }
}

async function* batchesOf(file: string): AsyncIterable<Batch> {
  const parser = createReadStream(file).pipe(parse({ from_line: 2, relax_column_count: true }));
  let rows: (string | null)[][] = [];
  let lines: number[] = [];
  let line = 1;
  for await (const record of parser as AsyncIterable<string[]>) {
    line++;
    rows.push(COLUMNS.map((_, i) => record[i] ?? null));
    lines.push(line);
    if (rows.length >= BATCH_ROWS) {
      yield { columns: COLUMNS, rows, lines };
      rows = [];
      lines = [];
    }
  }
  if (rows.length > 0) yield { columns: COLUMNS, rows, lines };
}

/** Writes the CSV report at `file` to `out` as a workbook with one sheet, `rejects`. */
export async function writeRejectsXlsx(file: string, out: Writable): Promise<number> {
  const config = xlsxFormatSchema.parse({ kind: 'xlsx', sheet_name: 'rejects' });
  return writeXlsx(config, COLUMNS, ['text', 'int', 'text', 'text', 'text'], batchesOf(file), out);
}
