import type { Batch, Cell } from './types.js';

/** Rows a format reader collects, with their lines, until they leave together as a {@link Batch}. */
export class BatchBuffer {
  private rows: Cell[][] = [];
  private lines: number[] = [];
  private starts: number[] = [];
  private ends: number[] = [];

  /** Rows collected since the last {@link take}. */
  get size(): number {
    return this.rows.length;
  }

  push(row: Cell[], line: number): void {
    this.rows.push(row);
    this.lines.push(line);
  }

  /**
   * A row with where its record stands in the text it was read from (see {@link Batch.raw});
   * `start` -1 when the record's text cannot go to COPY as is.
   */
  pushRaw(row: Cell[], line: number, start: number, end: number): void {
    this.rows.push(row);
    this.lines.push(line);
    this.starts.push(start);
    this.ends.push(end);
  }

  /**
   * The rows collected so far as a batch of `columns`; null when there are none or no columns yet.
   * `source`: the text rows pushed with {@link pushRaw} came from, and its offset.
   */
  take(columns: readonly string[] | null, source?: { text: string; offset: number }): Batch | null {
    if (this.rows.length === 0 || columns === null) return null;
    const batch: Batch = { columns, rows: this.rows, lines: this.lines };
    if (source !== undefined && this.starts.length === this.rows.length) {
      batch.raw = { text: source.text, offset: source.offset, starts: this.starts, ends: this.ends };
    }
    this.rows = [];
    this.lines = [];
    this.starts = [];
    this.ends = [];
    return batch;
  }
}
