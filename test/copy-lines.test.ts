import { describe, expect, it } from 'vitest';
import { createRedactor } from '../src/compliance/sensitive.js';
import { UserError } from '../src/errors.js';
import { CopyLines } from '../src/pipeline/copy-lines.js';

/** COPY's row numbers back to the file's lines, in flat memory; database words for a refused row. */

/** An error as pg reports a row COPY refused. */
const pgError = (code: string, message: string, where: string, detail?: string): Error =>
  Object.assign(new Error(message), { code, where, ...(detail ? { detail } : {}) });

describe('CopyLines', () => {
  it('names the file line of a COPY row, and keeps only the latest rows', () => {
    const sent = new CopyLines();
    // Line i * 2 + 2: a two-line record each (a quoted newline), after the header.
    for (let i = 0; i < 1_100_000; i++) sent.note(i * 2 + 2);
    expect(sent.lineOf(1_100_000)).toBe(2_200_000);
    expect(sent.lineOf(1_000_000)).toBe(2_000_000);
    // Older than the ring (1,048,576 rows): no longer known, said so rather than guessed.
    expect(sent.lineOf(1)).toBeNull();
    expect(sent.lineOf(1_100_001)).toBeNull();
    const err = sent.explain(
      pgError('22003', 'numeric field overflow', 'COPY amounts, line 1, column price: "123456.00"'),
      'in/a.csv',
    );
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(
      /^in\/a\.csv \(row 1 sent to the table\), column price: value "123456\.00"/,
    );
  });

  it('leaves errors that are not about a COPY row alone', () => {
    const sent = new CopyLines();
    sent.note(2);
    const lost = Object.assign(new Error('Connection terminated'), { code: 'ECONNRESET' });
    expect(sent.explain(lost, 'in/a.csv')).toBe(lost);
    const other = pgError('42P01', 'relation "x" does not exist', 'SQL statement');
    expect(sent.explain(other, 'in/a.csv')).toBe(other);
  });

  it("withholds a sensitive column's value, and the detail of a duplicate key of one", () => {
    const sent = new CopyLines();
    sent.note(7);
    const redactor = createRedactor(new Set(['ssn']), null);
    const long = sent.explain(
      pgError(
        '22001',
        'value too long for type character varying(11)',
        'COPY people, line 1, column ssn: "123-45-6789-0"',
      ),
      'in/p.csv',
      redactor,
    ) as Error;
    expect(long.message).toBe(
      'in/p.csv line 7, column ssn: value "[sensitive ****89-0]": value too long for type character varying(11); declare max_length in validate.fields so such rows are rejected with their line',
    );
    const dup = sent.explain(
      pgError(
        '23505',
        'duplicate key value violates unique constraint "people_pkey"',
        'COPY people, line 1',
        'Key (ssn)=(123-45-6789) already exists.',
      ),
      'in/p.csv',
      redactor,
    ) as Error;
    expect(dup.message).toMatch(
      /^in\/p\.csv line 7: duplicate key value violates unique constraint "people_pkey" \(key ssn: value withheld, sensitive\);/,
    );
    expect(dup.message).not.toContain('6789');
  });
});
