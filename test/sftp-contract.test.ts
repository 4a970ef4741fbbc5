import { createRequire } from 'node:module';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSftp, endSftp, rawConnection, session } from '../src/sftp/connect.js';
import { startSshd, type TestSshd } from './helpers/sshd.js';

/**
 * The contract src/sftp/connect.ts relies on beyond ssh2-sftp-client's public API: the ssh2
 * connection it keeps in its `client` property (rawConnection). If an upgrade moves it, this
 * fails before a cancelled transfer hangs or TCP_NODELAY silently stops being set.
 */

let sshd: TestSshd;
const log = pino({ level: 'silent' });

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  await sshd?.stop();
});

describe('ssh2-sftp-client internals', () => {
  it('is the pinned version', () => {
    const pkg = createRequire(import.meta.url)('../package.json') as { dependencies: Record<string, string> };
    const installed = createRequire(import.meta.url)('ssh2-sftp-client/package.json') as { version: string };
    expect(pkg.dependencies['ssh2-sftp-client']).toBe(installed.version);
  });

  it('keeps the ssh2 connection under `client`, and destroying it ends the session', async () => {
    const client = await connectSftp(sshd.endpoint(), { log });
    try {
      const raw = rawConnection(client);
      // ssh2's Client (a transitive dependency, so named rather than imported).
      expect(raw.constructor.name).toBe('Client');
      expect(typeof raw.destroy).toBe('function');
      expect(typeof raw.setNoDelay).toBe('function');
      const s = session(client, 'contract');
      const ended = new Promise((resolve) => s.once('close', resolve));
      raw.destroy();
      await ended;
      await expect(client.list('/')).rejects.toThrow();
    } finally {
      await endSftp(client, 500);
    }
  });

  it('refuses a client that connectSftp did not connect', async () => {
    const { default: Client } = await import('ssh2-sftp-client');
    expect(() => session(new Client(), 'stray')).toThrow(/not connected/);
  });
});
