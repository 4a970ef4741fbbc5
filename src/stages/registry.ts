import { z } from 'zod';
import { csvFormatSchema } from './format-csv.js';
import { nachaFormatSchema } from './format-nacha.js';
import { xlsxFormatSchema } from '../xlsx/options.js';
import { fileSinkSchema } from './sink-file.js';
import { postgresSinkSchema } from './sink-postgres.js';
import { sftpSinkSchema } from './sink-sftp.js';
import { fileSourceSchema } from './source-file.js';
import { postgresSourceSchema } from './source-postgres.js';
import { sftpSourceSchema } from './source-sftp.js';

/**
 * The one explicit list of stage kinds. Adding a kind means adding its schema here and its factory
 * in src/pipeline/build.ts; nothing registers itself by being imported.
 */
export const sourceSchema = z.discriminatedUnion('kind', [
  fileSourceSchema,
  sftpSourceSchema,
  postgresSourceSchema,
]);
export const formatSchema = z.discriminatedUnion('kind', [
  csvFormatSchema,
  xlsxFormatSchema,
  nachaFormatSchema,
]);
export const sinkSchema = z.discriminatedUnion('kind', [postgresSinkSchema, fileSinkSchema, sftpSinkSchema]);

/** Source kinds that yield files (an import); the others yield rows (an export). */
export const FILE_SOURCES: readonly SourceConfig['kind'][] = ['file', 'sftp'];
/** Sink kinds that load PostgreSQL (an import); the others write files (an export). */
export const TABLE_SINKS: readonly SinkConfig['kind'][] = ['postgres'];

export type SourceConfig = z.infer<typeof sourceSchema>;
export type FormatConfig = z.infer<typeof formatSchema>;
export type SinkConfig = z.infer<typeof sinkSchema>;
