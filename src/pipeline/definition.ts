import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { FileCache } from '../config/file-cache.js';
import { loadYamlFile } from '../config/yaml.js';
import { expectSchema } from '../alerts/expect.js';
import { UserError } from '../errors.js';
import {
  FILE_SOURCES,
  formatSchema,
  READERS,
  sinkSchema,
  sourceSchema,
  TABLE_SINKS,
  WRITERS,
} from '../stages/registry.js';
import { transformSchema } from '../stages/transform.js';
import { validateSchema } from '../stages/validate.js';

/** What to do about rejected rows, per file. */
export const rejectPolicySchema = z
  .object({
    /** Most rejected rows a file may have and still load; more rolls the whole file back. */
    max_rejects: z.number().int().min(0).optional(),
    /** Highest share of rejected rows (0–1) a file may have and still load. */
    max_reject_rate: z.number().min(0).max(1).optional(),
  })
  .strict();

/**
 * A pipeline definition, `pipelines/<name>.yaml`. This schema is the single spec: it validates the
 * files, words their errors and is printed as JSON Schema by `erp schema`.
 */
export const pipelineSchema = z
  .object({
    /** One line saying what the pipeline does; shown by `erp list`. */
    description: z.string().optional(),
    source: sourceSchema,
    format: formatSchema,
    validate: validateSchema.optional(),
    transform: transformSchema.optional(),
    sink: sinkSchema,
    rejects: rejectPolicySchema.default({}),
    /** When this pipeline's file is due and what it should look like; the built-in alerts watch it. */
    expect: expectSchema.optional(),
  })
  .strict()
  .refine((p) => FILE_SOURCES.includes(p.source.kind) === TABLE_SINKS.includes(p.sink.kind), {
    message:
      'an import reads files (source file) into a table (sink postgres); an export reads a query (source postgres) into a file (sink file)',
    path: ['sink', 'kind'],
  })
  .refine((p) => (FILE_SOURCES.includes(p.source.kind) ? READERS : WRITERS).includes(p.format.kind), {
    message:
      'this format cannot be used this way: an import needs a format that reads, an export one that writes',
    path: ['format', 'kind'],
  });

export type PipelineConfig = z.infer<typeof pipelineSchema>;

export interface PipelineDefinition {
  name: string;
  file: string;
  config: PipelineConfig;
}

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * Parsed pipeline files. One `erp run` reads its pipeline five times (resolve, preflight, plan,
 * definition hashes, the step), a worker once per run it takes; each parse is YAML plus the
 * schema, some milliseconds of a short run.
 */
const parsedPipelines = new FileCache<PipelineConfig>();

/** Loads `pipelines/<name>.yaml` under `home`. */
export async function loadPipeline(home: string, name: string): Promise<PipelineDefinition> {
  if (!NAME.test(name))
    throw new UserError(`'${name}' is not a pipeline name (lower-case letters, digits, - and _)`);
  const file = path.join(home, 'pipelines', `${name}.yaml`);
  const display = path.relative(home, file);
  const config = await parsedPipelines.get(file, () => loadYamlFile(file, pipelineSchema, display));
  if (config === undefined) {
    const names = await listPipelineNames(home);
    throw new UserError(`unknown pipeline '${name}'; pipelines are: ${names.join(', ') || '(none)'}`);
  }
  return { name, file: display, config };
}

/** Names of the pipelines under `home`, sorted. */
export async function listPipelineNames(home: string): Promise<string[]> {
  try {
    const files = await readdir(path.join(home, 'pipelines'));
    return files
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}
