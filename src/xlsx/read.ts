/**
 * The streaming XLSX reader: exceljs's WorkbookReader drives the zip and the metadata parts, the
 * shared strings are parsed here, and the chosen sheet goes to `readSheet` as soon as the styles are
 * known (spooled to a temp file when it arrives before them). Guards the input against failing or
 * being cancelled mid-read, and finds the configured sheet.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CancelledError, UserError } from '../errors.js';
import type { XlsxFormatConfig } from '../stages/format-xlsx.js';
import type { Batch, RejectFn } from '../stages/types.js';
import { unescapeOoxml } from './cells.js';
import { excel, localName, saxChunks, type SheetPart, type WorkbookReaderInternals } from './lib.js';
import { readSheet } from './read-sheet.js';

export async function* readXlsx(
  config: XlsxFormatConfig,
  input: Readable,
  fileName: string,
  reject: RejectFn,
): AsyncGenerator<Batch> {
  if (!config.header && config.columns === undefined) {
    throw new UserError(`${fileName}: an xlsx format without a header needs \`columns\``);
  }
  const reader = new (excel().ExcelJS.stream.xlsx.WorkbookReader)(input, {
    sharedStrings: 'cache',
    styles: 'cache',
    hyperlinks: 'ignore',
    worksheets: 'emit',
    entries: 'ignore',
  }) as unknown as WorkbookReaderInternals;
  const initialStyles = reader.styles;
  // exceljs's parse loop delegates to these with `yield*`; ours read the part and emit nothing.
  // eslint-disable-next-line require-yield
  reader._parseSharedStrings = async function* (entry) {
    reader.sharedStrings = await readSharedStrings(entry, fileName);
  };
  reader._parseWorksheet = function* (iterator, sheetNo) {
    yield { eventType: 'worksheet', value: { partNo: sheetNo, iterator } satisfies SheetPart };
  };

  // exceljs pipes the input into the unzipper, and pipe() does not pass errors on: without this
  // guard a failed or cancelled input would leave the read waiting forever.
  const guard = new InputGuard(input);
  let tempDir: string | null = null;
  const spooled: Array<{ partNo: string; file: string }> = [];
  let done = false;
  try {
    try {
      for await (const part of raced(reader, guard)) {
        const target =
          reader.model && reader.workbookRels ? findTarget(config.sheet, reader, fileName) : null;
        if (target !== null && part.partNo !== target.partNo) {
          discard(part.iterator);
          continue;
        }
        // The sheet can be read now only once the styles (date formats) are known.
        if (target !== null && reader.styles !== initialStyles && !done) {
          yield* readSheet(config, raced(part.iterator, guard), reader, target.name, fileName, reject);
          done = true;
          continue;
        }
        tempDir ??= await mkdtemp(path.join(os.tmpdir(), 'erp-xlsx-'));
        const file = path.join(tempDir, `sheet${part.partNo}.xml`);
        await pipeline(Readable.from(raced(part.iterator, guard)), createWriteStream(file));
        spooled.push({ partNo: part.partNo, file });
      }
    } catch (err) {
      throw zipError(err, fileName);
    }
    if (done) return;
    if (!reader.model || !reader.workbookRels) {
      throw new UserError(`${fileName}: not an xlsx workbook (no xl/workbook.xml or its relationships)`);
    }
    const target = findTarget(config.sheet, reader, fileName);
    const found = spooled.find((s) => s.partNo === target.partNo);
    if (!found) {
      throw new UserError(
        `${fileName}: the part of sheet '${target.name}' (${target.part}) is missing from the workbook`,
      );
    }
    yield* readSheet(config, createReadStream(found.file), reader, target.name, fileName, reject);
  } finally {
    if (tempDir !== null) await rm(tempDir, { recursive: true, force: true });
  }
}

/**
 * Watches `input` for an error or a close before its end. (Racing every read against one
 * long-pending promise would pile a reaction per chunk onto it, each holding that chunk.)
 */
class InputGuard {
  private error: Error | null = null;
  private readonly waiting = new Set<(err: Error) => void>();

  constructor(input: Readable) {
    finished(input, (err) => {
      if (!err) return;
      this.error = err;
      for (const fail of this.waiting) fail(err);
    });
  }

