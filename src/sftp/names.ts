/**
 * Remote names are untrusted: this module holds the checks every remote name and path passes
 * before use ({@link safeRemoteName} for base names, {@link resolveInside} for joining a name to a
 * directory, both refusing control characters) and the glob matcher that `listReady` applies
 * to listed names.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { UserError } from '../errors.js';

// picomatch is tinyglobby's matcher (same globs as local file sources); it ships no types, hence require.
type Matcher = (name: string) => boolean;
export const picomatch = createRequire(import.meta.url)('picomatch') as (
  glob: string,
  options?: { dot?: boolean },
) => Matcher;

// C0 controls, DEL and C1 controls: a name holding them can forge log lines or terminal output.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Returns `name` when it is a plain base name; throws a {@link UserError} otherwise. Remote names
 * are untrusted: `..`, `.`, empty names, `/`, `\`, NUL, control characters and names over 255
 * bytes are refused, so a name can never reach outside the directory it was listed in.
 */
export function safeRemoteName(name: string): string {
  let reason: string | undefined;
  if (typeof name !== 'string' || name === '') reason = 'it is empty';
  else if (name === '.' || name === '..') reason = 'it names a directory';
  else if (name.includes('/') || name.includes('\\')) reason = 'it contains a path separator';
  else if (CONTROL.test(name)) reason = 'it contains NUL or a control character';
  else if (Buffer.byteLength(name) > 255) reason = 'it is longer than 255 bytes';
  if (reason !== undefined) {
    throw new UserError(
      `remote file name ${JSON.stringify(name)} refused: ${reason}; only a plain file name is allowed`,
    );
  }
  return name;
}

/**
 * Joins `dir` and the relative path `name`, refusing any result outside `dir`. Containment is
 * decided on resolved POSIX paths, not on a string prefix: `/in` does not contain `/inbox/x`.
 * A relative `dir` (relative to the login directory) stays relative.
 */
export function resolveInside(dir: string, name: string): string {
  if (typeof name !== 'string' || name === '' || CONTROL.test(name) || CONTROL.test(dir)) {
    throw new UserError(
      `remote path ${JSON.stringify(name)} in ${JSON.stringify(dir)} refused: empty or control characters`,
    );
  }
  if (path.posix.isAbsolute(name)) {
    throw new UserError(
      `remote path ${JSON.stringify(name)} refused: an absolute path cannot be inside ${dir}`,
    );
  }
  // Resolve against a virtual root so a relative dir never picks up this process's cwd.
  const base = path.posix.resolve('/', dir);
  const target = path.posix.resolve(base, name);
  const rel = path.posix.relative(base, target);
  if (rel === '' || rel === '..' || rel.startsWith('../') || path.posix.isAbsolute(rel)) {
    throw new UserError(
      `remote path ${JSON.stringify(name)} refused: it resolves to ${target}, outside ${base}`,
    );
  }
  return path.posix.join(dir, rel);
}
