import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/env.js';
import { describeError, UserError } from '../src/errors.js';
import { createLogger, redactUrls } from '../src/log.js';
import { parseRedisUrl } from '../src/runner/redis-url.js';

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

  it('refuses a malformed REDIS_URL or DATABASE_URL in one line, without quoting its password', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { REDIS_URL: 'http://:pw@127.0.0.1:6391' },
        /^environment variable REDIS_URL: expected a redis:\/\/ or rediss:\/\/ or redis\+sentinel:\/\/ or redis\+cluster:\/\/ URL, not http:\/\/$/,
      ],
      [
        { REDIS_URL: 'redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380' },
        /^environment variable REDIS_URL: a redis\+sentinel:\/\/ URL names the master after the hosts/,
      ],
      [
        { REDIS_URL: 'redis+cluster://:pw@127.0.0.1:7000,127.0.0.1:70000' },
        /^environment variable REDIS_URL: '127.0.0.1:70000' is not host:port with a port from 1 to 65535$/,
      ],
      [{ REDIS_URL: 'not a url :pw@' }, /^environment variable REDIS_URL: Invalid URL$/],
      [
        { REDIS_URL: 'redis://:pw@127.0.0.1/notadb' },
        /^environment variable REDIS_URL: the database .* is not a number$/,
      ],
      [
        { DATABASE_URL: 'postgres://app:pw@db/erp?sslmode=disable&port=notaport' },
        /^environment variable DATABASE_URL: the port parameter is not a number from 1 to 65535$/,
      ],
      [
        { DATABASE_URL: 'mysql://app:pw@db/erp' },
        /^environment variable DATABASE_URL: expected a postgres:\/\/ or postgresql:\/\/ URL/,
      ],
    ];
    for (const [env, message] of cases) {
      let thrown: unknown;
      try {
        loadConfig(env);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(UserError);
      expect((thrown as UserError).exitCode).toBe(2);
      expect((thrown as Error).message).toMatch(message);
      expect((thrown as Error).message).not.toContain('pw');
    }
  });

  it('reads the Sentinel and Cluster forms of REDIS_URL', () => {
    expect(parseRedisUrl('redis+sentinel://:s%40c@10.0.0.1:26379,[::1]:26380/main?db=2')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'main',
      username: undefined,
      password: 's@c',
      sentinelPassword: undefined,
      db: 2,
    });
    expect(parseRedisUrl('redis+cluster://u:p@h1:7000,h2:7001')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
      username: 'u',
      password: 'p',
    });
    expect(loadConfig({ REDIS_URL: 'redis+cluster://h1:7000,h2:7001' }).REDIS_URL).toBe(
      'redis+cluster://h1:7000,h2:7001',
    );
    expect(redactUrls('redis+sentinel://:s3cret@h:26379,h2:26380/main')).not.toContain('s3cret');
  });

  it('redacts every form of a URL password, including the ones libraries print', () => {
    expect(redactUrls('connect ENOENT //:pw@127.0.0.1:6391')).toBe('connect ENOENT //:***@127.0.0.1:6391');
    expect(redactUrls('at redis://user:pw@h:1/0 and postgresql://a:b%40c@h/db')).toBe(
      'at redis://user:***@h:1/0 and postgresql://a:***@h/db',
    );
    expect(redactUrls('postgres://h/db?user=a&password=s3cret&sslmode=require')).toBe(
      'postgres://h/db?user=a&password=***&sslmode=require',
    );
    expect(describeError(new Error('connect ENOENT //:pw@127.0.0.1:6391'))).not.toContain('pw@');
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