  /** `it.next()`, rejected early if the input fails first. */
  next<T>(it: AsyncIterator<T>): Promise<IteratorResult<T>> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiting.add(reject);
      it.next().then(
        (r) => {
          this.waiting.delete(reject);
          resolve(r);
        },
        (err: unknown) => {
          this.waiting.delete(reject);
          reject(err as Error);
        },
      );
    });
  }
}

/** Iterates `iterable`, failing as soon as the guarded input fails. */
async function* raced<T>(iterable: AsyncIterable<T>, guard: InputGuard): AsyncGenerator<T> {
  const it = iterable[Symbol.asyncIterator]();
  for (;;) {
    const next = await guard.next(it);
    if (next.done) return;
    yield next.value;
  }
}

/** Skips a worksheet part: an unread zip entry is drained by exceljs; a spooled temp file is closed. */
function discard(iterator: AsyncIterable<Buffer | string>): void {
  const maybeStream = iterator as { destroy?: () => void };
  if (typeof maybeStream.destroy === 'function') maybeStream.destroy();
}

function zipError(err: unknown, fileName: string): unknown {
  if (err instanceof UserError || err instanceof CancelledError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/invalid signature|end of central directory|FILE_ENDED|unexpected end/i.test(message)) {
    return new UserError(
      `${fileName}: not a readable xlsx workbook (${message}); expected an Excel 2007+ .xlsx file (not .xls, not encrypted)`,
    );
  }
  return err;
}

/** Finds the configured sheet in workbook.xml and its worksheet part number from the relationships. */
function findTarget(
  sheet: string | number,
  reader: WorkbookReaderInternals,
  fileName: string,
): { name: string; partNo: string; part: string } {
  const sheets = reader.model?.sheets ?? [];
  const names = sheets.map((s) => `'${s.name}'`).join(', ') || '(none)';
  const entry = typeof sheet === 'number' ? sheets[sheet - 1] : sheets.find((s) => s.name === sheet);
  if (!entry) {
    if (typeof sheet === 'number') {
      throw new UserError(
        `${fileName}: the workbook has ${sheets.length} sheet${sheets.length === 1 ? '' : 's'}, so sheet ${sheet} does not exist; its sheets are: ${names}`,
      );
    }
    throw new UserError(`${fileName}: the workbook has no sheet '${sheet}'; its sheets are: ${names}`);
  }
  const rel = reader.workbookRels?.find((r) => r.Id === entry.rId);
  // Targets are relative to xl/ ("worksheets/sheet1.xml") or absolute ("/xl/worksheets/sheet1.xml").
  const part = rel ? rel.Target.replace(/^\/?xl\//, '').replace(/^\.\//, '') : '';
  const m = /^worksheets\/sheet(\d+)\.xml$/.exec(part);
  if (!m) {
    throw new UserError(
      `${fileName}: sheet '${entry.name}' is stored as '${part || '(no relationship)'}', which is not a worksheet part (a chart sheet?)`,
    );
  }
  return { name: entry.name, partNo: m[1]!, part: `xl/${part}` };
}

/** Reads xl/sharedStrings.xml into plain strings: rich text runs joined, phonetic hints dropped. */
async function readSharedStrings(entry: AsyncIterable<Buffer>, fileName: string): Promise<string[]> {
  const strings: string[] = [];
  const parser = new (excel().SaxesParser)({ position: false });
  let error: Error | null = null;
  let inSi = false;
  let inT = false;
  let phonetic = 0;
  let text = '';
  parser.on('error', (err) => (error ??= err));
  parser.on('opentag', (tag) => {
    const name = localName(tag.name);
    if (name === 'si') {
      inSi = true;
      text = '';
    } else if (name === 't' && inSi && phonetic === 0) inT = true;
    else if (name === 'rPh') phonetic++;
  });
  parser.on('text', (t) => {
    if (inT) text += t;
  });
  parser.on('closetag', (tag) => {
    const name = localName(tag.name);
    if (name === 't') inT = false;
    else if (name === 'rPh') phonetic--;
    else if (name === 'si') {
      strings.push(unescapeOoxml(text));
      inSi = false;
    }
  });
  for await (const _ of saxChunks(entry, parser)) {
    if (error)
      throw new UserError(`${fileName}: malformed xl/sharedStrings.xml: ${(error as Error).message}`);
  }
  if (error) throw new UserError(`${fileName}: malformed xl/sharedStrings.xml: ${(error as Error).message}`);
  return strings;
}
