/**
 * `sink: { kind: file }` — an export written atomically into a local directory.
 *
 *   open(name) ──► <dir>/.<name>.<random>.part (O_EXCL) ──► bytes ──► commit: close, fsync, then
 *        overwrite: false   link(part, name) — fails with EEXIST if the name exists ──► unlink(part)
 *        overwrite: true    rename(part, name) — replaces the old file in one step
 *     ──► fsync(dir)
 *   abort ──► unlink(part)
 *
 * Readers of the directory never see a half-written file under the final name, and without
 * `overwrite` an existing file is never replaced, even by a concurrent run (link, unlike a check
 * followed by a rename, cannot race).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { link, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { z } from 'zod';
import { UserError } from '../errors.js';
import type { FileSink, StageContext, StageKind } from './types.js';

const PLACEHOLDERS = ['date', 'period', 'as_of', 'run_id', 'ext'] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];

/** `sink: { kind: file }` — where an export's file goes. */
export const fileSinkSchema = z
  .object({
    kind: z.literal('file'),
    /** Output directory, relative to the project home unless absolute. It must exist. */
    dir: z.string().min(1),
    /**
     * File name template: `{date}` (the run's date, YYYY-MM-DD), `{period}` (the run's period
     * parameter), `{as_of}` (the run's as_of parameter), `{run_id}`, `{ext}` (the format's extension),
     * e.g. `trial-balance-{period}.{ext}`.
     */
    name: z
      .string()
      .min(1)
      .refine((t) => unknownPlaceholders(t).length === 0, {
        message: `unknown placeholder; allowed: ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`,
      }),
    /** Replace a file of the same name. Without it, an existing file stops the export. @defaultValue false */
    overwrite: z.boolean().default(false),
  })
  .strict();
export type FileSinkConfig = z.infer<typeof fileSinkSchema>;

/** Values for the name template's placeholders. */
export interface OutputNameValues {
  /** Defaults to today's local date. */
  date?: string;
  period?: string | number;
  /** An as-of date parameter (reports as of a day name their file by it, not by the run's date). */
  as_of?: string;
  run_id?: string | number;
  ext?: string;
}

function unknownPlaceholders(template: string): string[] {
  return [...template.matchAll(/\{([^}]*)\}/g)]
    .map((m) => m[1]!)
    .filter((p) => !(PLACEHOLDERS as readonly string[]).includes(p));
}

function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** Longest output name: 255 bytes less the temporary name's `.` + `.<12 hex>.part`. */
const MAX_NAME_BYTES = 236;

/**
 * Checks that `name` is a plain file name: no directory part, no `.`/`..`, no NUL, not hidden
 * behind a leading dot (temporary files use that), at most 236 bytes.
 */
export function checkOutputName(name: string): string {
  const problem =
    name === '' || name.trim() === ''
      ? 'is empty'
      : name.includes('\0')
        ? 'contains a NUL character'
        : /[/\\]/.test(name)
          ? 'contains a path separator'
          : name === '.' || name === '..'
            ? 'is a directory reference'
            : name.startsWith('.')
              ? 'starts with a dot'
              : Buffer.byteLength(name) > MAX_NAME_BYTES
                ? `is longer than ${MAX_NAME_BYTES} bytes`
                : null;
  if (problem !== null)
    throw new UserError(`output file name ${JSON.stringify(name)} ${problem}; expected a plain file name`);
  return name;
}

/** Fills the name template; a placeholder without a value is a {@link UserError}. */
export function renderOutputName(template: string, values: OutputNameValues): string {
  const filled = template.replace(/\{([^}]*)\}/g, (whole, key: string) => {
    const v = key === 'date' ? (values.date ?? today()) : values[key as Placeholder];
    if (v === undefined || v === null || v === '') {
      throw new UserError(`the output name '${template}' uses {${key}}, but the run has no ${key}`);
    }
    return String(v);
  });
  return checkOutputName(filled);
}

/** A file sink, plus the name its template gives for a run. */
export interface LocalFileSink extends FileSink {
  /** The output name for a run: the template filled and checked. */
  outputName(values: OutputNameValues): string;
}

/** Creates the file sink; `dir` resolves against the project home. */
export function createFileSink(config: FileSinkConfig, ctx: StageContext): LocalFileSink {
  const dir = path.resolve(ctx.home, config.dir);
  return {
    describe: () => `file ${path.join(config.dir, config.name)}${config.overwrite ? ' (overwrite)' : ''}`,
    outputName: (values) => renderOutputName(config.name, values),
    open: async (name) => openOutput(dir, checkOutputName(name), config.overwrite),
  };
}

async function openOutput(dir: string, name: string, overwrite: boolean): ReturnType<FileSink['open']> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new UserError(`output directory ${dir} is not a directory`);
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(
      `output directory ${dir} ${code === 'ENOENT' ? 'does not exist' : `cannot be used (${code})`}`,
    );
  }
  const final = path.join(dir, name);
  // Checked again, without a race, at commit; this only spares writing a file that cannot land.
  if (!overwrite && (await exists(final))) {
    throw new UserError(`${final} already exists; set overwrite: true to replace it`);
  }
  const temp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.part`);
  // 'wx': O_CREAT | O_EXCL, so an existing file (however unlikely the name) is never reused.
  const stream = createWriteStream(temp, { flags: 'wx', mode: 0o644, highWaterMark: 1 << 16 });
  await Promise.race([
    once(stream, 'ready'),
    once(stream, 'error').then(([err]) => Promise.reject(err as Error)),
  ]);
  let settled = false;

  return {
    stream,
    async commit() {
      if (settled) throw new Error(`${final}: output already committed or aborted`);
      settled = true;
      try {
        if (!stream.writableEnded) stream.end();
        await finished(stream);
        if (!stream.closed) await once(stream, 'close');
        await syncFile(temp);
        if (overwrite) await rename(temp, final);
        else await placeWithoutOverwrite(temp, final);
        await syncFile(dir);
        return final;
      } catch (err) {
        stream.on('error', () => undefined);
        stream.destroy();
        await unlink(temp).catch(() => undefined);
        throw err;
      }
    },
    async abort() {
      if (settled) return;
      settled = true;
      // Writes still queued fail once the stream is destroyed; the file is going anyway.
      stream.on('error', () => undefined);
      stream.destroy();
      if (!stream.closed) await new Promise<void>((resolve) => stream.once('close', () => resolve()));
      await unlink(temp).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    },
  };
}

/** Moves `temp` to `final` unless `final` exists. */
async function placeWithoutOverwrite(temp: string, final: string): Promise<void> {
  try {
    await link(temp, final);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UserError(`${final} already exists; set overwrite: true to replace it`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    // A file system without hard links (some network and FUSE mounts): check, then rename. Two
    // runs writing the same name at the same instant could race here; nothing else can.
    if (await exists(final))
      throw new UserError(`${final} already exists; set overwrite: true to replace it`);
    await rename(temp, final);
    return;
  }
  await unlink(temp);
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** fsyncs a file's data, or a directory's entries (making a rename or link in it durable). */
async function syncFile(p: string): Promise<void> {
  const h = await open(p, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** `sink: { kind: file }`, for src/stages/registry.ts. */
export const fileSink: StageKind<'file sink', typeof fileSinkSchema, LocalFileSink> = {
  kind: 'file',
  role: 'file sink',
  schema: fileSinkSchema,
  create: (config, { ctx }) => createFileSink(config, ctx),
  summary: 'a file written atomically into a local directory',
};
