import { z } from 'zod';
import { csvFormatSchema } from './format-csv.js';
import { postgresSinkSchema } from './sink-postgres.js';
import { fileSourceSchema } from './source-file.js';

/**
 * The one explicit list of stage kinds. Adding a kind means adding its schema here and its factory
 * in src/pipeline/build.ts; nothing registers itself by being imported.
 */
export const sourceSchema = z.discriminatedUnion('kind', [fileSourceSchema]);
export const formatSchema = z.discriminatedUnion('kind', [csvFormatSchema]);
export const sinkSchema = z.discriminatedUnion('kind', [postgresSinkSchema]);

export type SourceConfig = z.infer<typeof sourceSchema>;
export type FormatConfig = z.infer<typeof formatSchema>;
export type SinkConfig = z.infer<typeof sinkSchema>;
