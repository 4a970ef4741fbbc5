/**
 * The one explicit list of stage kinds, by role. Adding a kind is one new file under src/stages/
 * exporting its StageKind, plus one line here; nothing registers itself by being imported. The
 * pipeline schema (and so `erp schema`'s JSON Schema), FILE_SOURCES and TABLE_SINKS derive from
 * these lists, and test/stage-kinds.test.ts checks the README's stage table against them.
 */
import { z } from 'zod';
import { csvFormat } from './format-csv.js';
import { fixedWidthFormat } from './format-fixed-width.js';
import { nachaFormat } from './format-nacha.js';
import { xlsxFormat } from './format-xlsx.js';
import { fileSink } from './sink-file.js';
import { postgresSink } from './sink-postgres.js';
import { sftpSink } from './sink-sftp.js';
import { fileSource } from './source-file.js';
import { postgresSource } from './source-postgres.js';
import { sftpSource } from './source-sftp.js';

export const SOURCES = [fileSource, sftpSource, postgresSource] as const;
export const FORMATS = [csvFormat, xlsxFormat, nachaFormat, fixedWidthFormat] as const;
export const SINKS = [postgresSink, fileSink, sftpSink] as const;

type Schemas<T extends readonly { schema: unknown }[]> = { -readonly [K in keyof T]: T[K]['schema'] };
const schemasOf = <T extends readonly { schema: unknown }[]>(kinds: T): Schemas<T> =>
  kinds.map((k) => k.schema) as Schemas<T>;

export const sourceSchema = z.discriminatedUnion('kind', schemasOf(SOURCES));
export const formatSchema = z.discriminatedUnion('kind', schemasOf(FORMATS));
export const sinkSchema = z.discriminatedUnion('kind', schemasOf(SINKS));

export type SourceConfig = z.infer<typeof sourceSchema>;
export type FormatConfig = z.infer<typeof formatSchema>;
export type SinkConfig = z.infer<typeof sinkSchema>;

/** Source kinds that yield files (an import); the others yield rows (an export). */
export const FILE_SOURCES: readonly string[] = SOURCES.filter((k) => k.role === 'file source').map(
  (k) => k.kind,
);
/** Sink kinds that load PostgreSQL (an import); the others write files (an export). */
export const TABLE_SINKS: readonly string[] = SINKS.filter((k) => k.role === 'table sink').map((k) => k.kind);
/** Format kinds that read files (an import needs one). */
export const READERS: readonly string[] = FORMATS.filter((k) => k.role !== 'writer').map((k) => k.kind);
/** Format kinds that write files (an export needs one). */
export const WRITERS: readonly string[] = FORMATS.filter((k) => k.role !== 'reader').map((k) => k.kind);

/** The descriptor of `kind` in `kinds` (the schema has already refused an unknown kind). */
export function kindOf<T extends readonly { kind: string }[]>(kinds: T, kind: string): T[number] {
  const found = kinds.find((k) => k.kind === kind);
  if (!found) throw new Error(`no stage kind ${kind}`);
  return found;
}
