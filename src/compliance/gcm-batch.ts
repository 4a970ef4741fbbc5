/**
 * AES-256-GCM over many short values at once, byte for byte what node:crypto's `aes-256-gcm` makes
 * with a 12-byte IV and a 16-byte tag (NIST SP 800-38D), for the values encrypted at rest.
 *
 *   values ──► counter blocks (J0, J0+1 … of every value) ──► one AES-256-ECB update ──► keystream
 *          ──► ciphertext = clear ⊕ keystream ──► GHASH (in JS, tables of H) ──► tag = GHASH ⊕ E(J0)
 *
 * Why: node:crypto needs one cipher object per value (a fresh IV), and creating it costs more than a
 * whole CSV row's load (about 4–25 µs here); @noble/ciphers' gcm was slower still (about 40 µs a
 * value: it expands the key per call). The block cipher stays node:crypto's (AES-NI): one ECB
 * cipher object per key, fed every counter block of a batch in one `update`. Only GHASH, a
 * multiplication in GF(2^128), runs in JS, with 16 tables of 256 products per key (64 KiB), so a
 * product is 16 lookups. test/gcm-batch.test.ts holds both directions to node:crypto's own
 * aes-256-gcm on random keys, IVs and values.
 */
import { createCipheriv, type Cipher } from 'node:crypto';

/** Bytes of the IV (96 bits: J0 = IV ‖ 0^31 ‖ 1) and of the tag. */
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

/** Products of H by every byte at every position: T[((pos * 256) + byte) * 4 + word]. */
type Table = Int32Array;

/** x · Y in GCM's bit order (bit 0 is the top bit of byte 0): a right shift, reduced by R = 0xE1 ‖ 0^120. */
function mulX(w: Int32Array): void {
  const carry = w[3]! & 1;
  w[3] = (w[3]! >>> 1) | (w[2]! << 31);
  w[2] = (w[2]! >>> 1) | (w[1]! << 31);
  w[1] = (w[1]! >>> 1) | (w[0]! << 31);
  w[0] = (w[0]! >>> 1) ^ (carry ? 0xe1000000 : 0);
}

/** The 16 × 256 products of `h` (4 big-endian words) by a byte at each of the 16 positions. */
function tableOf(h: Int32Array): Table {
  // p[k] = h · x^k: the product by the single bit k.
  const p = new Int32Array(128 * 4);
  const w = Int32Array.from(h);
  for (let k = 0; k < 128; k++) {
    p.set(w, k * 4);
    mulX(w);
  }
  const t = new Int32Array(16 * 256 * 4);
  for (let pos = 0; pos < 16; pos++) {
    const base = pos * 256 * 4;
    for (let b = 1; b < 256; b++) {
      // The lowest set bit of b is the highest power of x among its bits (bit 7 of a byte is x^(8·pos)).
      const low = b & -b;
      const bit = 8 * pos + 7 - (31 - Math.clz32(low));
      const rest = base + (b ^ low) * 4;
      const at = base + b * 4;
      for (let i = 0; i < 4; i++) t[at + i] = t[rest + i]! ^ p[bit * 4 + i]!;
    }
  }
  return t;
}

/** s ← s · H, with `t` the table of H. */
function gmul(t: Table, s: Int32Array): void {
  let z0 = 0;
  let z1 = 0;
  let z2 = 0;
  let z3 = 0;
  for (let i = 0; i < 4; i++) {
    const x = s[i]!;
    const base = i * 4096;
    let a = base + ((x >>> 22) & 0x3fc);
    z0 ^= t[a]!;
    z1 ^= t[a + 1]!;
    z2 ^= t[a + 2]!;
    z3 ^= t[a + 3]!;
    a = base + 1024 + ((x >>> 14) & 0x3fc);
    z0 ^= t[a]!;
    z1 ^= t[a + 1]!;
    z2 ^= t[a + 2]!;
    z3 ^= t[a + 3]!;
    a = base + 2048 + ((x >>> 6) & 0x3fc);
    z0 ^= t[a]!;
    z1 ^= t[a + 1]!;
    z2 ^= t[a + 2]!;
    z3 ^= t[a + 3]!;
    a = base + 3072 + ((x << 2) & 0x3fc);
    z0 ^= t[a]!;
    z1 ^= t[a + 1]!;
    z2 ^= t[a + 2]!;
    z3 ^= t[a + 3]!;
  }
  s[0] = z0;
  s[1] = z1;
  s[2] = z2;
  s[3] = z3;
}

/** The big-endian word at `o` of `b`, zero past `end`. */
function word(b: Uint8Array, o: number, end: number): number {
  if (o + 4 <= end) return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
  let w = 0;
  for (let k = 0; k < 4; k++) w |= (o + k < end ? b[o + k]! : 0) << (24 - 8 * k);
  return w;
}

const LITTLE_ENDIAN = new Uint8Array(Int32Array.of(1).buffer)[0] === 1;

