import { stat } from 'node:fs/promises';
import path from 'node:path';
import { glob } from 'tinyglobby';
import { z } from 'zod';
import { UserError } from '../errors.js';
import { inputConfinement } from '../config/input-roots.js';
import type { Source, SourceFile, StageContext } from './types.js';

/** `source: { kind: file }` — local files by path or glob, processed in name order. */
export const fileSourceSchema = z
  .object({
    kind: z.literal('file'),
    /** A path or glob, relative to the project home unless absolute, e.g. `fixtures/items/*.csv`. */
    path: z.string().min(1),
  })
  .strict();
export type FileSourceConfig = z.infer<typeof fileSourceSchema>;

/** Creates the file source; `override` (from `--file`) replaces the configured path or glob. */
export function createFileSource(config: FileSourceConfig, ctx: StageContext, override?: string[]): Source {
  return {
    async *files(): AsyncIterable<SourceFile> {
      const paths = override ?? (await expand(config.path, ctx.home));
      const confine = await inputConfinement(ctx.inputRoots ?? [ctx.home]);
      for (const p of paths) {
        await confine(p);
        let size: number;
        try {
          const s = await stat(p);
          if (!s.isFile()) throw new UserError(`${p}: not a regular file`);
          size = s.size;
        } catch (err) {
          if (err instanceof UserError) throw err;
          throw new UserError(
            `${p}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
          );
        }
        yield { name: p, path: p, size };
      }
    },
  };
}

async function expand(pattern: string, home: string): Promise<string[]> {
  const absolute = path.isAbsolute(pattern);
  const found = await glob(pattern, {
    cwd: absolute ? '/' : home,
    absolute: false,
    onlyFiles: true,
    expandDirectories: false,
  });
  return found
    .sort()
    .map((f) => (absolute ? path.resolve('/', f) : path.relative(process.cwd(), path.resolve(home, f)) || f));
}
