/**
 * Console users in PostgreSQL (console.users). Passwords are hashed with scrypt from node:crypto;
 * there is no default user and no default password: the first admin is made with
 * `erp users add NAME --role admin`.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type pg from 'pg';
import { UserError } from '../errors.js';
import { SQLSTATE } from '../db/sqlstate.js';

/**
 * What a user may do: viewer reads; operator also cancels, reruns, reloads, triggers; approver also
 * sees the runs awaiting approval; admin also users and queue. Each role has the rights of those before it.
 */
export type Role = 'viewer' | 'operator' | 'approver' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'approver', 'admin'];
/** A role's place in {@link ROLES}: a user may do what any role of a lower rank may. */
export const ROLE_RANK: Record<Role, number> = { viewer: 0, operator: 1, approver: 2, admin: 3 };

/** A user as listed (never with the hash). */
export interface ConsoleUser {
  name: string;
  role: Role;
  created_at: Date;
  updated_at: Date;
}

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** scrypt cost: N=2^15, r=8, p=1 (about 32 MiB and 50–100 ms per hash), OWASP's recommendation. */
const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32 } as const;
const MIN_PASSWORD = 10;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, { ...opts, maxmem: 128 * opts.N! * opts.r! * 2 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$salt$hash`, salt and hash in base64. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keylen, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** True when `password` matches `stored`; compares in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(key, expected);
}

/** A password hash no password matches, verified for unknown users so timing does not tell who exists. */
export const DUMMY_HASH =
  'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export function checkUserName(name: string): string {
  if (!USER_NAME.test(name)) {
    throw new UserError(
      `user name '${name}': expected 1–64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit`,
    );
  }
  return name;
}

export function checkRole(role: string): Role {
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new UserError(`role '${role}': expected one of ${ROLES.join(', ')}`);
  }
  return role as Role;
}

export function checkPassword(password: string): string {
  if (password.length < MIN_PASSWORD) {
    throw new UserError(`password: expected at least ${MIN_PASSWORD} characters`);
  }
  return password;
}

export async function addUser(db: pg.Pool, name: string, role: Role, password: string): Promise<void> {
  checkUserName(name);
  const hash = await hashPassword(checkPassword(password));
  try {
    await db.query('INSERT INTO console.users (name, role, password_hash) VALUES ($1, $2, $3)', [
      name,
      role,
      hash,
    ]);
  } catch (err) {
    if ((err as { code?: string }).code === SQLSTATE.UNIQUE_VIOLATION)
      throw new UserError(`user ${name} exists already`);
    throw err;
  }
}

export async function listUsers(db: pg.Pool): Promise<ConsoleUser[]> {
  const { rows } = await db.query<ConsoleUser>(
    'SELECT name, role, created_at, updated_at FROM console.users ORDER BY name',
  );
  return rows;
}

async function updateOne(db: pg.Pool, name: string, sql: string, params: unknown[]): Promise<void> {
  const { rowCount } = await db.query(sql, [name, ...params]);
  if ((rowCount ?? 0) === 0) throw new UserError(`no user ${name}`);
}

/** Removes a user; their sessions go with them. */
export async function removeUser(db: pg.Pool, name: string): Promise<void> {
  await updateOne(db, name, 'DELETE FROM console.users WHERE name = $1', []);
}

/** Sets a new password and ends the user's sessions. */
export async function setPassword(db: pg.Pool, name: string, password: string): Promise<void> {
  const hash = await hashPassword(checkPassword(password));
  await updateOne(
    db,
    name,
    'UPDATE console.users SET password_hash = $2, updated_at = now() WHERE name = $1',
    [hash],
  );
  await db.query('DELETE FROM console.sessions WHERE user_name = $1', [name]);
}

/** Changes a user's role; their sessions end, so the new role holds from the next login. */
export async function setRole(db: pg.Pool, name: string, role: Role): Promise<void> {
  await updateOne(db, name, 'UPDATE console.users SET role = $2, updated_at = now() WHERE name = $1', [role]);
  await db.query('DELETE FROM console.sessions WHERE user_name = $1', [name]);
}

/** The user's role and hash, for a login. */
export async function findUser(
  db: pg.Pool,
  name: string,
): Promise<{ name: string; role: Role; password_hash: string } | null> {
  const { rows } = await db.query<{ name: string; role: Role; password_hash: string }>(
    'SELECT name, role, password_hash FROM console.users WHERE name = $1',
    [name],
  );
  return rows[0] ?? null;
}
