/**
 * exceljs and its XML parser (saxes): loaded lazily by `excel()`, the parts of their internals the
 * xlsx reader relies on (typed here, since exceljs does not export them), and the SAX helpers shared
 * by the shared-strings and sheet parsers.
 */
import { createRequire } from 'node:module';
import type ExcelJS from 'exceljs';

/** The parts of exceljs's SAX parser (saxes) used here. */
interface SaxTag {
  name: string;
  attributes: Record<string, string>;
}
export interface SaxParser {
  on(event: 'opentag' | 'closetag', handler: (tag: SaxTag) => void): void;
  on(event: 'text', handler: (text: string) => void): void;
  on(event: 'error', handler: (err: Error) => void): void;
  write(chunk: string): unknown;
  close(): unknown;
}
type SaxParserClass = new (opts?: { position?: boolean }) => SaxParser;

// saxes is exceljs's dependency; resolve it from exceljs so both use the same copy.
let loaded: { ExcelJS: typeof ExcelJS; SaxesParser: SaxParserClass } | null = null;

/**
 * exceljs and its XML parser, loaded (synchronously, they are CommonJS) on first use: a process that
 * reads or writes no workbook never pays for them.
 */
export function excel(): { ExcelJS: typeof ExcelJS; SaxesParser: SaxParserClass } {
  if (loaded === null) {
    const requireHere = createRequire(import.meta.url);
    const lib = requireHere('exceljs') as typeof ExcelJS;
    const requireFromExceljs = createRequire(requireHere.resolve('exceljs'));
    const { SaxesParser } = requireFromExceljs('saxes') as { SaxesParser: SaxParserClass };
    loaded = { ExcelJS: lib, SaxesParser };
  }
  return loaded;
}

/** A worksheet part as our `_parseWorksheet` replacement hands it over. */
export interface SheetPart {
  partNo: string;
  iterator: AsyncIterable<Buffer | string>;
}

/**
 * The members of exceljs's WorkbookReader the reader relies on (exceljs 4.4, lib/stream/xlsx/
 * workbook-reader.js). Its `parse()` loop calls `_parseSharedStrings(entry)` and
 * `_parseWorksheet(iterator, sheetNo)`; both are replaced on the instance.
 */
export interface WorkbookReaderInternals {
  model?: { sheets?: Array<{ name: string; rId: string; state?: string }> };
  workbookRels?: Array<{ Id: string; Target: string }>;
  properties?: { model?: { date1904?: boolean } };
  styles: StylesInternals;
  sharedStrings?: string[];
  _parseSharedStrings(entry: AsyncIterable<Buffer>): AsyncGenerator<unknown>;
  _parseWorksheet(iterator: AsyncIterable<Buffer | string>, sheetNo: string): Generator<unknown>;
  [Symbol.asyncIterator](): AsyncIterator<SheetPart>;
}

/** exceljs's parsed styles.xml: cell formats (`cellXfs`) and custom number formats. */
export interface StylesInternals {
  model?: { styles?: Array<{ numFmtId?: number } | undefined> };
  index?: { numFmt?: Array<string | undefined> };
}

/** Decodes a part's bytes as UTF-8 across chunk boundaries and feeds a SAX parser. */
export async function* saxChunks(
  iterable: AsyncIterable<Buffer | string>,
  parser: SaxParser,
): AsyncGenerator<void> {
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of iterable) {
    parser.write(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    yield;
  }
  parser.write(decoder.decode());
  parser.close();
}

export function localName(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(i + 1);
}
