import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger, redactUrls } from '../src/log.js';

describe('loadConfig', () => {
  it('has defaults that work on this machine kind', () => {
    const c = loadConfig({});
    expect(c.DATABASE_URL).toBe('postgres://root@127.0.0.1:5432/root');
    expect(c.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(c.LOG_LEVEL).toBe('info');
  });

  it('reports each bad variable in one line naming it', () => {
    expect(() => loadConfig({ LOG_LEVEL: 'loud', ERP_REJECTS_IN_TABLE: '-1' })).toThrow(
      /^environment variable LOG_LEVEL: Invalid option: expected one of .*\nenvironment variable ERP_REJECTS_IN_TABLE: Too small/,
    );
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(
      /^environment variable DATABASE_URL: Invalid URL$/,
    );
  });

  it('reads secrets from the file named by *_FILE', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'erp-cfg-'));
    const file = path.join(dir, 'db');
    await writeFile(file, 'postgres://app:s3cret@db.internal:5432/erp\n');
    expect(loadConfig({ DATABASE_URL_FILE: file }).DATABASE_URL).toBe(
      'postgres://app:s3cret@db.internal:5432/erp',
    );
    expect(() => loadConfig({ REDIS_URL_FILE: path.join(dir, 'missing') })).toThrow(
      /REDIS_URL_FILE: cannot read .*missing \(ENOENT\)/,
    );
  });
});

describe('logging', () => {
  it('never writes passwords, keys or tokens', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const log = createLogger('info', false, sink);
    log.info(
      { password: 'hunter2', sftp: { privateKey: '-----BEGIN KEY', host: 'h' }, token: 't0k' },
      'connecting to postgres://app:hunter2@db/erp',
    );
    log.info({ url: 'postgres://app:hunter2@db/erp', nested: { deeper: { passphrase: 'pp' } } }, 'again');
    expect(out.trim().split('\n')).toHaveLength(2);
    expect(out).toContain('"host":"h"');
    expect(out).not.toMatch(/hunter2|BEGIN KEY|t0k|"pp"/);
    expect(out).toContain('postgres://app:***@db/erp');
    expect(redactUrls('redis://:pa55@127.0.0.1:6379 and sftp://u:p@h')).toBe(
      'redis://:***@127.0.0.1:6379 and sftp://u:***@h',
    );
  });
});
