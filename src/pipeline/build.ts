import {
  createRedactor,
  loadRedactKey,
  redactStages,
  sensitiveFieldsOf,
  type Redactor,
} from '../compliance/sensitive.js';
import { UserError } from '../errors.js';
import { createClean } from '../stages/clean.js';
import { FILE_SOURCES, FORMATS, kindOf, SINKS, SOURCES, type FormatConfig } from '../stages/registry.js';
import { createFileSource } from '../stages/source-file.js';
import { createTransform } from '../stages/transform.js';
import type { LocalFileSink } from '../stages/sink-file.js';
import type {
  FormatReader,
  FormatWriter,
  RecordSource,
  RowStep,
  Sink,
  Source,
  StageContext,
  StageInput,
} from '../stages/types.js';
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

/** A pipeline's format, reading or writing as `need` says; a kind that cannot is refused. */
function buildFormat(config: FormatConfig, input: StageInput, need: 'read'): FormatReader;
function buildFormat(config: FormatConfig, input: StageInput, need: 'write'): FormatWriter;
function buildFormat(
  config: FormatConfig,
  input: StageInput,
  need: 'read' | 'write',
): FormatReader | FormatWriter {
  const kind = kindOf(FORMATS, config.kind);
  if (kind.role === (need === 'read' ? 'writer' : 'reader'))
    throw new UserError(`format ${config.kind} cannot ${need} files (it is a ${kind.role} only)`);
  return kind.create(config as never, input) as FormatReader & FormatWriter;
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
  const sourceKind = kindOf(SOURCES, source.kind);
  const sinkKind = kindOf(SINKS, sink.kind);
  if (sourceKind.role !== 'row source' || sinkKind.role !== 'file sink') {
    throw new UserError(`${def.file}: not an export pipeline`);
  }
  const input: StageInput = { ctx, params };
  const format = buildFormat(def.config.format, input, 'write');
  const fileSink = sinkKind.create(sink as never, input) as LocalFileSink;
  return {
    source: sourceKind.create(source as never, input) as RecordSource,
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
  // CSV and XLSX clean what they read (trim, null_if); fixed-width trims in its reader, NACHA needs none.
  const clean = format.kind === 'csv' || format.kind === 'xlsx' ? createClean(format) : null;
  if (clean) steps.push(clean);
  if (def.config.validate) steps.push(createValidate(def.config.validate));
  if (def.config.transform) steps.push(await createTransform(def.config.transform, ctx));
  const { source, sink } = def.config;
  const sourceKind = kindOf(SOURCES, source.kind);
  const sinkKind = kindOf(SINKS, sink.kind);
  if (sourceKind.role !== 'file source' || sinkKind.role !== 'table sink') {
    throw new UserError(`${def.file}: not an import pipeline`);
  }
  const input: StageInput = { ctx, params: {} };
  const stages: ImportStages = {
    // `--file` replaces any source's listing with local files.
    source: opts.files
      ? createFileSource(source.kind === 'file' ? source : { kind: 'file', path: '' }, ctx, opts.files)
      : (sourceKind.create(source as never, input) as Source),
    format: buildFormat(def.config.format, input, 'read'),
    steps,
    sink: sinkKind.create(sink as never, input) as Sink,
  };
  const sensitive = await sensitiveFieldsOf(ctx.home, def);
  if (sensitive.size === 0) return stages;
  const redactor = createRedactor(sensitive, loadRedactKey());
  return { ...redactStages(stages, redactor), redactor };
}