/** The 4 bytes at `o` of `b` as a word in the machine's own byte order (for an Int32Array view). */
function readWord(b: Uint8Array, o: number, le: boolean): number {
  return le
    ? b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)
    : (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}

/** A block as 4 big-endian words. */
function h4(b: Uint8Array): Int32Array {
  return Int32Array.of(word(b, 0, 16), word(b, 4, 16), word(b, 8, 16), word(b, 12, 16));
}

/** Many values: value i is `bytes[at[i] .. at[i] + len[i])`. */
export interface Values {
  bytes: Uint8Array;
  at: Int32Array;
  len: Int32Array;
}

/**
 * AES-256-GCM under one key and one additional authenticated data, for batches of values. Keep one
 * per key: building it costs the key's tables (about a millisecond).
 */
export class GcmBatch {
  private readonly ecb: Cipher;
  private readonly t: Table;
  /** The table of H², and GHASH but for the ciphertext's own term, per ciphertext length 0..16. */
  private readonly t2: Table;
  private readonly short: Int32Array;
  /** GHASH state after the additional data, and its length in bits. */
  private readonly afterAad: Int32Array;
  private readonly aadBits: number;
  private readonly s = new Int32Array(4);

  constructor(key: Uint8Array, aad: Uint8Array) {
    if (key.length !== 32) throw new Error('AES-256 needs a 32-byte key');
    this.ecb = createCipheriv('aes-256-ecb', key, null);
    this.ecb.setAutoPadding(false);
    const h = this.ecb.update(Buffer.alloc(16));
    this.t = tableOf(h4(h));
    const s = new Int32Array(4);
    for (let o = 0; o < aad.length; o += 16) {
      for (let i = 0; i < 4; i++) s[i] = s[i]! ^ word(aad, o + 4 * i, aad.length);
      gmul(this.t, s);
    }
    this.afterAad = s;
    this.aadBits = aad.length * 8;
    // GHASH is linear: for a ciphertext C of one block (at most 16 bytes),
    //   GHASH = ((A·H ⊕ C)·H ⊕ L)·H = A·H³ ⊕ L·H ⊕ C·H²  (A·H: the state after the additional data)
    // where only C·H² depends on the value: one product instead of two, from a table of H².
    const h2 = Int32Array.from(h4(h));
    gmul(this.t, h2);
    this.t2 = tableOf(h2);
    this.short = new Int32Array(17 * 4);
    for (let l = 0; l <= 16; l++) {
      const k = Int32Array.from(this.afterAad);
      if (l > 0) gmul(this.t, k);
      k[1] = k[1]! ^ this.aadBits;
      k[3] = k[3]! ^ (l * 8);
      gmul(this.t, k);
      this.short.set(k, l * 4);
    }
  }

  /**
   * The counter blocks of every value into `ctr`, from block `blk[i]` on: J0 = iv ‖ 1, then iv ‖ 2 …
   * one per 16 bytes of the value; the IV of value i at `ivs[ivAt[i]]`.
   */
  private counters(
    ivs: Uint8Array,
    ivAt: Int32Array,
    ctLen: Int32Array,
  ): { ks: Uint8Array; blk: Int32Array } {
    const n = ctLen.length;
    const blk = new Int32Array(n);
    let blocks = 0;
    for (let i = 0; i < n; i++) {
      blk[i] = blocks;
      blocks += 1 + ((ctLen[i]! + 15) >>> 4);
    }
    // Written a word at a time: the buffer is fresh (aligned), and an IV is read as 3 words.
    const ctr = new Uint8Array(blocks * 16);
    const w = new Int32Array(ctr.buffer);
    const le = LITTLE_ENDIAN;
    for (let i = 0; i < n; i++) {
      const iv = ivAt[i]!;
      const a = readWord(ivs, iv, le);
      const b = readWord(ivs, iv + 4, le);
      const c = readWord(ivs, iv + 8, le);
      const m = 1 + ((ctLen[i]! + 15) >>> 4);
      let o = blk[i]! * 4;
      for (let k = 1; k <= m; k++, o += 4) {
        w[o] = a;
        w[o + 1] = b;
        w[o + 2] = c;
        // The 32-bit counter, big-endian in memory.
        w[o + 3] = le ? (k << 24) | ((k << 8) & 0xff0000) | ((k >>> 8) & 0xff00) | (k >>> 24) : k;
      }
    }
    const out = this.ecb.update(ctr);
    if (out.length !== ctr.length) throw new Error('AES-ECB returned a partial keystream');
    return { ks: new Uint8Array(out.buffer, out.byteOffset, out.length), blk };
  }

