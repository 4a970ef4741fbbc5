/**
 * Encryption at rest of bank account numbers and tax ids (the columns listed in
 * compliance.encrypted_columns, sql/000290): AES-256-GCM through node:crypto.
 *
 *   clear value ──encrypt(current key)──► enc:v1:<key id>:<base64url(iv ‖ ciphertext ‖ tag)> ──► COPY
 *   stored value ──decrypt(key named in it)──► clear value      (only the exports that declare `decrypt`)
 *
 * A load or an export handles its values a batch at a time (`encryptValues`, `decryptValues`,
 * through src/compliance/gcm-batch.ts): a cipher object per value cost more than the rest of a row.
 *
 * Every stored value names the key it was encrypted under, so keys can be rotated (`erp keys
 * rotate`) while old values are still readable. The keys come from the file named by ERP_KEYS_FILE
 * or from ERP_KEYS, never from the database, and never appear in a message or a log line.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { GcmBatch, IV_BYTES, TAG_BYTES } from './gcm-batch.js';

/** The prefix of every encrypted value; a value without it is clear text written before encryption. */
export const ENVELOPE_PREFIX = 'enc:v1:';
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
// Binds every ciphertext to this format version: a value of another scheme never decrypts as this one.
const AAD = Buffer.from('erp:enc:v1', 'utf8');

/** The keys erp may use: `current` encrypts, every key (current included) decrypts. */
export interface Keyring {
  readonly current: string;
  readonly keys: ReadonlyMap<string, Buffer>;
}

/**
 * Parses key lines: `<id>:<base64 of 32 bytes>`, one per line or comma-separated; `#` starts a
 * comment. The current key is ERP_KEY_CURRENT if set, else the last one listed (append a new key
 * to the file, then `erp keys rotate`). `where` names the source in errors (never a key).
 */
export function parseKeyring(text: string, where: string, currentId?: string): Keyring {
  const keys = new Map<string, Buffer>();
  let last: string | null = null;
  const entries = text.split(/\r?\n/).flatMap((line, i) =>
    line
      .replace(/#.*/, '')
      .split(',')
      .map((e) => ({ entry: e.trim(), line: i + 1 }))
      .filter((e) => e.entry !== ''),
  );
  for (const { entry, line } of entries) {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon);
    const at = `${where}${where.startsWith('ERP_KEYS=') ? '' : `, line ${line}`}`;
    if (!KEY_ID.test(id)) {
      throw new UserError(
        `${at}: expected <key id>:<base64 key>, the id of letters, digits, _ or - (at most 32)`,
      );
    }
    const key = Buffer.from(entry.slice(colon + 1), 'base64');
    if (key.length !== 32) {
      throw new UserError(
        `${at}: key '${id}' is ${key.length} bytes; AES-256 needs 32 (make one with: openssl rand -base64 32)`,
      );
    }
    if (keys.has(id)) throw new UserError(`${at}: key id '${id}' is listed twice`);
    keys.set(id, key);
    last = id;
  }
  if (last === null) throw new UserError(`${where}: no keys in it`);
  const current = currentId ?? last;
  if (!keys.has(current)) {
    throw new UserError(`ERP_KEY_CURRENT names key '${current}', which ${where} does not hold`);
  }
  return { current, keys };
}

