import { statSync } from 'node:fs';

/**
 * Values derived from files (a parsed job definition, a SQL file's text), reused while the file
 * keeps its modification time and size: a worker reads the same few files for every run it takes.
 * One synchronous stat per use — microseconds on a local file, where a round trip through the
 * thread pool costs more.
 */
export class FileCache<T> {
  private readonly entries = new Map<string, { mtimeMs: number; size: number; value: T }>();

  /** The value of `file`, made by `load` unless the file is unchanged since; undefined when there is no such file. */
  async get(file: string, load: () => Promise<T>): Promise<T | undefined> {
    const seen = statSync(file, { throwIfNoEntry: false });
    if (!seen?.isFile()) return undefined;
    const cached = this.entries.get(file);
    if (cached && cached.mtimeMs === seen.mtimeMs && cached.size === seen.size) return cached.value;
    const value = await load();
    this.entries.set(file, { mtimeMs: seen.mtimeMs, size: seen.size, value });
    return value;
  }
}
