import { createCipheriv, createDecipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GcmBatch, IV_BYTES, TAG_BYTES } from '../src/compliance/gcm-batch.js';
import {
  decryptValue,
  decryptValues,
  encryptValue,
  encryptValues,
  parseKeyring,
} from '../src/compliance/keys.js';

/*
 * The batched AES-256-GCM (src/compliance/gcm-batch.ts) against node:crypto's own aes-256-gcm as
 * the oracle: the same key, IV, additional data and clear bytes give the same ciphertext and tag,
 * byte for byte, for values of 0 to several hundred bytes; what node:crypto encrypted the batch
 * decrypts, and a value with any bit of its IV, ciphertext or tag flipped is refused. Then the
 * envelopes of encryptValues / decryptValues against encryptValue / decryptValue.
 */
const AAD = Buffer.from('erp:enc:v1', 'utf8');
const SEED = 19;

function oracleEncrypt(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, clear: Uint8Array): Buffer {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  return Buffer.concat([Buffer.from(iv), c.update(clear), c.final(), c.getAuthTag()]);
}

function oracleDecrypt(key: Uint8Array, aad: Uint8Array, body: Uint8Array): Buffer {
  const d = createDecipheriv('aes-256-gcm', key, body.subarray(0, IV_BYTES));
  d.setAAD(aad);
  d.setAuthTag(body.subarray(body.length - TAG_BYTES));
  return Buffer.concat([d.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), d.final()]);
}

/** Values laid one after the other in one buffer, each `gap` bytes apart (odd offsets included). */
function lay(values: Uint8Array[], extra: number, gap: number) {
  const at = new Int32Array(values.length);
  const len = new Int32Array(values.length);
  let o = gap;
  values.forEach((v, i) => {
    at[i] = o;
    len[i] = v.length;
    o += v.length + extra + gap;
  });
  const bytes = new Uint8Array(o);
  values.forEach((v, i) => bytes.set(v, at[i]!));
  return { bytes, at, len };
}

const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
const aad = fc.oneof(fc.constant(new Uint8Array(AAD)), fc.uint8Array({ maxLength: 40 }));
const value = fc.oneof(
  fc.uint8Array({ maxLength: 20 }),
  fc.uint8Array({ maxLength: 400 }),
  fc.integer({ min: 0, max: 48 }).map((n) => new Uint8Array(n).fill(0xff)),
);
const values = fc.array(value, { minLength: 1, maxLength: 12 });