/** The keyring from ERP_KEYS_FILE or ERP_KEYS; null when neither is set. */
export function loadKeyring(env: NodeJS.ProcessEnv = process.env): Keyring | null {
  const current = env.ERP_KEY_CURRENT || undefined;
  const file = env.ERP_KEYS_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserError(
        `environment variable ERP_KEYS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    return parseKeyring(text, `key file ${file}`, current);
  }
  if (env.ERP_KEYS) return parseKeyring(env.ERP_KEYS, 'ERP_KEYS=', current);
  return null;
}

/** The keyring, or an operator error saying why a value cannot be encrypted or decrypted without one. */
export function requireKeyring(what: string, env: NodeJS.ProcessEnv = process.env): Keyring {
  const ring = loadKeyring(env);
  if (ring) return ring;
  throw new UserError(
    `${what} is encrypted at rest, and no key is configured: set ERP_KEYS_FILE to a key file ` +
      `(lines <key id>:<base64 of 32 bytes>) or ERP_KEYS (docs/compliance.md)`,
  );
}

/** True when `stored` is an encrypted value (under any key). */
export function isEncrypted(stored: string): boolean {
  return stored.startsWith(ENVELOPE_PREFIX);
}

/** The id of the key `stored` was encrypted under; null for clear text. */
export function keyIdOf(stored: string): string | null {
  if (!isEncrypted(stored)) return null;
  const end = stored.indexOf(':', ENVELOPE_PREFIX.length);
  return end < 0 ? null : stored.slice(ENVELOPE_PREFIX.length, end);
}

// IVs are drawn from the CSPRNG a few thousand at a time: one randomBytes call per value cost as
// much as the encryption itself. Random 96-bit IVs are safe for 2^32 values per key (NIST SP 800-38D).
const IV_POOL = 4096;
let ivs = Buffer.alloc(0);
let ivAt = 0;
function nextIv(): Buffer {
  if (ivAt >= ivs.length) {
    ivs = randomBytes(IV_BYTES * IV_POOL);
    ivAt = 0;
  }
  ivAt += IV_BYTES;
  return ivs.subarray(ivAt - IV_BYTES, ivAt);
}

/** Encrypts `clear` under the current key. */
export function encryptValue(ring: Keyring, clear: string): string {
  const key = ring.keys.get(ring.current)!;
  const iv = nextIv();
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(AAD);
  const body = Buffer.concat([iv, cipher.update(clear, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${ENVELOPE_PREFIX}${ring.current}:${body.toString('base64url')}`;
}

/**
 * The clear text of a stored value. Clear text written before encryption passes through as it is
 * (`erp keys rotate` encrypts it). `where` names the column in errors; the value never shows.
 */
export function decryptValue(ring: Keyring, stored: string, where: string): string {
  if (!isEncrypted(stored)) return stored;
  const id = keyIdOf(stored);
  const key = id === null ? undefined : ring.keys.get(id);
  if (key === undefined) {
    throw new UserError(
      `${where}: a value is encrypted under key '${id ?? '?'}', which the configured keys do not hold ` +
        `(keep old keys in the key file until erp keys rotate has re-encrypted everything)`,
    );
  }
  const body = Buffer.from(stored.slice(ENVELOPE_PREFIX.length + id!.length + 1), 'base64url');
  if (body.length < IV_BYTES + TAG_BYTES) throw new UserError(`${where}: an encrypted value is truncated`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, IV_BYTES));
    decipher.setAAD(AAD);
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    throw new UserError(
      `${where}: an encrypted value does not decrypt under key '${id}' (altered, or a different key with that id)`,
    );
  }
}

/** A generated key line for a key file: `<id>:<base64>`. */
export function newKeyLine(id: string): string {
  if (!KEY_ID.test(id)) throw new UserError(`key id '${id}': letters, digits, _ or -, at most 32`);
  return `${id}:${randomBytes(32).toString('base64')}`;
}

// One batch cipher per key (its tables cost about a millisecond); keyed by the key's Buffer, so a
// keyring loaded once per run builds them once per run.
const batches = new WeakMap<Buffer, GcmBatch>();
function batchFor(key: Buffer): GcmBatch {
  let b = batches.get(key);
  if (b === undefined) {
    b = new GcmBatch(key, AAD);
    batches.set(key, b);
  }
  return b;
}

/**
 * The UTF-8 bytes of `values`, one after the other: what `Buffer.from(value, 'utf8')` gives for
 * each (lone surrogates as U+FFFD), in one call when the batch is ASCII.
 */
function utf8Of(values: readonly string[]): { bytes: Uint8Array; at: Int32Array; len: Int32Array } {
  const n = values.length;
  const at = new Int32Array(n);
  const len = new Int32Array(n);
  const joined = values.join('');
  const all = Buffer.from(joined, 'utf8');
  if (all.length === joined.length) {
    // Every character ASCII (anything else takes more than one byte): offsets are the same in both.
    let o = 0;
    for (let i = 0; i < n; i++) {
      at[i] = o;
      len[i] = values[i]!.length;
      o += len[i]!;
    }
    return { bytes: all, at, len };
  }
  const bytes = Buffer.alloc(all.length);
  let o = 0;
  for (let i = 0; i < n; i++) {
    at[i] = o;
    len[i] = bytes.write(values[i]!, o, 'utf8');
    o += len[i]!;
  }
  return { bytes, at, len };
}

