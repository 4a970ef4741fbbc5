/**
 * Who is asking, and may they: the session cookie (or a trusted proxy header, when configured)
 * on every request; a CSRF token on every state-changing one; the login form with its throttle.
 *
 *   request ─► onRequest: security headers, session from cookie ─► none: /login (GET) or 401
 *           ─► preHandler (POST…): _csrf field or X-CSRF-Token header = the session's ─► else 403
 */
import { compile as compileTrust } from '@fastify/proxy-addr';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { recordAction } from './actions.js';
import type { ConsoleConfig } from './config.js';
import { html } from './html.js';
import { page, type Asset } from './layout.js';
import {
  clearLoginFailures,
  createSession,
  DEFAULT_THROTTLE,
  endSession,
  findSession,
  randomToken,
  recordLoginFailure,
  sameToken,
  throttledFor,
  type Session,
  type ThrottlePolicy,
} from './sessions.js';
import { DUMMY_HASH, findUser, ROLE_RANK, verifyPassword, type Role } from './users.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in user, or null on public routes. */
    session: Session | null;
  }
}

export const SESSION_COOKIE = 'erp_session';
const LOGIN_CSRF_COOKIE = 'erp_login_csrf';

/** Paths served without a session: the login form, assets, and issue 16's health endpoints. */
const PUBLIC = [/^\/login$/, /^\/assets\//, /^\/favicon\.ico$/, /^\/(healthz|readyz|metrics)$/];

/**
 * The page's Content Security Policy: scripts and styles from this origin only, never inline.
 * bull-board (admins only) needs inline styles, never inline script.
 */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const CSP_QUEUE =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'";

/** The response error a handler throws to refuse: 403 without the role, 404 for an unknown thing. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** Throws 403 unless the user has at least `role`. */
export function requireRole(req: FastifyRequest, role: Role): void {
  if (!req.session || ROLE_RANK[req.session.role] < ROLE_RANK[role]) {
    throw new HttpError(403, `forbidden: this needs the ${role} role`);
  }
}

export interface AuthOptions {
  pool: pg.Pool;
  config: ConsoleConfig;
  assets: Map<string, Asset>;
  throttle?: ThrottlePolicy;
}

function cookieOptions(req: FastifyRequest, maxAgeS: number, path = '/') {
  return {
    httpOnly: true,
    sameSite: 'strict' as const,
    // Secure behind TLS (directly, or through a trusted proxy's X-Forwarded-Proto).
    secure: req.protocol === 'https',
    path,
    maxAge: maxAgeS,
  };
}

/** A same-site path to return to after login; anything else becomes `/`. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/';
}

export function registerAuth(app: FastifyInstance, opts: AuthOptions): void {
  const { pool, config, assets } = opts;
  const throttle = opts.throttle ?? DEFAULT_THROTTLE;
  const ttlMs = config.ERP_CONSOLE_SESSION_MINUTES * 60_000;
  const fromProxy = config.ERP_CONSOLE_TRUST_PROXY
    ? compileTrust(config.ERP_CONSOLE_TRUST_PROXY.split(',').map((a) => a.trim()))
    : null;
  app.decorateRequest('session', null);

  app.addHook('onRequest', async (req, reply) => {
    reply.header(
      'content-security-policy',
      req.url === '/queue' || req.url.startsWith('/queue/') ? CSP_QUEUE : CSP,
    );
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-frame-options', 'DENY');
    const path = req.url.split('?')[0]!;
    if (PUBLIC.some((p) => p.test(path))) return;
    const token = req.cookies[SESSION_COOKIE];
    req.session = token ? await findSession(pool, token) : null;
    // The identity header counts only on a request the trusted proxy itself made (its socket's
    // address, not X-Forwarded-For, which anyone can send).
    if (
      !req.session &&
      config.ERP_CONSOLE_TRUSTED_HEADER &&
      fromProxy?.(req.socket.remoteAddress ?? '', 0) === true
    ) {
      const name = req.headers[config.ERP_CONSOLE_TRUSTED_HEADER.toLowerCase()];
      const user = typeof name === 'string' && name !== '' ? await findUser(pool, name) : null;
      if (user) {
        const s = await createSession(pool, user.name, req.ip, ttlMs);
        reply.setCookie(SESSION_COOKIE, s.token, cookieOptions(req, ttlMs / 1000));
        req.session = {
          user: user.name,
          role: user.role,
          csrf: s.csrf,
          expiresAt: new Date(Date.now() + ttlMs),
        };
      }
    }
    if (req.session) return;
    // Only a page is sent to the login form; an asset, an API call or an event stream gets 401.
    if (req.method === 'GET' && req.headers.accept?.includes('text/html')) {
      return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`);
    }
    return reply.code(401).type('text/plain').send('not signed in\n');
  });

  app.addHook('preHandler', async (req, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD' || !req.session) return;
    const path = req.url.split('?')[0]!;
    if (path.startsWith('/queue/')) {
      // bull-board's own client cannot send our token; its API accepts same-origin requests only
      // (the browser sets Sec-Fetch-Site; the session cookie is SameSite=Strict besides).
      if (req.headers['sec-fetch-site'] === 'same-origin') return;
      return reply.code(403).type('text/plain').send('refused: cross-site request\n');
    }
    const body = req.body as Record<string, unknown> | undefined;
    const sent =
      (body && typeof body._csrf === 'string' ? body._csrf : undefined) ?? req.headers['x-csrf-token'];
    if (!sameToken(typeof sent === 'string' ? sent : undefined, req.session.csrf)) {
      return reply
        .code(403)
        .type('text/plain')
        .send('refused: missing or wrong CSRF token; reload the page\n');
    }
  });

  const loginPage = (req: FastifyRequest, reply: FastifyReply, message: string | null, code = 200) => {
    // One token per browser, kept across renders: several tabs (or a favicon fetch) do not invalidate it.
    const csrf = req.cookies[LOGIN_CSRF_COOKIE] || randomToken();
    reply.setCookie(LOGIN_CSRF_COOKIE, csrf, cookieOptions(req, 3600, '/login'));
    const next = safeNext(
      (req.query as Record<string, unknown>).next ?? (req.body as Record<string, unknown>)?.next,
    );
    return reply
      .code(code)
      .type('text/html; charset=utf-8')
      .send(
        page(
          req,
          assets,
          'Sign in',
          html`${message ? html`<p class="error" id="login-error">${message}</p>` : null}
            <form method="post" action="/login" class="login">
              <input type="hidden" name="_csrf" value="${csrf}" />
              <input type="hidden" name="next" value="${next}" />
              <label>User <input name="user" autocomplete="username" required /></label>
              <label
                >Password <input name="password" type="password" autocomplete="current-password" required
              /></label>
              <button type="submit">Sign in</button>
            </form>`,
        ),
      );
  };

  app.get('/login', (req, reply) => loginPage(req, reply, null));

  app.post('/login', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (
      !sameToken(
        typeof body._csrf === 'string' ? body._csrf : undefined,
        req.cookies[LOGIN_CSRF_COOKIE] ?? '',
      )
    ) {
      return reply
        .code(403)
        .type('text/plain')
        .send('refused: missing or wrong CSRF token; reload the page\n');
    }
    const user = typeof body.user === 'string' ? body.user.slice(0, 64) : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const wait = await throttledFor(pool, user, req.ip, throttle);
    if (wait > 0) {
      return loginPage(
        req,
        reply,
        `Too many failed sign-ins for this account or address; try again in ${Math.ceil(wait / 60)} min.`,
        429,
      );
    }
    const found = await findUser(pool, user);
    // Verify against a dummy hash for unknown users, so the time taken does not tell who exists.
    const ok = (await verifyPassword(password, found?.password_hash ?? DUMMY_HASH)) && found !== null;
    if (!ok) {
      await recordLoginFailure(pool, user, req.ip);
      return loginPage(req, reply, 'Wrong user name or password.', 401);
    }
    await clearLoginFailures(pool, user, throttle.windowMs);
    const s = await createSession(pool, found.name, req.ip, ttlMs);
    await recordAction(pool, { actor: found.name, address: req.ip, action: 'login' });
    reply.setCookie(SESSION_COOKIE, s.token, cookieOptions(req, ttlMs / 1000));
    reply.clearCookie(LOGIN_CSRF_COOKIE, { path: '/login' });
    return reply.redirect(safeNext(body.next), 303);
  });

  app.post('/logout', async (req, reply) => {
    const token = req.cookies[SESSION_COOKIE];
    if (token) await endSession(pool, token);
    if (req.session) await recordAction(pool, { actor: req.session.user, address: req.ip, action: 'logout' });
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.redirect('/login', 303);
  });
}
