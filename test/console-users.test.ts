import { spawn } from 'node:child_process';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/env.js';
import { consoleConfigOf } from '../src/console/config.js';
import { buildConsole } from '../src/console/server.js';
import { createSession, findSession } from '../src/console/sessions.js';
import { addUser, findUser, verifyPassword } from '../src/console/users.js';
import { erp, REDIS_URL, startErp, testPrefix, waitFor, type Result } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';

/**
 * The console's users from the command line (`erp users add|list|remove|passwd|role`, the built
 * CLI on a real database), and single sign-on through a trusted proxy's identity header: believed
 * only when configured, and only on a connection from the proxy's own address.
 */

let db: TestDatabase;
let home: TestHome;
let env: Record<string, string>;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await home.link(['sql']);
  env = { DATABASE_URL: db.url, ERP_HOME: home.dir };
});

/** `erp …` with `input` piped to its stdin. */
function erpWithStdin(args: string[], input: string): Promise<Result> {
  const child = spawn(process.execPath, [path.resolve('dist/cli.js'), ...args], {
    cwd: home.dir,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

const sessionsOf = async (user: string): Promise<number> =>
  (
    await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM console.sessions WHERE user_name = $1',
      [user],
    )
  ).rows[0]!.n;

describe('erp users', () => {
  it('lists no users at first and says how to create the first admin; there is no default password', async () => {
    const r = await erp(['users', 'list'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('no users; create the first admin with: erp users add <name> --role admin\n');
    // Without a password source (no terminal here), nothing is created.
    const none = await erp(['users', 'add', 'ada', '--role', 'admin'], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(
      'erp: no password: give --password-stdin, set ERP_USER_PASSWORD, or run on a terminal to be asked\n',
    );
    expect(await findUser(db.pool, 'ada')).toBeNull();
  });

  it('adds users with a scrypt hash of the password from stdin or ERP_USER_PASSWORD', async () => {
    const a = await erpWithStdin(
      ['users', 'add', 'ada', '--role', 'admin', '--password-stdin'],
      'ada-secret-1\n',
    );
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe('user ada added with role admin\n');
    const ada = (await findUser(db.pool, 'ada'))!;
    expect(ada.role).toBe('admin');
    expect(ada.password_hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(ada.password_hash).not.toContain('ada-secret-1');
    expect(await verifyPassword('ada-secret-1', ada.password_hash)).toBe(true);
    // No --role: a viewer.
    const v = await erp(['users', 'add', 'vic'], { ...env, ERP_USER_PASSWORD: 'vic-secret-1' });
    expect(v.code, v.stderr).toBe(0);
    expect((await findUser(db.pool, 'vic'))!.role).toBe('viewer');
    expect(await verifyPassword('vic-secret-1', (await findUser(db.pool, 'vic'))!.password_hash)).toBe(true);

    const list = await erp(['users', 'list'], env);
    expect(list.code).toBe(0);
    const rows = list.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^USER\s+ROLE\s+CREATED\s+CHANGED$/);
    expect(rows.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ['ada', 'admin'],
      ['vic', 'viewer'],
    ]);
  });

  it('refuses a second user of the same name, a bad name, a bad role and a short password, in one line each', async () => {
    const pw = { ...env, ERP_USER_PASSWORD: 'long-enough-1' };
    const cases: [string[], Record<string, string>, string][] = [
      [['users', 'add', 'ada'], pw, 'erp: user ada exists already\n'],
      [['users', 'add', 'bad name'], pw, "erp: user name 'bad name': expected 1–64 letters"],
      [
        ['users', 'add', 'bob', '--role', 'root'],
        pw,
        "erp: role 'root': expected one of viewer, operator, approver, admin\n",
      ],
      [['users', 'add', 'bob'], { ...env, ERP_USER_PASSWORD: 'short' }, 'erp: password: expected at least'],
      [['users', 'role', 'nobody', 'admin'], env, 'erp: no user nobody\n'],
      [['users', 'frobnicate', 'ada'], env, "erp: unknown action 'frobnicate'"],
    ];
    for (const [args, e, message] of cases) {
      const r = await erp(args, e);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.startsWith(message), r.stderr).toBe(true);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(await findUser(db.pool, 'bob')).toBeNull();
  });

  it('changes a role and a password, ending the user’s sessions each time', async () => {
    const s1 = await createSession(db.pool, 'vic', '127.0.0.1', 60_000);
    const r = await erp(['users', 'role', 'vic', 'operator'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('user vic is now operator; their sessions ended\n');
    expect((await findUser(db.pool, 'vic'))!.role).toBe('operator');
    expect(await findSession(db.pool, s1.token)).toBeNull();

    const s2 = await createSession(db.pool, 'vic', '127.0.0.1', 60_000);
    expect(await sessionsOf('vic')).toBe(1);
    const p = await erpWithStdin(['users', 'passwd', 'vic', '--password-stdin'], 'vic-secret-2\n');
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toBe('password of vic changed; their sessions ended\n');
    const hash = (await findUser(db.pool, 'vic'))!.password_hash;
    expect(await verifyPassword('vic-secret-2', hash)).toBe(true);
    expect(await verifyPassword('vic-secret-1', hash)).toBe(false);
    expect(await findSession(db.pool, s2.token)).toBeNull();
  });

  it('removes a user with their sessions', async () => {
    const s = await createSession(db.pool, 'vic', '127.0.0.1', 60_000);
    const r = await erp(['users', 'remove', 'vic'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('user vic removed; their sessions ended\n');
    expect(await findUser(db.pool, 'vic')).toBeNull();
    expect(await findSession(db.pool, s.token)).toBeNull();
    const again = await erp(['users', 'remove', 'vic'], env);
    expect([again.code, again.stderr]).toEqual([2, 'erp: no user vic\n']);
  });
});

describe('single sign-on through a trusted proxy header', () => {
  const PROXY = '10.1.2.3';
  let servers: FastifyInstance[] = [];

  async function consoleWith(extra: Record<string, string>): Promise<FastifyInstance> {
    const server = await buildConsole({
      pool: db.pool,
      log: pino({ level: 'silent' }),
      home: home.dir,
      dataDir: path.join(home.dir, 'var'),
      config: consoleConfigOf(loadConfig(extra)),
      queue: null,
      events: null,
    });
    servers.push(server);
    return server;
  }

  /** GET /runs as a browser would, from `from`, naming `user` in X-Remote-User. */
  async function getRuns(server: FastifyInstance, from: string, headers: Record<string, string>) {
    const r = await server.inject({
      method: 'GET',
      url: '/runs',
      remoteAddress: from,
      headers: { accept: 'text/html', ...headers },
    });
    return {
      status: r.statusCode,
      location: r.headers.location,
      cookie: r.cookies.find((c) => c.name === 'erp_session'),
      body: r.body,
    };
  }

  beforeAll(async () => {
    await erp(['users', 'add', 'sso-user', '--role', 'operator'], {
      ...env,
      ERP_USER_PASSWORD: 'sso-secret-1',
    });
  });

  afterAll(async () => {
    for (const s of servers) await s.close();
    servers = [];
  });

  it('is off unless configured: the header alone signs nobody in', async () => {
    const server = await consoleWith({ ERP_CONSOLE_TRUST_PROXY: PROXY });
    const r = await getRuns(server, PROXY, { 'x-remote-user': 'sso-user' });
    expect(r.status).toBe(302);
    expect(r.location).toBe('/login?next=%2Fruns');
    expect(r.cookie).toBeUndefined();
  });

  it('needs the proxy’s addresses to be configured with it: erp console refuses to start without them', async () => {
    const r = await erp(['console'], {
      ...env,
      ERP_CONSOLE_TRUSTED_HEADER: 'X-Remote-User',
      ERP_HTTP_PORT: '0',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'erp: environment variable ERP_CONSOLE_TRUSTED_HEADER: needs ERP_CONSOLE_TRUST_PROXY, the addresses of the proxy that sets it (the header is believed from them alone)\n',
    );
  });

  it('signs the named user in on a request from the proxy, and from no other address', async () => {
    const server = await consoleWith({
      ERP_CONSOLE_TRUST_PROXY: PROXY,
      ERP_CONSOLE_TRUSTED_HEADER: 'X-Remote-User',
    });
    const ok = await getRuns(server, PROXY, { 'x-remote-user': 'sso-user', 'x-forwarded-for': '192.0.2.7' });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('sso-user');
    expect(ok.cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    // Its session is the user's, with the user's role, recorded from the client's address.
    expect(await findSession(db.pool, ok.cookie!.value)).toMatchObject({
      user: 'sso-user',
      role: 'operator',
    });
    expect(
      (
        await db.pool.query('SELECT address FROM console.sessions WHERE user_name = $1', ['sso-user'])
      ).rows.map((r: { address: string }) => r.address),
    ).toContain('192.0.2.7');

    // Straight from a client (not the proxy): ignored, even claiming to come through the proxy.
    const direct: Record<string, string>[] = [
      { 'x-remote-user': 'sso-user' },
      { 'x-remote-user': 'sso-user', 'x-forwarded-for': PROXY },
    ];
    for (const headers of direct) {
      const r = await getRuns(server, '192.0.2.7', headers);
      expect(r.status).toBe(302);
      expect(r.cookie).toBeUndefined();
    }
    // Behind TLS (the proxy says so), the session cookie is Secure.
    const tls = await getRuns(server, PROXY, { 'x-remote-user': 'sso-user', 'x-forwarded-proto': 'https' });
    expect(tls.cookie).toMatchObject({ secure: true, httpOnly: true });
    expect(ok.cookie?.secure).toBeFalsy();
    // From the proxy, a user unknown to `erp users` is nobody.
    const unknown = await getRuns(server, PROXY, { 'x-remote-user': 'mallory' });
    expect([unknown.status, unknown.cookie]).toEqual([302, undefined]);
  });
});

describe('login throttling per address', () => {
  it('refuses a fourth wrong sign-in from one address whatever the account, and not another address', async () => {
    const server = await buildConsole({
      pool: db.pool,
      log: pino({ level: 'silent' }),
      home: home.dir,
      dataDir: path.join(home.dir, 'var'),
      config: consoleConfigOf(loadConfig({})),
      queue: null,
      events: null,
      throttle: { perAccount: 100, perAddress: 3, windowMs: 60_000 },
    });
    await addUser(db.pool, 'tina', 'viewer', 'tina-secret-1');
    try {
      /** Posts the login form from `from` as `user`, with the form's own CSRF token and cookie. */
      const signIn = async (from: string, user: string, password: string): Promise<number> => {
        const form = await server.inject({ method: 'GET', url: '/login', remoteAddress: from });
        const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)![1]!;
        const cookie = form.cookies.find((c) => c.name === 'erp_login_csrf')!;
        const r = await server.inject({
          method: 'POST',
          url: '/login',
          remoteAddress: from,
          cookies: { erp_login_csrf: cookie.value },
          payload: new URLSearchParams({ _csrf: csrf, user, password }).toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
        return r.statusCode;
      };
      for (const user of ['u1', 'u2', 'u3'])
        expect(await signIn('198.51.100.9', user, 'wrong-password')).toBe(401);
      // A fourth account from the same address waits, even with a right password.
      expect(await signIn('198.51.100.9', 'tina', 'tina-secret-1')).toBe(429);
      // Another address is not held back.
      expect(await signIn('198.51.100.10', 'tina', 'tina-secret-1')).toBe(303);
    } finally {
      await server.close();
    }
  });
});

describe('erp console', () => {
  it('listens on loopback unless told otherwise, serves its login page, and stops on SIGTERM', async () => {
    const c = startErp(['console'], {
      ...env,
      REDIS_URL,
      ERP_HTTP_PORT: '0',
      ERP_QUEUE_PREFIX: testPrefix('console-cli'),
    });
    const m = await waitFor(
      () => /erp console listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(c.stderr()),
      30_000,
      () => `the console to listen (${c.stderr()})`,
    );
    const r = await fetch(`${m[1]}/login`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('name="password"');
    c.process.kill('SIGTERM');
    expect(await c.exited).toBe(0);
  });
});