/**
 * Encrypts every value under the current key: what {@link encryptValue} gives for each (the same
 * envelope, a fresh random IV each), in one pass over the batch.
 */
export function encryptValues(ring: Keyring, clear: readonly string[]): string[] {
  const n = clear.length;
  if (n === 0) return [];
  const key = ring.keys.get(ring.current)!;
  const values = utf8Of(clear);
  // Value i as iv ‖ ciphertext ‖ tag from a multiple of 3 bytes, zero-filled to the next: then the
  // base64 of the whole buffer is the base64 of each body one after the other, and the first
  // ceil(4·bytes/3) characters of a body's share are its own base64url (Node's, without padding).
  const outAt = new Int32Array(n);
  let size = 0;
  for (let i = 0; i < n; i++) {
    outAt[i] = size;
    size += Math.ceil((values.len[i]! + IV_BYTES + TAG_BYTES) / 3) * 3;
  }
  const out = Buffer.alloc(size);
  const ivs = randomBytes(IV_BYTES * n);
  batchFor(key).encrypt(values, ivs, out, outAt);
  const b64 = out.toString('base64url');
  const prefix = `${ENVELOPE_PREFIX}${ring.current}:`;
  const sealed = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const from = (outAt[i]! / 3) * 4;
    sealed[i] = prefix + b64.slice(from, from + Math.ceil(((values.len[i]! + IV_BYTES + TAG_BYTES) * 4) / 3));
  }
  return sealed;
}

/** base64url digits and the standard alphabet's two that differ (Node reads both in either). */
const B64_DIGIT = /^[A-Za-z0-9_+/-]*$/;
const FILL = ['', 'AAA', 'AA', 'A'];

/**
 * The clear text of every stored value: what {@link decryptValue} gives for each, in one pass
 * over the batch. A value that does not decrypt fails the batch with decryptValue's own error.
 */
export function decryptValues(ring: Keyring, stored: readonly string[], where: string): string[] {
  const n = stored.length;
  const clear = stored.slice();
  // Per key: the indexes of its values.
  const byKey = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const v = stored[i]!;
    if (!isEncrypted(v)) continue;
    const id = keyIdOf(v);
    if (id === null || !ring.keys.has(id)) {
      clear[i] = decryptValue(ring, v, where); // throws: no such key
      continue;
    }
    let list = byKey.get(id);
    if (list === undefined) byKey.set(id, (list = []));
    list.push(i);
  }
  for (const [id, list] of byKey) {
    const m = list.length;
    const skip = ENVELOPE_PREFIX.length + id.length + 1;
    // The payloads, each filled with 'A' to a multiple of 4 digits, decoded in one call: value j
    // starts at a multiple of 3 bytes, and its own bytes are what Node decodes of it alone.
    const parts = new Array<string>(2 * m);
    const at = new Int32Array(m);
    const len = new Int32Array(m);
    let o = 0;
    for (let j = 0; j < m; j++) {
      const digits = stored[list[j]!]!.length - skip;
      parts[2 * j] = stored[list[j]!]!.slice(skip);
      parts[2 * j + 1] = FILL[digits & 3]!;
      at[j] = o;
      len[j] = Math.floor((digits * 3) / 4);
      o += ((digits + 3) >>> 2) * 3;
    }
    const joined = parts.join('');
    let bytes: Uint8Array = Buffer.from(joined, 'base64url');
    // Anything but digits (padding, spaces) would shift what follows: then value by value below.
    if (bytes.length !== o || !B64_DIGIT.test(joined)) {
      bytes = new Uint8Array(o);
      len.fill(-1);
    }
    // Each value's clear bytes go where its body starts, in a buffer of their own.
    const out = Buffer.alloc(o);
    const ok = batchFor(ring.keys.get(id)!).decrypt({ bytes, at, len }, out, at);
    const latin = out.toString('latin1', 0, o);
    for (let j = 0; j < m; j++) {
      const i = list[j]!;
      if (ok[j] !== 1) {
        clear[i] = decryptValue(ring, stored[i]!, where); // its own error, or Node's reading of it
        continue;
      }
      const a = at[j]!;
      const b = a + len[j]! - IV_BYTES - TAG_BYTES;
      let high = 0;
      for (let k = a; k < b; k++) high |= out[k]!;
      clear[i] = high < 0x80 ? latin.slice(a, b) : out.toString('utf8', a, b);
    }
  }
  return clear;
}
