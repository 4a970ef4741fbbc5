/**
 * Which line of the source file each row sent to COPY came from, so that PostgreSQL's
 * "COPY t, line 812, column price" names the file's line instead of the row's position in the COPY.
 *
 * Only the latest rows are kept (a ring of {@link CAPACITY} lines, 4 MB at most, grown as rows come):
 * PostgreSQL reports a bad row while the rows after it are still in flight, which socket buffers
 * bound to far fewer rows than that, so memory stays flat however large the file.
 */
import type { Redactor } from '../compliance/sensitive.js';
import { UserError } from '../errors.js';

const CAPACITY = 1 << 20;

export class CopyLines {
  private ring = new Int32Array(1024);
  private sent = 0;

  /** A row of source line `line` was handed to the sink. */
  note(line: number): void {
    if (this.sent === this.ring.length && this.ring.length < CAPACITY) {
      const grown = new Int32Array(this.ring.length * 2);
      grown.set(this.ring);
      this.ring = grown;
    }
    this.ring[this.sent % this.ring.length] = line;
    this.sent++;
  }

  /** The source line of the COPY's row `row` (1-based), or null when it is no longer kept. */
  lineOf(row: number): number | null {
    if (row < 1 || row > this.sent || this.sent - row >= this.ring.length) return null;
    return this.ring[(row - 1) % this.ring.length]!;
  }

  /**
   * A data error PostgreSQL found in a row of the COPY (a value too large, a NULL in a NOT NULL
   * column, a duplicate key) as the operator's error: the file, its line, the column and the value.
   * Other errors come back unchanged.
   */
  explain(err: unknown, file: string, redactor?: Redactor): unknown {
    const e = err as { code?: unknown; where?: unknown; message?: unknown; detail?: unknown } | null;
    if (typeof e?.code !== 'string' || !/^2[23]/.test(e.code) || typeof e.where !== 'string') return err;
    const at = /^COPY [^,]+, line (\d+)(?:, column ([^:]+)(?:: (.*))?)?/.exec(e.where);
    if (!at) return err;
    const line = this.lineOf(Number(at[1]));
    const where = [
      line !== null ? `${file} line ${line}` : `${file} (row ${at[1]} sent to the table)`,
      at[2] ? `column ${at[2]}` : null,
    ]
      .filter(Boolean)
      .join(', ');
    // PostgreSQL's detail names the key of a duplicate ("Key (id)=(5) already exists.").
    let detail = typeof e.detail === 'string' ? ` (${e.detail.replace(/\.$/, '')})` : '';
    let value = at[3] !== undefined ? ` value ${at[3]}:` : '';
    if (redactor) {
      // A sensitive column's value never reaches the message; a key naming one withholds its detail.
      // The sink's guard (redactDatabaseError) may have masked it already: it is not masked twice.
      const raw = at[3]?.replace(/^"(.*)"$/s, '$1');
      if (at[2] && raw !== undefined && redactor.fields.has(at[2]) && !redactor.isProtected(raw)) {
        const r = redactor.reject({ file, line, field: at[2], value: raw, reason: detail });
        value = ` value ${JSON.stringify(r.value)}:`;
        detail = r.reason;
      }
      const key = /^ \(Key \(([^)]*)\)/.exec(detail)?.[1];
      if (key?.split(/,\s*/).some((c) => redactor.fields.has(c)))
        detail = ` (key ${key}: value withheld, sensitive)`;
    }
    const hint = HINTS[e.code];
    return new UserError(`${where}:${value} ${String(e.message)}${detail}${hint ? `; ${hint}` : ''}`, 1);
  }
}

/** What to do, per SQLSTATE, after the database's own words. */
const HINTS: Record<string, string> = {
  '22003':
    "the value is too large for the column's type; declare its precision and scale in validate.fields so such rows are rejected with their line",
  '22001': 'declare max_length in validate.fields so such rows are rejected with their line',
  '23502': 'declare the field required in validate.fields so such rows are rejected with their line',
  '23505':
    'the key is in the table already or twice in the file; sink mode upsert (with sink.key) updates instead',
};
