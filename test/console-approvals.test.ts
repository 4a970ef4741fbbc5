import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { consoleConfigOf } from '../src/console/config.js';
import { loadConfig } from '../src/config/env.js';
import { buildConsole } from '../src/console/server.js';
import { addUser } from '../src/console/users.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';

/*
 * The console shows the runs awaiting approval to users with the approver role (and admins), with
 * each run's dry run; an operator gets neither the link nor the page.
 */
let db: TestDatabase;
let home: TestHome;
let server: FastifyInstance;
const PASSWORD = 'correct horse battery staple';

/** Logs in through the form, as a browser does; returns the session cookie. */
async function logIn(user: string): Promise<string> {
  const form = await server.inject({ method: 'GET', url: '/login' });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(form.body)![1]!;
  const loginCookie = form.cookies.find((c) => c.name === 'erp_login_csrf')!;
  const r = await server.inject({
    method: 'POST',
    url: '/login',
    cookies: { erp_login_csrf: loginCookie.value },
    payload: { user, password: PASSWORD, _csrf: csrf },
  });
  const session = r.cookies.find((c) => c.name === 'erp_session');
  expect(session, `login of ${user}: ${r.statusCode} ${r.body}`).toBeDefined();
  return session!.value;
}

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await home.link(['sql']);
  for (const [name, role] of [
    ['anna', 'approver'],
    ['otto', 'operator'],
  ] as const)
    await addUser(db.pool, name, role, PASSWORD);
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO runner.runs (kind, name, params, status, requested_by, host)
     VALUES ('job', 'payroll-close', '{"period": "2026-11"}', 'awaiting_approval', 'alice', 'ops1') RETURNING id`,
  );
  await db.pool.query(
    `INSERT INTO runner.approvals (run_id, distinct_from_requester, expires_at, dry_run)
     VALUES ($1, true, now() + interval '1 day', 'dry run: 57 payslips, net 212,304.18')`,
    [rows[0]!.id],
  );
  server = await buildConsole({
    pool: db.pool,
    log: pino({ level: 'silent' }),
    home: home.dir,
    dataDir: home.dir,
    config: consoleConfigOf(loadConfig({})),
    queue: null,
    events: null,
  });
});
afterAll(async () => {
  await server?.close();
});

describe('console approvals', () => {
  it('an approver sees the runs awaiting approval with their dry runs', async () => {
    const cookie = await logIn('anna');
    const home = await server.inject({ method: 'GET', url: '/', cookies: { erp_session: cookie } });
    expect(home.body).toContain('href="/approvals"');
    const r = await server.inject({ method: 'GET', url: '/approvals', cookies: { erp_session: cookie } });
    expect(r.statusCode).toBe(200);
    expect(r.body).toContain('payroll-close');
    expect(r.body).toContain('period=2026-11');
    expect(r.body).toContain('alice');
    expect(r.body).toContain('dry run: 57 payslips, net 212,304.18');
  });

  it('an operator gets neither the link nor the page', async () => {
    const cookie = await logIn('otto');
    const home = await server.inject({ method: 'GET', url: '/', cookies: { erp_session: cookie } });
    expect(home.body).not.toContain('href="/approvals"');
    const r = await server.inject({ method: 'GET', url: '/approvals', cookies: { erp_session: cookie } });
    expect(r.statusCode).toBe(403);
    expect(r.body).not.toContain('212,304.18');
  });
});
