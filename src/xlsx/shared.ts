/**
 * The two workbook-wide tables a sheet refers to: the number formats of styles.xml (to tell dates
 * from numbers) and the shared strings (rich text runs joined, phonetic hints dropped), both
 * bounded by the reader's limits while they stream.
 */
import { UserError } from '../errors.js';
import type { Styles } from './cells.js';
import { unescapeOoxml } from './cells.js';
import { localName, newParser, readPart, saxChunks } from './lib.js';
import type { WorkbookZip } from './zip.js';

/** Reads styles.xml: cellXfs number format ids and custom number formats. */
export async function readStyles(zip: WorkbookZip, part: string | null, fileName: string): Promise<Styles> {
  const styles: Styles = { xfNumFmt: [], numFmts: new Map() };
  if (part === null) return styles;
  let inCellXfs = false;
  await readPart(zip, part, fileName, (parser) => {
    parser.on('opentag', (tag) => {
      const name = localName(tag.name);
      if (name === 'cellXfs') inCellXfs = true;
      else if (name === 'xf' && inCellXfs) styles.xfNumFmt.push(Number(tag.attributes.numFmtId ?? 0));
      else if (name === 'numFmt') {
        const id = Number(tag.attributes.numFmtId);
        if (Number.isInteger(id)) styles.numFmts.set(id, tag.attributes.formatCode ?? '');
      }
    });
    parser.on('closetag', (tag) => {
      if (localName(tag.name) === 'cellXfs') inCellXfs = false;
    });
  });
  return styles;
}

/** Limits on the shared-string table. */
export interface SharedStringLimits {
  maxStrings: number;
  maxChars: number;
}

/** Reads the shared strings into plain strings. */
export async function readSharedStrings(
  zip: WorkbookZip,
  part: string | null,
  fileName: string,
  limits: SharedStringLimits,
): Promise<string[]> {
  const strings: string[] = [];
  if (part === null) return strings;
  const where = `${fileName}: ${part}`;
  const parser = newParser();
  let error: Error | null = null;
  let inSi = false;
  let inT = false;
  let phonetic = 0;
  let text = '';
  const tooLong = (): UserError =>
    new UserError(
      `${where}, shared string ${strings.length + 1}: more than ${limits.maxChars} characters (max_cell_chars)`,
    );
  parser.on('error', (err) => (error ??= err));
  parser.on('opentag', (tag) => {
    const name = localName(tag.name);
    if (name === 'si') {
      if (strings.length >= limits.maxStrings) {
        throw new UserError(`${where}: more than ${limits.maxStrings} shared strings (max_shared_strings)`);
      }
      inSi = true;
      text = '';
    } else if (name === 't' && inSi && phonetic === 0) inT = true;
    else if (name === 'rPh') phonetic++;
  });
  parser.on('text', (t) => {
    if (!inT) return;
    text += t;
    if (text.length > limits.maxChars * 8) throw tooLong();
  });
  parser.on('closetag', (tag) => {
    const name = localName(tag.name);
    if (name === 't') inT = false;
    else if (name === 'rPh') phonetic--;
    else if (name === 'si') {
      const value = unescapeOoxml(text);
      if (value.length > limits.maxChars) throw tooLong();
      strings.push(value);
      inSi = false;
    }
  });
  const stream = await zip.open(part);
  try {
    // Markup-free text longer than a string's escaped form could be fails before it is buffered.
    for await (const _ of saxChunks(stream, parser, where, limits.maxChars * 8 + 1024, tooLong)) {
      if (error) break;
    }
  } finally {
    stream.destroy();
  }
  if (error) throw new UserError(`${where} is malformed: ${(error as Error).message}`);
  return strings;
}
