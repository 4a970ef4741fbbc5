import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { stringify, type Stringifier } from 'csv-stringify';
import { UserError } from '../errors.js';
import type { Reject } from '../stages/types.js';
import { neutraliseFormula } from '../csv/writer.js';

/**
 * A file's rejects: all of them into a CSV report, the first ones in memory.
 *
 *   add(reject) ──► csv-stringify ──pipe──► report file (ERP_DATA_DIR/runs/<run>/rejects-….csv)
 *        ▲                                     │
 *        └── ready(): waits for 'drain' ◄──────┘  (called between batches: memory stays flat however many rejects)
 *
 * Rows report their rejects synchronously, so the report is written in the background and the
 * pipeline waits at {@link RejectReport.ready} between batches. A write error (disk full, no
 * permission) fails the file with a {@link RejectReportError}: a retry would meet the same disk.
 */
export class RejectReport {
  /** Reject entries (a row can have several). */
  count = 0;
  /** Rows the format itself refused (a wrong field count, an unclosed quote, an error cell), counted once per line. */
  structural = 0;
  readonly first: Reject[] = [];
  private lastFormatLine: number | null | undefined = undefined;
  private out: Stringifier | null = null;
  private sink: WriteStream | null = null;
  private opened: Promise<void> = Promise.resolve();
  private failure: RejectReportError | null = null;

  constructor(
    private readonly reportPath: string | null,
    private readonly keep: number,
  ) {}

  add = (r: Reject): void => {
    this.count++;
    if (this.first.length < this.keep) this.first.push(r);
    if (this.reportPath === null || this.failure) return;
    if (this.out === null) this.open(this.reportPath);
    // A reject report is opened in spreadsheets, and its values come from partners: text is
    // neutralised by the CSV writer's one policy (csv/writer.ts), which also covers a leading line
    // feed and the full-width forms csv-stringify's escape_formulas lets through.
    this.out!.write([r.file, r.line, r.field, r.value, r.reason].map(safeCell));
  };

  /** What the format stage reports: each refused row counts once, however many of its cells were bad. */
  addFromFormat = (r: Reject): void => {
    if (r.line === null || r.line !== this.lastFormatLine) this.structural++;
    this.lastFormatLine = r.line;
    this.add(r);
  };

  private open(reportPath: string): void {
    const out = stringify({ header: true, columns: ['file', 'line', 'field', 'value', 'reason'] });
    this.out = out;
    out.on('error', (err: Error) => this.fail(err));
    this.opened = mkdir(path.dirname(reportPath), { recursive: true }).then(
      () => {
        const sink = createWriteStream(reportPath);
        this.sink = sink;
        sink.on('error', (err: Error) => this.fail(err));
        out.pipe(sink);
      },
      (err: Error) => this.fail(err),
    );
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = new RejectReportError(this.reportPath ?? '', err);
    // Nothing more is written: the stringifier's buffer is released and the file is closed.
    this.out?.unpipe();
    this.out?.destroy();
    this.sink?.destroy();
  }

  /**
   * Resolves once the report has room for more (its buffer drained); throws the report's write
   * error, if any. Called between batches.
   */
  async ready(): Promise<void> {
    if (this.failure) throw this.failure;
    const out = this.out;
    if (out === null || !out.writableNeedDrain) return;
    await this.opened;
    if (this.failure) throw this.failure;
    const ac = new AbortController();
    try {
      await Promise.race([
        once(out, 'drain', { signal: ac.signal }),
        once(out, 'close', { signal: ac.signal }),
        // The file's errors reach the stringifier through fail(), which destroys it ('close').
      ]);
    } finally {
      ac.abort();
    }
    if (this.failure) throw this.failure;
  }

  /** Flushes the report; returns its path, or null when there were no rejects. Throws a write error. */
  async close(): Promise<string | null> {
    if (this.failure) throw this.failure;
    if (this.out === null) return null;
    await this.opened;
    if (this.failure) throw this.failure;
    const sink = this.sink!;
    const done = new Promise<void>((resolve) => {
      sink.once('close', resolve);
    });
    this.out.end();
    await done;
    if (this.failure) throw this.failure;
    return this.reportPath;
  }

  /** Stops writing and removes the report (a partial one after a write error). */
  async discard(): Promise<void> {
    this.out?.unpipe();
    this.out?.destroy();
    if (this.sink && !this.sink.closed) {
      const closed = once(this.sink, 'close').catch(() => undefined);
      this.sink.destroy();
      await closed;
    }
    await this.opened;
    if (this.out !== null && this.reportPath !== null) await rm(this.reportPath, { force: true });
  }

  /** Whether writing the report failed. */
  get failed(): boolean {
    return this.failure !== null;
  }
}

/** The reject report could not be written: the file fails, permanently (a retry meets the same disk). */
export class RejectReportError extends UserError {
  override name = 'RejectReportError';
  constructor(reportPath: string, cause: Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOSPC'
        ? 'no space left on the device'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EFBIG'
            ? 'file too large'
            : cause.message;
    super(
      `cannot write the reject report ${reportPath} (${code ? `${code}: ` : ''}${why}); the file was rolled back and the report removed`,
      1,
    );
  }
}

/** A report cell as written: text neutralised against spreadsheet formulas, numbers and nulls as they are. */
function safeCell(v: string | number | null): string | number | null {
  return typeof v === 'string' ? neutraliseFormula(v) : v;
}
