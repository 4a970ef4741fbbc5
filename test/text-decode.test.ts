import { describe, expect, it } from 'vitest';
import { StrictDecoder, type TextEncoding } from '../src/csv/text-decode.js';

/** A small deterministic generator, so a failure names its seed. */
function rng(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s % n;
  };
}

const PIECES = [
  [0x41],
  [0x2c],
  [0x0a],
  [0xc3, 0xa9], // é
  [0xe2, 0x82, 0xac], // €
  [0xf0, 0x9f, 0x98, 0x80], // 😀
  [0xef, 0xbf, 0xbd], // a genuine U+FFFD
  [0xe9], // Latin-1 é: invalid
  [0xff], // never valid
  [0xe2, 0x82], // truncated
  [0xf0, 0x9f], // truncated
  [0xed, 0xa0, 0x80], // a surrogate: invalid
  [0xc0, 0xaf], // overlong
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0x00],
];

function decodeAll(d: StrictDecoder, bytes: Buffer, r: (n: number) => number): string {
  let text = '';
  for (let i = 0; i < bytes.length;) {
    const n = 1 + r(7);
    text += d.decode(bytes.subarray(i, i + n));
    i += n;
  }
  return text + d.end();
}

describe('StrictDecoder', () => {
  it('decodes UTF-8 exactly as TextDecoder does, whatever the chunking, and finds the first bad byte', () => {
    // Pieces 0–6 are valid text; every other piece is invalid (or a NUL), and none of them starts
    // with a continuation byte, so no two pieces combine into a valid character.
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const picks = Array.from({ length: 1 + r(40) }, () => r(PIECES.length));
      const bytes = Buffer.from(picks.flatMap((p) => PIECES[p]!));
      let firstBad = -1;
      let offset = 0;
      for (const p of picks) {
        if (p >= 7 && firstBad < 0) firstBad = offset;
        offset += PIECES[p]!.length;
      }
      const d = new StrictDecoder('utf-8');
      const text = decodeAll(d, bytes, r);
      expect(text, `seed ${seed}`).toBe(new TextDecoder('utf-8').decode(bytes));
      const problem = d.check([text], 0);
      if (firstBad < 0) expect(problem, `seed ${seed}`).toBeNull();
      else expect(problem?.reason, `seed ${seed}`).toMatch(new RegExp(`at byte offset ${firstBad}(;|$)`));
      expect(d.pending, `seed ${seed}`).toBe(false);
    }
  });

  it('names the byte offset and the raw bytes of an invalid sequence, and of a NUL', () => {
    const d = new StrictDecoder('utf-8');
    const bytes = Buffer.concat([
      Buffer.from('id,name\n1,Caf\xe9 au lait,x\n2,Al\0ice\n', 'latin1'),
      Buffer.from('3,ok \uFFFD\n', 'utf8'),
    ]);
    const text = d.decode(bytes) + d.end();
    const lines = text.split('\n');
    const start = (n: number): number => lines.slice(0, n).join('\n').length + 1;
    expect(d.check(['1', 'Caf\uFFFD au lait', 'x'], start(1))).toEqual({
      field: 1,
      shown: 'Caf\\xE9 au lait',
      reason: 'invalid utf-8 byte sequence \\xE9 at byte offset 13',
    });
    expect(d.check(['2', 'Al\0ice'], start(2))).toEqual({
      field: 1,
      shown: 'Al\\x00ice',
      reason: 'a NUL byte (\\x00) at byte offset 29; text cannot hold NUL',
    });
    // A genuine U+FFFD is text like any other.
    expect(d.check(['3', 'ok \uFFFD'], start(3))).toBeNull();
    expect(d.pending).toBe(false);
  });

  it('accepts U+FFFD for invalid bytes when asked to, but never a NUL', () => {
    const d = new StrictDecoder('utf-8', 'replace');
    const text = d.decode(Buffer.from([0x61, 0xe9, 0x2c, 0x00])) + d.end();
    expect(text).toBe('a\uFFFD,\0');
    expect(d.check(['a\uFFFD', '\0'], 0)).toMatchObject({ field: 1, shown: '\\x00' });
  });

  it('drops a byte-order mark but counts its bytes in offsets', () => {
    const d = new StrictDecoder('utf-8');
    expect(d.decode(Buffer.from([0xef, 0xbb])) + d.decode(Buffer.from([0xbf, 0x61, 0xff])) + d.end()).toBe(
      'a\uFFFD',
    );
    expect(d.check(['a\uFFFD'], 0)?.reason).toBe('invalid utf-8 byte sequence \\xFF at byte offset 4');
  });

  it('keeps a byte-order mark that is not at the start, and ASCII and multi-byte chunks alike', () => {
    const bytes = Buffer.from('\uFEFFid\nab\uFEFFc\n\uFEFF€😀\n');
    for (let size = 1; size <= bytes.length; size++) {
      const d = new StrictDecoder('utf-8');
      let text = '';
      for (let i = 0; i < bytes.length; i += size) text += d.decode(bytes.subarray(i, i + size));
      expect(text + d.end(), `chunks of ${size}`).toBe('id\nab\uFEFFc\n\uFEFF€😀\n');
      expect(d.pending).toBe(false);
    }
  });

  it.each<[TextEncoding, number[], string, string]>([
    ['utf-16le', [0xff, 0xfe, 0x61, 0x00, 0x00, 0xd8, 0x62, 0x00], 'a\uFFFDb', '\\x00\\xD8'],
    ['utf-16le', [0x61, 0x00, 0x3d, 0xd8, 0x00, 0xde, 0x00, 0xdc], 'a\u{1F600}\uFFFD', '\\x00\\xDC'],
    ['utf-16le', [0x61, 0x00, 0x62], 'a\uFFFD', '\\x62'],
    ['latin1', [0x43, 0x61, 0x66, 0xe9, 0x00], 'Caf\u00e9\0', '\\x00'],
    ['windows-1252', [0x80, 0x00, 0x81], '\u20ac\0\u0081', '\\x00'],
  ])('decodes %s strictly: %j', (encoding, bytes, expected, shownBad) => {
    const expectedText = new StrictDecoder(encoding);
    const r = rng(7);
    const text = decodeAll(expectedText, Buffer.from(bytes), r);
    expect(text).toBe(expected);
    expect(expectedText.check([text], 0)?.shown).toContain(shownBad);
  });
});
