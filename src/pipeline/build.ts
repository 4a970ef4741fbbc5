import {
  createRedactor,
  loadRedactKey,
  redactStages,
  sensitiveFieldsOf,
  type Redactor,
} from '../compliance/sensitive.js';
import { UserError } from '../errors.js';
import { createClean } from '../stages/clean.js';
import { createCsvFormat } from '../stages/format-csv.js';
import { createNachaFormat } from '../stages/format-nacha.js';
import { createXlsxFormat } from '../stages/format-xlsx.js';
import { FILE_SOURCES, type FormatConfig } from '../stages/registry.js';
import { createFileSink } from '../stages/sink-file.js';
import { createPostgresSink } from '../stages/sink-postgres.js';
import { createSftpSink } from '../stages/sink-sftp.js';
import { createFileSource } from '../stages/source-file.js';
import { createSftpSource } from '../stages/source-sftp.js';
import { createPostgresSource } from '../stages/source-postgres.js';
import { createTransform } from '../stages/transform.js';
import type { FormatReader, FormatWriter, RowStep, Sink, Source, StageContext } from '../stages/types.js';
import { createValidate } from '../stages/validate.js';
import type { PipelineDefinition } from './definition.js';
import type { ExportStages } from './export.js';

/** The stages of an import pipeline, built from its definition. */
export interface ImportStages {
  source: Source;
  format: FormatReader;
  steps: RowStep[];
  sink: Sink;
  /** The pipeline's sensitive fields: a database error naming one of their values is redacted too. */
  redactor?: Redactor;
}

export interface BuildOptions {
  /** Files named on the command line, replacing the source's own listing. */
  files?: string[];
}

function buildFormat(config: FormatConfig): FormatReader & FormatWriter {
  switch (config.kind) {
    case 'csv':
      return createCsvFormat(config);
    case 'xlsx':
      return createXlsxFormat(config);
    case 'nacha':
      return createNachaFormat(config);
  }
}

/** Is this pipeline an export (rows of a query into a file)? */
export function isExport(def: PipelineDefinition): boolean {
  return !FILE_SOURCES.includes(def.config.source.kind);
}

/** Builds the stages of an export; `params` feed the query and the output name. */
export function buildExport(
  def: PipelineDefinition,
  ctx: StageContext,
  params: Record<string, unknown>,
  runId: number | null,
): ExportStages {
  const { source, sink } = def.config;
  if (source.kind !== 'postgres' || sink.kind === 'postgres') {
    throw new UserError(`${def.file}: not an export pipeline`);
  }
  const format = buildFormat(def.config.format);
  const fileSink = sink.kind === 'file' ? createFileSink(sink, ctx) : createSftpSink(sink, ctx);
  return {
    source: createPostgresSource(source, ctx, params),
    format,
    sink: fileSink,
    outputName: fileSink.outputName({
      period: params.period as string | undefined,
      as_of: params.as_of as string | undefined,
      run_id: runId ?? 'dry-run',
      ext: format.extension,
    }),
  };
}

/** Builds every stage of an import; mapping files and lookup tables are read here, once per run. */
export async function buildImport(
  def: PipelineDefinition,
  ctx: StageContext,
  opts: BuildOptions = {},
): Promise<ImportStages> {
  const steps: RowStep[] = [];
  const format = def.config.format;
  const clean = format.kind === 'nacha' ? null : createClean(format);
  if (clean) steps.push(clean);
  if (def.config.validate) steps.push(createValidate(def.config.validate));
  if (def.config.transform) steps.push(await createTransform(def.config.transform, ctx));
  const { source, sink } = def.config;
  if (source.kind === 'postgres' || sink.kind !== 'postgres') {
    throw new UserError(`${def.file}: not an import pipeline`);
  }
  const stages: ImportStages = {
    // `--file` replaces any source's listing with local files.
    source:
      source.kind === 'sftp' && !opts.files
        ? createSftpSource(source, ctx)
        : createFileSource(source.kind === 'file' ? source : { kind: 'file', path: '' }, ctx, opts.files),
    format: buildFormat(def.config.format),
    steps,
    sink: createPostgresSink(sink),
  };
  const sensitive = await sensitiveFieldsOf(ctx.home, def);
  if (sensitive.size === 0) return stages;
  const redactor = createRedactor(sensitive, loadRedactKey());
  return { ...redactStages(stages, redactor), redactor };
}
