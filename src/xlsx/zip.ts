/**
 * Random-access reading of a workbook's zip (yauzl): the central directory is read once, then any
 * part is opened by name in any order — no forward-only unzip, no spooling of parts that arrive
 * "too early" to a temp directory. Sizes are checked against the limits before a part is inflated
 * (declared sizes; yauzl fails a part whose inflated size differs from the declared one) and again
 * while it streams.
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { UserError } from '../errors.js';

/** Limits on what the zip may expand to. */
export interface ZipLimits {
  /** Sum of the declared uncompressed sizes of all entries, in bytes. */
  maxTotalBytes: number;
  /** Uncompressed / compressed size of one entry. */
  maxRatio: number;
}

/** An open workbook zip. */
export interface WorkbookZip {
  /** Entry names, without a leading `/`, as stored. */
  has(name: string): boolean;
  /** Opens a part's inflated bytes; throws a UserError when it is missing. */
  open(name: string): Promise<Readable>;
  close(): void;
}

/** Entries below this size are not held to the ratio: tiny parts compress absurdly well. */
const RATIO_FLOOR_BYTES = 1 << 20;

/** Opens `path` as a zip and checks every entry against `limits`. `fileName` is used in messages. */
export async function openWorkbookZip(
  path: string,
  fileName: string,
  limits: ZipLimits,
): Promise<WorkbookZip> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false }, (err, z) => {
      if (err || !z) {
        reject(
          new UserError(
            `${fileName}: not a readable xlsx workbook (${err?.message ?? 'no zip'}); expected an Excel 2007+ .xlsx file (not .xls, not encrypted)`,
          ),
        );
      } else resolve(z);
    });
  });
  const entries = new Map<string, yauzl.Entry>();
  try {
    let total = 0;
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName.replace(/^\/+/, '');
        const ratio = entry.uncompressedSize / Math.max(1, entry.compressedSize);
        if (entry.uncompressedSize > RATIO_FLOOR_BYTES && ratio > limits.maxRatio) {
          reject(
            new UserError(
              `${fileName}: part ${name} expands ${Math.round(ratio)} times (${entry.compressedSize} → ${entry.uncompressedSize} bytes), more than max_compression_ratio ${limits.maxRatio}; a zip bomb?`,
            ),
          );
          return;
        }
        total += entry.uncompressedSize;
        if (total > limits.maxTotalBytes) {
          reject(
            new UserError(
              `${fileName}: the workbook expands to more than ${limits.maxTotalBytes} bytes (max_uncompressed_mb); refused before reading it`,
            ),
          );
          return;
        }
        entries.set(name.toLowerCase(), entry);
        zip.readEntry();
      });
      zip.on('end', () => resolve());
      zip.on('error', (err: Error) =>
        reject(new UserError(`${fileName}: not a readable xlsx workbook (${err.message})`)),
      );
      zip.readEntry();
    });
  } catch (err) {
    zip.close();
    throw err;
  }
  return {
    // Part names are case-insensitive in OPC.
    has: (name) => entries.has(name.toLowerCase()),
    open: (name) =>
      new Promise<Readable>((resolve, reject) => {
        const entry = entries.get(name.toLowerCase());
        if (!entry) {
          reject(new UserError(`${fileName}: the part ${name} is missing from the workbook`));
          return;
        }
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) reject(new UserError(`${fileName}: cannot read part ${name}: ${err?.message}`));
          else resolve(stream);
        });
      }),
    close: () => zip.close(),
  };
}
