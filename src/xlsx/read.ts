/**
 * The XLSX reader: the zip is read by random access (zip.ts), the workbook's parts are found
 * through its relationships (parts.ts), styles and shared strings are read first (shared.ts), then
 * the chosen worksheet streams through the sheet parser (read-sheet.ts). Every limit is checked
 * before or while a part streams, so a hostile file fails with one line instead of exhausting
 * memory or disk; nothing is written to a temp directory when the input is a file.
 *
 *   file ──► central directory (sizes, ratios checked) ──► _rels/.rels ──► workbook + .rels
 *        ──► styles.xml, sharedStrings.xml ──► the worksheet part ──► batches / rejects
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { UserError } from '../errors.js';
import type { XlsxFormatConfig } from './options.js';
import type { Batch, RejectFn } from '../stages/types.js';
import { findSheet, readWorkbookInfo } from './parts.js';
import { readSheet } from './read-sheet.js';
import { readSharedStrings, readStyles } from './shared.js';
import { openWorkbookZip } from './zip.js';

export async function* readXlsx(
  config: XlsxFormatConfig,
  input: Readable,
  fileName: string,
  reject: RejectFn,
): AsyncGenerator<Batch> {
  if (!config.header && config.columns === undefined) {
    throw new UserError(`${fileName}: an xlsx format without a header needs \`columns\``);
  }
  const maxTotalBytes = config.max_uncompressed_mb * 1024 * 1024;
  // Sources hand over local files (a read stream with a path); anything else is copied to a temp
  // file first, bounded by the same size limit, so the zip can be read by random access.
  const given = (input as { path?: unknown }).path;
  // The input is not read when it names a file, but it still carries cancellation: the run
  // destroys it with a CancelledError, which must stop the read.
  let failure: Error | null = null;
  const onError = (err: Error): void => {
    failure ??= err;
  };
  input.on('error', onError);
  const check = (): void => {
    if (failure) throw failure;
  };
  let tempDir: string | null = null;
  let file: string;
  try {
    if (typeof given === 'string') {
      file = given;
    } else {
      tempDir = await mkdtemp(path.join(os.tmpdir(), 'erp-xlsx-'));
      file = path.join(tempDir, 'input.xlsx');
      await spool(input, file, maxTotalBytes, fileName);
    }
    const zip = await openWorkbookZip(file, fileName, {
      maxTotalBytes,
      maxRatio: config.max_compression_ratio,
    });
    try {
      const info = await readWorkbookInfo(zip, fileName);
      const sheet = findSheet(info, config.sheet, fileName);
      if (!zip.has(sheet.part)) {
        throw new UserError(
          `${fileName}: the part of sheet '${sheet.name}' (${sheet.part}) is missing from the workbook`,
        );
      }
      const styles = await readStyles(zip, info.stylesPart, fileName);
      const strings = await readSharedStrings(zip, info.sharedStringsPart, fileName, {
        maxStrings: config.max_shared_strings,
        maxChars: config.max_cell_chars,
      });
      check();
      const stream = await zip.open(sheet.part);
      try {
        const batches = readSheet(
          config,
          stream,
          { strings, styles, date1904: info.date1904 },
          { maxCellsPerRow: config.max_cells_per_row, maxCellChars: config.max_cell_chars },
          sheet.name,
          fileName,
          reject,
        );
        for await (const batch of batches) {
          check();
          yield batch;
        }
        check();
      } finally {
        stream.destroy();
      }
    } finally {
      zip.close();
    }
  } finally {
    input.off('error', onError);
    // Swallow a late error of the unread input; its outcome is decided above.
    input.on('error', () => undefined);
    input.destroy();
    if (tempDir !== null) await rm(tempDir, { recursive: true, force: true });
  }
}

async function spool(input: Readable, file: string, maxBytes: number, fileName: string): Promise<void> {
  let seen = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > maxBytes)
        cb(new UserError(`${fileName}: larger than ${maxBytes} bytes (max_uncompressed_mb)`));
      else cb(null, chunk);
    },
  });
  await pipeline(input, limit, createWriteStream(file));
}