describe('GcmBatch against node:crypto aes-256-gcm', () => {
  it('encrypts byte for byte as node:crypto does, and node:crypto decrypts it', () => {
    fc.assert(
      fc.property(key, aad, values, fc.integer({ min: 0, max: 5 }), (k, a, vs, gap) => {
        const ivs = new Uint8Array(vs.length * IV_BYTES).map((_, i) => (i * 131 + vs.length + k[0]!) & 255);
        const clear = lay(vs, 0, gap);
        const out = lay(vs, IV_BYTES + TAG_BYTES, gap);
        new GcmBatch(k, a).encrypt(clear, ivs, out.bytes, out.at);
        vs.forEach((v, i) => {
          const body = out.bytes.subarray(out.at[i]!, out.at[i]! + v.length + IV_BYTES + TAG_BYTES);
          const iv = ivs.subarray(i * IV_BYTES, (i + 1) * IV_BYTES);
          expect(Buffer.from(body).equals(oracleEncrypt(k, iv, a, v))).toBe(true);
          expect(oracleDecrypt(k, a, body).equals(Buffer.from(v))).toBe(true);
        });
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('decrypts what node:crypto encrypted, and refuses a value with any bit flipped', () => {
    fc.assert(
      fc.property(key, aad, values, fc.nat(), fc.integer({ min: 0, max: 7 }), (k, a, vs, where, bit) => {
        const bodies = vs.map((v, i) => oracleEncrypt(k, new Uint8Array(IV_BYTES).fill(i * 7 + 1), a, v));
        // One value, chosen by `where`, has one bit flipped somewhere in its body.
        const bad = where % vs.length;
        const at = where % bodies[bad]!.length;
        bodies[bad]![at]! ^= 1 << bit;
        const stored = lay(bodies, 0, 1);
        const clear = lay(vs, 0, 1);
        const out = new Uint8Array(clear.bytes.length);
        const ok = new GcmBatch(k, a).decrypt(stored, out, clear.at);
        vs.forEach((v, i) => {
          expect(ok[i]).toBe(i === bad ? 0 : 1);
          if (i !== bad)
            expect(
              Buffer.from(out.subarray(clear.at[i]!, clear.at[i]! + v.length)).equals(Buffer.from(v)),
            ).toBe(true);
        });
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('refuses a body too short to hold an IV and a tag', () => {
    const g = new GcmBatch(new Uint8Array(32), AAD);
    const stored = lay([new Uint8Array(IV_BYTES + TAG_BYTES - 1)], 0, 0);
    expect(g.decrypt(stored, new Uint8Array(0), new Int32Array(1))[0]).toBe(0);
  });
});

describe('encryptValues / decryptValues', () => {
  const K1 = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
  const K2 = `k2:${Buffer.alloc(32, 2).toString('base64')}`;
  const one = parseKeyring(K1, 'keys');
  const two = parseKeyring(`${K1}\n${K2}`, 'keys');
  const text = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.string({ unit: 'binary', maxLength: 30 }), // lone surrogates included
    fc.string({ maxLength: 300 }),
  );

  it('seals envelopes that decryptValue opens, with a fresh IV each', () => {
    fc.assert(
      fc.property(fc.array(text, { maxLength: 30 }), (clear) => {
        const sealed = encryptValues(two, clear);
        expect(sealed).toHaveLength(clear.length);
        sealed.forEach((s, i) => {
          expect(s.startsWith('enc:v1:k2:')).toBe(true);
          expect(decryptValue(two, s, 'x')).toBe(Buffer.from(clear[i]!, 'utf8').toString('utf8'));
          // The envelope has the length of encryptValue's for the same value.
          expect(s.length).toBe(encryptValue(two, clear[i]!).length);
        });
        expect(new Set(sealed.map((s) => s.slice(10, 26))).size).toBe(sealed.length);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('opens what encryptValue sealed under any key, and clear text as it is', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(text, fc.integer({ min: 0, max: 2 })), { maxLength: 30 }), (items) => {
        const stored = items.map(([v, how]) => (how === 0 ? v : encryptValue(how === 1 ? one : two, v)));
        const want = items.map(([v, how]) => (how === 0 ? v : Buffer.from(v, 'utf8').toString('utf8')));
        expect(decryptValues(two, stored, 'x')).toEqual(want);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('fails a batch holding an altered value or an unknown key with decryptValue’s error', () => {
    const good = encryptValues(two, ['123456789', '987654321', '555']);
    const flipped = good[1]!.slice(0, -3) + (good[1]!.at(-3) === 'A' ? 'B' : 'A') + good[1]!.slice(-2);
    expect(() => decryptValues(two, [good[0]!, flipped, good[2]!], 'hr.employees.bank_account')).toThrow(
      /hr\.employees\.bank_account: an encrypted value does not decrypt under key 'k2'/,
    );
    expect(() => decryptValues(one, good, 'payroll.bank_payments.account')).toThrow(
      /encrypted under key 'k2', which the configured keys do not hold/,
    );
    expect(() => decryptValues(two, ['enc:v1:k2:'], 'x')).toThrow(/truncated/);
  });

  it('reads padded or standard-alphabet base64 as Node does', () => {
    const v = encryptValue(two, 'ab');
    const body = Buffer.from(v.slice('enc:v1:k2:'.length), 'base64url');
    const padded = `enc:v1:k2:${body.toString('base64')}`;
    expect(decryptValues(two, [padded, v], 'x')).toEqual(['ab', 'ab']);
  });
});
