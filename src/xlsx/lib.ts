/**
 * The SAX plumbing shared by the XLSX part parsers: saxes directly over parts opened by random
 * access (zip.ts), decoded strictly as UTF-8.
 */
import type { Readable } from 'node:stream';
import { SaxesParser } from 'saxes';
import { CancelledError, TimeoutError, UserError } from '../errors.js';
import { escapeBytes, StrictDecoder } from '../csv/text-decode.js';
import type { WorkbookZip } from './zip.js';

export type Parser = SaxesParser;

/** A SAX parser for one part. */
export function newParser(): Parser {
  return new SaxesParser({ position: false });
}

/**
 * Feeds a part's bytes to `parser`, decoded strictly as UTF-8 across chunk boundaries; yields after
 * each chunk. `maxRun` bounds the characters between two `<` (a cell's text, a tag): a longer run
 * fails through `tooLong` before the parser buffers it, so a single multi-GB cell cannot exhaust memory.
 */
export async function* saxChunks(
  stream: AsyncIterable<Buffer>,
  parser: Parser,
  where: string,
  maxRun: number,
  tooLong: () => Error,
): AsyncGenerator<void> {
  const decoder = new StrictDecoder('utf-8');
  let run = 0;
  const feed = (text: string): void => {
    const bad = decoder.takeInvalid();
    if (bad) {
      throw new UserError(
        `${where}: invalid UTF-8 byte sequence ${escapeBytes(bad.raw)} at byte offset ${bad.byte} of the part; an xlsx part must be UTF-8`,
      );
    }
    const lt = text.lastIndexOf('<');
    run = lt < 0 ? run + text.length : text.length - lt - 1;
    if (run > maxRun) throw tooLong();
    parser.write(text);
  };
  const chunks = stream[Symbol.asyncIterator]();
  let done = false;
  try {
    while (!done) {
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (err) {
        done = true; // an iterator that threw is finished; return() is not called on it
        throw unzipError(err as Error, where);
      }
      done = next.done === true;
      if (!done) {
        feed(decoder.decode(next.value));
        yield;
      }
    }
  } finally {
    // Stopped early (a limit, a consumer that left): let the stream clean up, as for-await would.
    if (!done) await chunks.return?.();
  }
  feed(decoder.end());
  parser.close();
}

/**
 * An error of the zip stream itself (yauzl, zlib: a part that inflates past its declared size, bad
 * deflate data) as the operator's one line; cancellation and our own errors pass as they are.
 */
function unzipError(e: Error, where: string): Error {
  if (
    e instanceof UserError ||
    e instanceof CancelledError ||
    e instanceof TimeoutError ||
    e.name === 'AbortError'
  )
    return e;
  return new UserError(
    `${where}: the part cannot be unzipped (${e.message}); the file is damaged or not what it claims to be`,
  );
}

/** Element name without its namespace prefix: `x:workbook` → `workbook`. */
export function localName(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(i + 1);
}

/** Longest run between tags accepted in metadata parts (workbook, rels, styles). */
const META_MAX_RUN = 1 << 20;

/** Parses a whole (small) metadata part with handlers set up by `setup`. */
export async function readPart(
  zip: WorkbookZip,
  part: string,
  fileName: string,
  setup: (parser: Parser) => void,
): Promise<void> {
  const parser = newParser();
  let error: Error | null = null;
  parser.on('error', (err) => (error ??= err));
  setup(parser);
  const where = `${fileName}: ${part}`;
  const stream: Readable = await zip.open(part);
  try {
    for await (const _ of saxChunks(
      stream,
      parser,
      where,
      META_MAX_RUN,
      () => new UserError(`${where}: more than ${META_MAX_RUN} characters without markup`),
    )) {
      if (error) break;
    }
  } finally {
    stream.destroy();
  }
  if (error) throw new UserError(`${where} is malformed: ${(error as Error).message}`);
}
