import { createCsvFormat } from '../stages/format-csv.js';
import type { FormatConfig, SinkConfig, SourceConfig } from '../stages/registry.js';
import { createPostgresSink } from '../stages/sink-postgres.js';
import { createFileSource } from '../stages/source-file.js';
import { createTransform } from '../stages/transform.js';
import type { FormatReader, RowStep, Sink, Source, StageContext } from '../stages/types.js';
import { createValidate } from '../stages/validate.js';
import type { PipelineDefinition } from './definition.js';

/** The stages of an import pipeline, built from its definition. */
export interface ImportStages {
  source: Source;
  format: FormatReader;
  steps: RowStep[];
  sink: Sink;
}

export interface BuildOptions {
  /** Files named on the command line, replacing the source's own listing. */
  files?: string[];
}

function buildSource(config: SourceConfig, ctx: StageContext, opts: BuildOptions): Source {
  switch (config.kind) {
    case 'file':
      return createFileSource(config, ctx, opts.files);
  }
}

function buildFormat(config: FormatConfig): FormatReader {
  switch (config.kind) {
    case 'csv':
      return createCsvFormat(config);
  }
}

function buildSink(config: SinkConfig): Sink {
  switch (config.kind) {
    case 'postgres':
      return createPostgresSink(config);
  }
}

/** Builds every stage; mapping files and lookup tables are read here, once per run. */
export async function buildImport(
  def: PipelineDefinition,
  ctx: StageContext,
  opts: BuildOptions = {},
): Promise<ImportStages> {
  const steps: RowStep[] = [];
  if (def.config.validate) steps.push(createValidate(def.config.validate));
  if (def.config.transform) steps.push(await createTransform(def.config.transform, ctx));
  return {
    source: buildSource(def.config.source, ctx, opts),
    format: buildFormat(def.config.format),
    steps,
    sink: buildSink(def.config.sink),
  };
}
