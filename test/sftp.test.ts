import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  connectSftp,
  downloadVerified,
  endSftp,
  listReady,
  moveRemote,
  moveToError,
  resolveInside,
  safeRemoteName,
  uploadAtomic,
  withRetry,
  type Sftp,
} from '../src/sftp/index.js';
import { sftpEndpointSchema } from '../src/sftp/endpoint.js';
import { startSshd, type TestSshd } from './helpers/sshd.js';

// Every log line of the file, to check levels and that no secret is ever logged.
const lines: string[] = [];
const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });

let sshd: TestSshd;
let local: string;
const clients: Sftp[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  local = await mkdtemp(path.join(os.tmpdir(), 'erp-sftp-test-'));
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => endSftp(c)));
});

afterAll(async () => {
  await sshd?.stop();
  if (local) await rm(local, { recursive: true, force: true });
});

async function connect(extra?: Record<string, unknown>): Promise<Sftp> {
  const client = await connectSftp(sshd.endpoint(extra), { log });
  clients.push(client);
  return client;
}

/** A fresh remote directory (the server is local, so the test can look at it directly). */
async function remoteDir(name: string): Promise<string> {
  const dir = path.join(sshd.root, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

async function localDir(name: string): Promise<string> {
  const dir = path.join(local, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('endpoint config', () => {
  it('requires exactly one key source and well-formed pins', () => {
    const base = { host: 'h', user: 'u', host_key_sha256: [sshd.hostKeyFingerprint] };
    expect(sftpEndpointSchema.safeParse({ ...base, private_key_file: '/k' }).success).toBe(true);
    expect(sftpEndpointSchema.safeParse(base).success).toBe(false);
    expect(
      sftpEndpointSchema.safeParse({ ...base, private_key_file: '/k', private_key_env: 'K' }).success,
    ).toBe(false);
    expect(sftpEndpointSchema.safeParse({ ...base, private_key_env: 'K', host_key_sha256: [] }).success).toBe(
      false,
    );
    expect(
      sftpEndpointSchema.safeParse({ ...base, private_key_env: 'K', host_key_sha256: ['ab:cd'] }).success,
    ).toBe(false);
    const parsed = sftpEndpointSchema.parse({ ...base, private_key_env: 'K' });
    expect(parsed.port).toBe(22);
    expect(parsed.ready).toEqual({ mode: 'stable', interval_ms: 2000 });
    expect(parsed.retry).toEqual({ attempts: 3, base_delay_ms: 1000 });
  });
});

describe('download and acknowledge', () => {
  it('downloads a ready file with its size and SHA-256 checked', async () => {
    const inbox = await remoteDir('dl/inbox');
    const content = 'sku,qty\n' + 'A-1,5\n'.repeat(10_000);
    await writeFile(path.join(inbox, 'items-1.csv'), content);
    await writeFile(path.join(inbox, 'notes.txt'), 'not matched by the glob');
    const client = await connect();

    const files = await listReady(client, inbox, '*.csv', { mode: 'stable', interval_ms: 50 });
    expect(files.map((f) => f.name)).toEqual(['items-1.csv']);
    expect(files[0]!.size).toBe(Buffer.byteLength(content));

    const dir = await localDir('dl');
    const got = await downloadVerified(client, files[0]!.path, dir, files[0]!.size);
    expect(got).toEqual({
      localPath: path.join(dir, 'items-1.csv'),
      size: content.length,
      sha256: sha256(content),
    });
    expect(await readFile(got.localPath, 'utf8')).toBe(content);
    expect(await readdir(dir)).toEqual(['items-1.csv']);
  });

  it('never returns a file whose size differs from the listing, and leaves no partial file', async () => {
    const inbox = await remoteDir('size/inbox');
    await writeFile(path.join(inbox, 'a.csv'), 'x'.repeat(1000));
    const client = await connect();
    const dir = await localDir('size');
    await expect(downloadVerified(client, path.join(inbox, 'a.csv'), dir, 999)).rejects.toThrow(
      /grew during the transfer/,
    );
    await expect(downloadVerified(client, path.join(inbox, 'a.csv'), dir, 1001)).rejects.toThrow(
      /shrank during the transfer/,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('archives after success without ever replacing an archived file', async () => {
    const inbox = await remoteDir('arch/inbox');
    const archive = await remoteDir('arch/archive');
    await writeFile(path.join(inbox, 'bank.txt'), 'first');
    const client = await connect();

    expect(await moveRemote(client, path.join(inbox, 'bank.txt'), archive, 'bank.txt')).toBe(
      path.join(archive, 'bank.txt'),
    );
    await writeFile(path.join(inbox, 'bank.txt'), 'second delivery, same name');
    const second = await moveRemote(client, path.join(inbox, 'bank.txt'), archive, 'bank.txt');
    expect(path.basename(second)).toMatch(/^bank\.txt\.\d{8}T\d{9}Z-[0-9a-f]{6}$/);

    expect(await readdir(inbox)).toEqual([]);
    expect(await readFile(path.join(archive, 'bank.txt'), 'utf8')).toBe('first');
    expect(await readFile(second, 'utf8')).toBe('second delivery, same name');
  });

  it('moves a failed file to the error directory with a report beside it', async () => {
    const inbox = await remoteDir('err/inbox');
    const errorDir = await remoteDir('err/error');
    await writeFile(path.join(inbox, 'po-850.x12'), 'ISA*00*broken');
    const client = await connect();

    const report = 'po-850.x12: ISA segment is 14 bytes, expected 106; nothing was loaded';
    const moved = await moveToError(client, path.join(inbox, 'po-850.x12'), errorDir, 'po-850.x12', report);
    expect(moved).toEqual({
      path: path.join(errorDir, 'po-850.x12'),
      reportPath: path.join(errorDir, 'po-850.x12.error.txt'),
    });
    expect(await readdir(inbox)).toEqual([]);
    expect((await readdir(errorDir)).sort()).toEqual(['po-850.x12', 'po-850.x12.error.txt']);
    expect(await readFile(moved.reportPath, 'utf8')).toBe(report + '\n');
  });
});

describe('host keys and credentials', () => {
  it('refuses a host key that is not pinned, naming both fingerprints', async () => {
    const wrong = `SHA256:${'A'.repeat(43)}`;
    const dir = await localDir('mismatch');
    const before = lines.length;
    const attempt = connectSftp(sshd.endpoint({ host_key_sha256: [wrong] }), { log });
    await expect(attempt).rejects.toBeInstanceOf(UserError);
    const message = await attempt.then(
      () => '',
      (err: Error) => err.message,
    );
    expect(message).toContain(`${sshd.host}:${sshd.port}`);
    expect(message).toContain(`presented ${sshd.hostKeyFingerprint}`);
    expect(message).toContain(wrong);
    const logged = lines.slice(before).map((l) => JSON.parse(l) as { level: number; presented?: string });
    expect(logged.some((l) => l.level === 50 && l.presented === sshd.hostKeyFingerprint)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('accepts the current key among several pins (key rotation), with the key from an env var', async () => {
    const key = await readFile(sshd.privateKeyPath, 'utf8');
    const client = await connectSftp(
      sshd.endpoint({
        private_key_file: undefined,
        private_key_env: 'ERP_TEST_SFTP_KEY',
        host_key_sha256: [`SHA256:${'B'.repeat(43)}`, sshd.hostKeyFingerprint],
      }),
      { log, env: { ERP_TEST_SFTP_KEY: key } },
    );
    clients.push(client);
    expect(await client.exists(sshd.root)).toBe('d');
  });

  it('names the missing key file or environment variable', async () => {
    await expect(
      connectSftp(sshd.endpoint({ private_key_file: '/nonexistent/id_ed25519' }), { log }),
    ).rejects.toThrow(/cannot read the private key file \/nonexistent\/id_ed25519 \(ENOENT\)/);
    const ep = sshd.endpoint({ private_key_file: undefined, private_key_env: 'ERP_TEST_NO_SUCH_KEY' });
    await expect(connectSftp(ep, { log, env: {} })).rejects.toThrow(
      /environment variable ERP_TEST_NO_SUCH_KEY/,
    );
  });
});

describe('readiness', () => {
  it('leaves a file that is still growing alone and picks up a finished one', async () => {
    const inbox = await remoteDir('grow/inbox');
    await writeFile(path.join(inbox, 'done.csv'), 'a\n1\n');
    await writeFile(path.join(inbox, 'growing.csv'), 'a\n1\n');
    const client = await connect();

    const writer = (async () => {
      await sleep(150);
      await appendFile(path.join(inbox, 'growing.csv'), '2\n');
    })();
    const files = await listReady(client, inbox, '*.csv', { mode: 'stable', interval_ms: 600 });
    await writer;
    expect(files.map((f) => f.name)).toEqual(['done.csv']);

    // Once it stops changing it is picked up.
    const later = await listReady(client, inbox, '*.csv', { mode: 'stable', interval_ms: 50 });
    expect(later.map((f) => f.name)).toEqual(['done.csv', 'growing.csv']);
  });

  it('in marker mode returns only files with a .done marker', async () => {
    const inbox = await remoteDir('marker/inbox');
    await writeFile(path.join(inbox, 'b.csv'), 'b');
    await writeFile(path.join(inbox, 'b.csv.done'), '');
    await writeFile(path.join(inbox, 'a.csv'), 'a');
    await writeFile(path.join(inbox, 'a.csv.done'), '');
    await writeFile(path.join(inbox, 'c.csv'), 'c (no marker yet)');
    await mkdir(path.join(inbox, 'd.csv'));
    await writeFile(path.join(inbox, 'd.csv.done'), '');
    const client = await connect();

    const files = await listReady(client, inbox, '*', { mode: 'marker', suffix: '.done' });
    expect(files.map((f) => [f.name, f.marker])).toEqual([
      ['a.csv', path.join(inbox, 'a.csv.done')],
      ['b.csv', path.join(inbox, 'b.csv.done')],
    ]);
  });
});

describe('atomic upload', () => {
  it('is invisible under its final name until complete, and never overwrites by default', async () => {
    const outbox = await remoteDir('up/outbox');
    const client = await connect();
    const chunk = randomBytes(256 * 1024);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    async function* slow(): AsyncGenerator<Buffer> {
      yield chunk;
      await gate;
      yield chunk;
    }

    const upload = uploadAtomic(client, Readable.from(slow()), outbox, '810-invoice.x12');
    // Mid-upload, the server holds a hidden temp file and nothing under the final name.
    let names: string[] = [];
    for (let i = 0; i < 200 && names.length === 0; i++) {
      names = await readdir(outbox);
      if (names.length === 0) await sleep(10);
    }
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^\.810-invoice\.x12\.[0-9a-f]{12}\.part$/);
    expect(await exists(path.join(outbox, '810-invoice.x12'))).toBe(false);
    release();

    expect(await upload).toBe(path.join(outbox, '810-invoice.x12'));
    expect(await readdir(outbox)).toEqual(['810-invoice.x12']);
    expect(sha256(await readFile(path.join(outbox, '810-invoice.x12')))).toBe(
      sha256(Buffer.concat([chunk, chunk])),
    );

    // An existing file is refused, left untouched, and no temp file is left behind.
    const again = uploadAtomic(
      client,
      Readable.from([Buffer.from('replacement')]),
      outbox,
      '810-invoice.x12',
    );
    await expect(again).rejects.toBeInstanceOf(UserError);
    await expect(again).rejects.toThrow(/already exists/);
    expect(await readdir(outbox)).toEqual(['810-invoice.x12']);
    expect((await stat(path.join(outbox, '810-invoice.x12'))).size).toBe(2 * chunk.length);

    // With overwrite it is replaced, from a local file this time.
    const src = path.join(await localDir('up'), 'replacement.x12');
    await writeFile(src, 'replacement');
    await uploadAtomic(client, src, outbox, '810-invoice.x12', { overwrite: true });
    expect(await readFile(path.join(outbox, '810-invoice.x12'), 'utf8')).toBe('replacement');
    expect(await readdir(outbox)).toEqual(['810-invoice.x12']);
  });
});

describe('server killed mid-transfer', () => {
  it('retries connect + download after the restart and gets the same bytes, leaving no partial file', async () => {
    const inbox = await remoteDir('kill/inbox');
    const source = path.join(inbox, 'big.bin');
    const size = 64 * 1024 * 1024;
    const hash = createHash('sha256');
    async function* blocks(): AsyncGenerator<Buffer> {
      for (let written = 0; written < size; written += 1024 * 1024) {
        const block = randomBytes(1024 * 1024);
        hash.update(block);
        yield block;
      }
    }
    await pipeline(Readable.from(blocks()), createWriteStream(source));
    const expected = hash.digest('hex');
    const dir = await localDir('kill');
    const endpoint = sshd.endpoint();

    // Kills the server (and its session processes) once the first attempt is under way; the kill
    // itself happens synchronously inside restart(), before it awaits the new server.
    let restarted: Promise<void> | undefined;
    let attempts = 0;
    const got = await withRetry(
      async (attempt) => {
        attempts = attempt;
        const client = await connectSftp(endpoint, { log });
        try {
          return await downloadVerified(client, source, dir, size, {
            onProgress: (bytes) => {
              if (attempt === 1 && bytes > 1024 * 1024) restarted ??= sshd.restart();
            },
          });
        } finally {
          await endSftp(client);
        }
      },
      { attempts: 6, baseDelayMs: 100, log, what: 'download big.bin' },
    );
    await restarted;

    expect(restarted).toBeDefined();
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(got.sha256).toBe(expected);
    expect(got.size).toBe(size);
    expect(await readdir(dir)).toEqual(['big.bin']);
    expect(lines.some((l) => l.includes('SFTP transient error; retrying'))).toBe(true);
  });
});

describe('untrusted names', () => {
  it('refuses names that are not plain base names', () => {
    for (const bad of [
      '../x',
      'a/b',
      '/etc/passwd',
      'a\u0000b',
      '..',
      '.',
      '',
      'a\\b',
      'line\nbreak',
      'x'.repeat(256),
    ]) {
      expect(() => safeRemoteName(bad), JSON.stringify(bad)).toThrow(UserError);
    }
    expect(safeRemoteName('PO 850 (2026-11).x12')).toBe('PO 850 (2026-11).x12');
  });

  it('checks containment on resolved paths, not string prefixes', () => {
    expect(resolveInside('/in', 'a.csv')).toBe('/in/a.csv');
    expect(resolveInside('/in/', 'sub/../a.csv')).toBe('/in/a.csv');
    expect(resolveInside('inbox', 'a.csv')).toBe('inbox/a.csv');
    expect(() => resolveInside('/in', '../inbox/a.csv')).toThrow(/outside \/in/);
    expect(() => resolveInside('/in', '/inbox/a.csv')).toThrow(UserError);
    expect(() => resolveInside('/in', '..')).toThrow(UserError);
    expect(() => resolveInside('/in', '.')).toThrow(UserError);
    expect(() => resolveInside('inbox', '../outbox/a.csv')).toThrow(UserError);
  });

  it('skips listed files with unsafe names and refuses unsafe names to upload', async () => {
    const inbox = await remoteDir('names/inbox');
    await writeFile(path.join(inbox, 'ok.csv'), 'ok');
    await writeFile(path.join(inbox, 'evil\\..\\x.csv'), 'backslashes');
    await writeFile(path.join(inbox, 'bell\u0007.csv'), 'control character');
    const client = await connect();
    const files = await listReady(client, inbox, '*.csv', { mode: 'stable', interval_ms: 20 }, { log });
    expect(files.map((f) => f.name)).toEqual(['ok.csv']);
    await expect(
      uploadAtomic(client, Readable.from([Buffer.from('x')]), inbox, '../escape.csv'),
    ).rejects.toThrow(UserError);
    expect(await exists(path.join(sshd.root, 'names', 'escape.csv'))).toBe(false);
  });
});

describe('logs', () => {
  it('never contain the private key', async () => {
    const key = await readFile(sshd.privateKeyPath, 'utf8');
    const body = key.split('\n').slice(1, -2).join('');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line).not.toContain('PRIVATE KEY');
      expect(line).not.toContain(body.slice(0, 40));
    }
  });
});
