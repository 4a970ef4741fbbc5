/**
 * Console sessions (console.sessions) and login throttling (console.login_failures), both in
 * PostgreSQL so that several console processes behind one proxy agree. The cookie holds a random
 * token; the table holds its SHA-256, the user, the session's CSRF token and its expiry.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import type { Role } from './users.js';

/** A signed-in user, as a request sees it. */
export interface Session {
  user: string;
  role: Role;
  csrf: string;
  expiresAt: Date;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A random token, URL-safe. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Starts a session; returns the cookie token. */
export async function createSession(
  db: pg.Pool,
  user: string,
  address: string,
  ttlMs: number,
): Promise<{ token: string; csrf: string }> {
  const token = randomToken();
  const csrf = randomToken();
  await db.query(
    `INSERT INTO console.sessions (token_sha256, user_name, csrf_token, address, expires_at)
     VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond')`,
    [sha256(token), user, csrf, address, ttlMs],
  );
  return { token, csrf };
}

/** The live session of a cookie token, or null (unknown or expired). */
export async function findSession(db: pg.Pool, token: string): Promise<Session | null> {
  const { rows } = await db.query<{ user_name: string; role: Role; csrf_token: string; expires_at: Date }>(
    `SELECT s.user_name, u.role, s.csrf_token, s.expires_at
       FROM console.sessions s JOIN console.users u ON u.name = s.user_name
      WHERE s.token_sha256 = $1 AND s.expires_at > now()`,
    [sha256(token)],
  );
  const r = rows[0];
  return r ? { user: r.user_name, role: r.role, csrf: r.csrf_token, expiresAt: r.expires_at } : null;
}

export async function endSession(db: pg.Pool, token: string): Promise<void> {
  await db.query('DELETE FROM console.sessions WHERE token_sha256 = $1 OR expires_at < now()', [
    sha256(token),
  ]);
}

/** Compares two tokens in constant time. */
export function sameToken(a: string | undefined, b: string): boolean {
  if (typeof a !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** How many failed logins are allowed in the window, per account and per address. */
export interface ThrottlePolicy {
  perAccount: number;
  perAddress: number;
  windowMs: number;
}

/** 5 wrong passwords per account or 20 per address in 15 minutes, then wait. */
export const DEFAULT_THROTTLE: ThrottlePolicy = { perAccount: 5, perAddress: 20, windowMs: 15 * 60_000 };

/**
 * Seconds until another login attempt for `user` from `address` is allowed (0: allowed now).
 * Counted before the password is checked, so a throttled attacker learns nothing from it.
 */
export async function throttledFor(
  db: pg.Pool,
  user: string,
  address: string,
  policy: ThrottlePolicy,
): Promise<number> {
  const { rows } = await db.query<{ n_user: number; n_addr: number; wait_user: number; wait_addr: number }>(
    `WITH w AS (SELECT * FROM console.login_failures WHERE at > now() - $3 * interval '1 millisecond')
     SELECT (SELECT count(*) FROM w WHERE user_name = $1)::int AS n_user,
            (SELECT count(*) FROM w WHERE address = $2)::int AS n_addr,
            (SELECT extract(epoch FROM min(at) + $3 * interval '1 millisecond' - now())
               FROM (SELECT at FROM w WHERE user_name = $1 ORDER BY at DESC LIMIT $4) t)::float AS wait_user,
            (SELECT extract(epoch FROM min(at) + $3 * interval '1 millisecond' - now())
               FROM (SELECT at FROM w WHERE address = $2 ORDER BY at DESC LIMIT $5) t)::float AS wait_addr`,
    [user, address, policy.windowMs, policy.perAccount, policy.perAddress],
  );
  const r = rows[0]!;
  let wait = 0;
  if (r.n_user >= policy.perAccount) wait = Math.max(wait, r.wait_user);
  if (r.n_addr >= policy.perAddress) wait = Math.max(wait, r.wait_addr);
  return Math.ceil(wait);
}

export async function recordLoginFailure(db: pg.Pool, user: string, address: string): Promise<void> {
  await db.query('INSERT INTO console.login_failures (user_name, address) VALUES ($1, $2)', [user, address]);
}

/** A good login clears the account's failures and prunes old ones. */
export async function clearLoginFailures(db: pg.Pool, user: string, windowMs: number): Promise<void> {
  await db.query(
    `DELETE FROM console.login_failures WHERE user_name = $1 OR at < now() - $2 * interval '1 millisecond'`,
    [user, windowMs],
  );
}
