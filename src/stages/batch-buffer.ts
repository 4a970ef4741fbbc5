import type { Batch, Cell } from './types.js';

/** Rows a format reader collects, with their lines, until they leave together as a {@link Batch}. */
export class BatchBuffer {
  private rows: Cell[][] = [];
  private lines: number[] = [];

  /** Rows collected since the last {@link take}. */
  get size(): number {
    return this.rows.length;
  }

  push(row: Cell[], line: number): void {
    this.rows.push(row);
    this.lines.push(line);
  }

  /** The rows collected so far as a batch of `columns`; null when there are none or no columns yet. */
  take(columns: readonly string[] | null): Batch | null {
    if (this.rows.length === 0 || columns === null) return null;
    const batch: Batch = { columns, rows: this.rows, lines: this.lines };
    this.rows = [];
    this.lines = [];
    return batch;
  }
}
