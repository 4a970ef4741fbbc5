import { createInterface } from 'node:readline';
import type { App } from '../app.js';
import { UserError } from '../errors.js';
import { table } from './report.js';
import { addUser, checkRole, listUsers, removeUser, setPassword, setRole } from '../console/users.js';
import { EXIT } from './exit.js';

/** Options of `erp users`. */
export interface UsersCommandOptions {
  role?: string[] | string;
  passwordStdin?: boolean;
}

/** Reads the whole of stdin (a password piped in), without its final newline. */
async function readStdin(): Promise<string> {
  let s = '';
  for await (const chunk of process.stdin) s += String(chunk);
  return s.replace(/\r?\n$/, '');
}

/** Asks for a password on the terminal, twice, without echoing it. */
async function prompt(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  // Echo nothing of what is typed; readline writes through _writeToOutput.
  const r = rl as unknown as { _writeToOutput(s: string): void };
  let asking = true;
  r._writeToOutput = (s: string) => {
    if (!asking || s === question) process.stderr.write(s);
  };
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    asking = false;
    process.stderr.write('\n');
    rl.close();
  }
}

/**
 * The new password: `--password-stdin`, else ERP_USER_PASSWORD, else a prompt on a terminal.
 * There is never a default.
 */
async function newPassword(opts: UsersCommandOptions): Promise<string> {
  if (opts.passwordStdin) return readStdin();
  const env = process.env.ERP_USER_PASSWORD;
  if (env) return env;
  if (!process.stdin.isTTY) {
    throw new UserError(
      'no password: give --password-stdin, set ERP_USER_PASSWORD, or run on a terminal to be asked',
    );
  }
  const a = await prompt('Password: ');
  const b = await prompt('Again: ');
  if (a !== b) throw new UserError('the two passwords differ');
  return a;
}

const USAGE =
  'usage: erp users list | add <name> --role viewer|operator|approver|admin | remove <name> | passwd <name> | role <name> <role>';

/** `erp users add|list|remove|passwd|role`: the console's users and their roles. */
export async function usersCommand(
  app: App,
  action: string | undefined,
  name: string | undefined,
  extra: string | undefined,
  opts: UsersCommandOptions,
): Promise<number> {
  const roleOpt = Array.isArray(opts.role) ? opts.role[0] : opts.role;
  if (action === undefined || action === 'list') {
    const users = await listUsers(app.pool);
    process.stdout.write(
      (users.length === 0
        ? 'no users; create the first admin with: erp users add <name> --role admin'
        : table(
            ['USER', 'ROLE', 'CREATED', 'CHANGED'],
            users.map((u) => [u.name, u.role, u.created_at.toISOString(), u.updated_at.toISOString()]),
          )) + '\n',
    );
    return EXIT.ok;
  }
  if (!name) throw new UserError(USAGE);
  switch (action) {
    case 'add': {
      const role = checkRole(roleOpt ?? 'viewer');
      await addUser(app.pool, name, role, await newPassword(opts));
      process.stdout.write(`user ${name} added with role ${role}\n`);
      return EXIT.ok;
    }
    case 'remove':
      await removeUser(app.pool, name);
      process.stdout.write(`user ${name} removed; their sessions ended\n`);
      return EXIT.ok;
    case 'passwd':
      await setPassword(app.pool, name, await newPassword(opts));
      process.stdout.write(`password of ${name} changed; their sessions ended\n`);
      return EXIT.ok;
    case 'role': {
      const role = checkRole(extra ?? roleOpt ?? '');
      await setRole(app.pool, name, role);
      process.stdout.write(`user ${name} is now ${role}; their sessions ended\n`);
      return EXIT.ok;
    }
    default:
      throw new UserError(`unknown action '${action}'; ${USAGE}`);
  }
}
