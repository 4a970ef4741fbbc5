/**
 * A file's full reject report, as the runner wrote it (CSV beside the run, under the data
 * directory), served as is or converted to XLSX on the fly: CSV → the project's own CSV reader (the one that reads
 * pipelines' files; the report is written by its writer) → the streaming XLSX
 * writer (src/xlsx/write.ts) → the response, in batches, waiting for the response to drain. Memory stays flat.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { xlsxFormatSchema } from '../xlsx/options.js';
import { createCsvFormat, csvFormatSchema } from '../stages/format-csv.js';
import type { Batch } from '../stages/types.js';
import { writeXlsx } from '../xlsx/write.js';

const COLUMNS = ['file', 'line', 'field', 'value', 'reason'] as const;

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

function batchesOf(file: string): AsyncIterable<Batch> {
  // The report's own writer wrote it: a header and five fields a record. A record of another width
  // (a report edited by hand) is not shown rather than shown shifted.
  const reader = createCsvFormat(csvFormatSchema.parse({ kind: 'csv' }));
  return reader.read(createReadStream(file), path.basename(file), () => undefined);
}

/** Writes the CSV report at `file` to `out` as a workbook with one sheet, `rejects`. */
export async function writeRejectsXlsx(file: string, out: Writable): Promise<number> {
  const config = xlsxFormatSchema.parse({ kind: 'xlsx', sheet_name: 'rejects' });
  return writeXlsx(config, COLUMNS, ['text', 'int', 'text', 'text', 'text'], batchesOf(file), out);
}