  /** GHASH of the `len` bytes of ciphertext at `o` of `b` (the additional data included), in this.s. */
  private ghash(b: Uint8Array, o: number, len: number): Int32Array {
    const s = this.s;
    const end = o + len;
    if (len <= 16) {
      const k = len * 4;
      const short = this.short;
      s[0] = word(b, o, end);
      s[1] = word(b, o + 4, end);
      s[2] = word(b, o + 8, end);
      s[3] = word(b, o + 12, end);
      if (len > 0) gmul(this.t2, s);
      s[0] = s[0]! ^ short[k]!;
      s[1] = s[1]! ^ short[k + 1]!;
      s[2] = s[2]! ^ short[k + 2]!;
      s[3] = s[3]! ^ short[k + 3]!;
      return s;
    }
    const t = this.t;
    s.set(this.afterAad);
    for (let p = o; p < end; p += 16) {
      s[0] = s[0]! ^ word(b, p, end);
      s[1] = s[1]! ^ word(b, p + 4, end);
      s[2] = s[2]! ^ word(b, p + 8, end);
      s[3] = s[3]! ^ word(b, p + 12, end);
      gmul(t, s);
    }
    // The lengths block: 64-bit bit lengths of the additional data and of the ciphertext.
    const bits = len * 8;
    s[1] = s[1]! ^ this.aadBits;
    s[2] = s[2]! ^ Math.floor(bits / 0x100000000);
    s[3] = s[3]! ^ (bits >>> 0);
    gmul(t, s);
    return s;
  }

  /**
   * Encrypts every value under its IV (`ivs`: 12 bytes a value, in order) and writes value i as
   * iv ‖ ciphertext ‖ tag at `out[outAt[i]]`.
   */
  encrypt(clear: Values, ivArray: Uint8Array, outArray: Uint8Array, outAt: Int32Array): void {
    const { at, len } = clear;
    const bytes = plain(clear.bytes);
    const ivs = plain(ivArray);
    const out = plain(outArray);
    const n = len.length;
    const ivAt = new Int32Array(n);
    for (let i = 0; i < n; i++) ivAt[i] = i * IV_BYTES;
    const { ks, blk } = this.counters(ivs, ivAt, len);
    for (let i = 0; i < n; i++) {
      const l = len[i]!;
      const src = at[i]!;
      const dst = outAt[i]!;
      const iv = i * IV_BYTES;
      for (let k = 0; k < IV_BYTES; k++) out[dst + k] = ivs[iv + k]!;
      const j0 = blk[i]! * 16;
      const c = dst + IV_BYTES;
      for (let k = 0; k < l; k++) out[c + k] = bytes[src + k]! ^ ks[j0 + 16 + k]!;
      writeTag(out, c + l, this.ghash(out, c, l), ks, j0);
    }
  }

  /**
   * Decrypts value i, stored as iv ‖ ciphertext ‖ tag at `bodies.bytes[at[i]]` (`len[i]` bytes in
   * all), writing its clear bytes at `out[outAt[i]]`. Returns, per value, 1 when its tag matched;
   * a value whose tag did not match (or that is too short to hold one) has nothing written.
   */
  decrypt(bodies: Values, outArray: Uint8Array, outAt: Int32Array): Uint8Array {
    const { at, len } = bodies;
    const bytes = plain(bodies.bytes);
    const out = plain(outArray);
    const n = len.length;
    const ctLen = new Int32Array(n);
    for (let i = 0; i < n; i++) ctLen[i] = Math.max(0, len[i]! - IV_BYTES - TAG_BYTES);
    const { ks, blk } = this.counters(bytes, at, ctLen);
    const ok = new Uint8Array(n);
    const tag = new Uint8Array(TAG_BYTES);
    for (let i = 0; i < n; i++) {
      if (len[i]! < IV_BYTES + TAG_BYTES) continue;
      const l = ctLen[i]!;
      const c = at[i]! + IV_BYTES;
      const j0 = blk[i]! * 16;
      writeTag(tag, 0, this.ghash(bytes, c, l), ks, j0);
      let diff = 0;
      for (let k = 0; k < TAG_BYTES; k++) diff |= tag[k]! ^ bytes[c + l + k]!;
      if (diff !== 0) continue;
      ok[i] = 1;
      const dst = outAt[i]!;
      for (let k = 0; k < l; k++) out[dst + k] = bytes[c + k]! ^ ks[j0 + 16 + k]!;
    }
    return ok;
  }
}

/** A Buffer as a plain Uint8Array: one kind of array in the loops keeps V8's element access monomorphic. */
function plain(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** tag = GHASH ⊕ E(J0), written at `o` of `out`. */
function writeTag(out: Uint8Array, o: number, s: Int32Array, ks: Uint8Array, j0: number): void {
  for (let w = 0; w < 4; w++) {
    const x = s[w]!;
    const p = o + 4 * w;
    const q = j0 + 4 * w;
    out[p] = (x >>> 24) ^ ks[q]!;
    out[p + 1] = ((x >>> 16) & 255) ^ ks[q + 1]!;
    out[p + 2] = ((x >>> 8) & 255) ^ ks[q + 2]!;
    out[p + 3] = (x & 255) ^ ks[q + 3]!;
  }
}
