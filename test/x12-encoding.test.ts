import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { X12Error } from '../src/x12/errors.js';
import { splitX12 } from '../src/x12/splitter.js';
import type { X12Event } from '../src/x12/types.js';
import { chunked, FIXTURES } from './helpers/x12.js';

/** The X12 decoding point is strict: bytes that are not UTF-8 fail the file, naming where they are. */

async function withLatin1Name(): Promise<{ data: Buffer; offset: number }> {
  const text = await readFile(path.join(FIXTURES, 'partner-a-850.edi'), 'latin1');
  const at = text.indexOf('ACME DISTRIBUTION');
  const data = Buffer.from(text.replace('ACME DISTRIBUTION', 'CAF\xc9 DISTRIBUTION'), 'latin1');
  return { data, offset: at + 3 };
}

async function events(data: Buffer, size: number, encoding?: 'utf8' | 'latin1'): Promise<X12Event[]> {
  const out: X12Event[] = [];
  for await (const ev of splitX12(
    chunked(data, size),
    encoding ? { file: 'po.edi', encoding } : { file: 'po.edi' },
  ))
    out.push(ev);
  return out;
}

describe('X12 strict decoding', () => {
  it.each([1, 7, 1 << 16])(
    'refuses bytes that are not UTF-8 with the byte offset (chunks of %i)',
    async (size) => {
      const { data, offset } = await withLatin1Name();
      const err = await events(data, size).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(X12Error);
      expect((err as X12Error).problem.code).toBe('INVALID_ENCODING');
      expect((err as X12Error).message).toBe(
        `po.edi, byte offset ${offset}: invalid utf8 byte sequence \\xC9; expected UTF-8 text (declare encoding latin1 for 8-bit files)`,
      );
    },
  );

  it('reads the same file exactly when it is declared latin1', async () => {
    const { data } = await withLatin1Name();
    const all = await events(data, 5, 'latin1');
    const set = all.find((e) => e.kind === 'transaction');
    expect(JSON.stringify(set)).toContain('CAFÉ DISTRIBUTION');
  });
});
