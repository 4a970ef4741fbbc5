import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';

/**
 * Input files come only from where they may: the project home and the directories listed in
 * ERP_INPUT_DIRS. A path is checked after resolving `..` and symbolic links, before the file is
 * opened, so `--file ../../etc/shadow` (or a link to it) is refused without reading a byte of it.
 */

/** The allowed roots: `home`, then each `:`-separated entry of `inputDirs` (relative to `home`). */
export function inputRootsOf(home: string, inputDirs: string): string[] {
  const extra = inputDirs
    .split(':')
    .map((d) => d.trim())
    .filter(Boolean)
    .map((d) => path.resolve(home, d));
  return [path.resolve(home), ...extra];
}

/** Resolves `file` and returns it when it lies inside one of `roots`; throws a {@link UserError} otherwise. */
export async function confineInput(file: string, roots: readonly string[]): Promise<void> {
  await (
    await inputConfinement(roots)
  )(file);
}

/**
 * {@link confineInput} for many files: the roots are resolved once, each file when it is checked
 * (a run over a glob of thousands of small files pays one realpath a file, not one per root too).
 */
export async function inputConfinement(roots: readonly string[]): Promise<(file: string) => Promise<void>> {
  const real = await Promise.all(roots.map((root) => realpath(root).catch(() => path.resolve(root))));
  const prefixes = real.map((r) => (r.endsWith(path.sep) ? r : r + path.sep));
  return async (file) => {
    const absolute = path.resolve(file);
    // A missing file is reported by whoever opens it; its path must still lie inside a root.
    const resolved = await realpath(absolute).catch(() => absolute);
    if (real.some((r, i) => resolved === r || resolved.startsWith(prefixes[i]!))) return;
    throw new UserError(
      `${file}: not inside an allowed input directory (${roots.join(', ')}); input files come from ERP_HOME or a directory listed in ERP_INPUT_DIRS`,
    );
  };
}
