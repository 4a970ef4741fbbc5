/**
 * Preflight: the whole job checked before a run is recorded (`erp run`), before a worker starts
 * its steps, before the scheduler submits a tick, and by `erp list` and `erp validate`.
 *
 *   job ──► steps flattened ──► per step: definition, mapping file, date formats, patterns,
 *                                          identifiers, catalogue (table, columns, upsert index),
 *                                          :params of SQL files and queries, partner variables,
 *                                          export target (directory writable, file not there)
 *       ──► every problem found, each naming file, line and key
 *
 * It checks what the run would check, earlier and all at once: the run's own checks stay, since
 * a file can still appear, or a table go, between the preflight and the step.
 */
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { loadYamlFile, yamlLineOf } from '../config/yaml.js';
import { quoteIdent, splitQualified } from '../db/pool.js';
import { describeError, UserError } from '../errors.js';
import { loadAnyPartner, resolveEndpoint } from '../partners/profile.js';
import { loadPipeline, type PipelineDefinition } from '../pipeline/definition.js';
import { unboundParams } from '../db/sql-params.js';
import { renderOutputName } from '../stages/sink-file.js';
import { resolveParams as resolveQueryParams } from '../stages/source-postgres.js';
import { mappingFileSchema, type MappingFile } from '../stages/transform.js';
import { createValidate } from '../stages/validate.js';
import { flattenSteps } from './execute.js';
import type { PreflightChecks } from './steps/types.js';
import { type FlatStep } from './types.js';
import type { Runnable } from './definition.js';

/** One problem: where (file, line, key) and what is wrong. */
export interface Problem {
  /** `pipelines/items.yaml, line 14, sink.table`, or empty when the message says where itself. */
  where: string;
  message: string;
}

/** A failed preflight: a usage/configuration error (exit 2) listing every problem. */
export class PreflightError extends UserError {
  override name = 'PreflightError';
  constructor(
    name: string,
    readonly problems: Problem[],
  ) {
    super(
      `${name}: ${problems.length} problem${problems.length > 1 ? 's' : ''} found before running; nothing was recorded\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
      2,
    );
  }
}

export function formatProblem(p: Problem): string {
  return p.where ? `${p.where}: ${p.message}` : p.message.replace(/\n/g, '\n    ');
}

export interface PreflightOptions {
  /** Positions (1-based) of steps not checked: those a resumed run finished before. */
  skip?: readonly number[];
  /**
   * Check the state the run meets too — export targets not already there and their directories
   * writable, `--file` inputs present, partner variables set. Off for `erp list`, which checks
   * definitions only. @defaultValue true
   */
  state?: boolean;
  /** Files given with `--file`, replacing the pipelines' sources. */
  files?: string[];
  env?: NodeJS.ProcessEnv;
}

interface Ctx {
  home: string;
  pool: pg.Pool;
  state: boolean;
  env: NodeJS.ProcessEnv;
  problems: Problem[];
  /** Table columns and unique keys, read once per preflight. */
  tables: Map<string, Promise<TableInfo | null>>;
}

/** Checks every step of `runnable` run with `params`; returns every problem found (none: go). */
export async function preflight(
  app: { home: string; pool: pg.Pool },
  runnable: Runnable,
  params: Record<string, string>,
  opts: PreflightOptions = {},
): Promise<Problem[]> {
  const ctx: Ctx = {
    home: app.home,
    pool: app.pool,
    state: opts.state ?? true,
    env: opts.env ?? process.env,
    problems: [],
    tables: new Map(),
  };
  // What a step kind checks with (src/jobs/steps/): each step asks for the checks it needs.
  const checks: PreflightChecks = {
    home: ctx.home,
    jobFile: runnable.job.file,
    state: ctx.state,
    env: ctx.env,
    files: opts.files,
    problem: (where, message) => ctx.problems.push({ where, message }),
    pipeline: (name, params, files) => checkPipeline(ctx, name, params, files),
    partner: (name) => checkPartner(ctx, name),
  };
  let steps: FlatStep[];
  try {
    steps = await flattenSteps(app.home, runnable.job, params);
  } catch (err) {
    return [{ where: '', message: describeError(err) }];
  }
  const skip = new Set(opts.skip ?? []);
  for (const [i, step] of steps.entries()) {
    if (skip.has(i + 1)) continue;
    try {
      await step.preflight(checks);
    } catch (err) {
      // A check that could not run (the database unreachable) is not a definition problem.
      if (!(err instanceof UserError)) throw err;
      ctx.problems.push({ where: '', message: err.message });
    }
  }
  // One problem is reported once, however many steps share the definition.
  const seen = new Set<string>();
  return ctx.problems.filter((p) => {
    const key = formatProblem(p);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Runs {@link preflight} and throws a {@link PreflightError} listing every problem. */
export async function assertPreflight(
  app: { home: string; pool: pg.Pool },
  runnable: Runnable,
  params: Record<string, string>,
  opts: PreflightOptions = {},
): Promise<void> {
  const problems = await preflight(app, runnable, params, opts);
  if (problems.length > 0) throw new PreflightError(runnable.name, problems);
}

async function problemAt(
  ctx: Ctx,
  file: string,
  keyPath: (string | number)[],
  message: string,
): Promise<void> {
  const keys = keyPath.map(String);
  const line = await yamlLineOf(path.join(ctx.home, file), keys);
  ctx.problems.push({
    where: `${file}${line !== undefined ? `, line ${line}` : ''}, ${keys.join('.')}`,
    message,
  });
}

async function identifier(
  ctx: Ctx,
  file: string,
  keyPath: (string | number)[],
  name: string,
): Promise<boolean> {
  try {
    quoteIdent(name);
    return true;
  } catch (err) {
    await problemAt(ctx, file, keyPath, (err as Error).message);
    return false;
  }
}

async function qualified(
  ctx: Ctx,
  file: string,
  keyPath: (string | number)[],
  name: string,
): Promise<boolean> {
  try {
    const { schema, table } = splitQualified(name);
    quoteIdent(schema);
    quoteIdent(table);
    return true;
  } catch (err) {
    await problemAt(ctx, file, keyPath, (err as Error).message);
    return false;
  }
}

async function checkPipeline(
  ctx: Ctx,
  name: string,
  params: Record<string, string>,
  files: string[] | undefined,
): Promise<void> {
  const def = await loadPipeline(ctx.home, name);
  const { source, sink } = def.config;
  const f = def.file;
  if (def.config.validate) {
    for (const [name, spec] of Object.entries(def.config.validate.fields)) {
      try {
        createValidate({ fields: { [name]: spec } });
      } catch (err) {
        const key = spec.type === 'date' ? 'format' : spec.type === 'string' ? 'pattern' : 'type';
        const message = (err as Error).message.replace(/^validate\.fields\.[^:]*: /, '');
        await problemAt(ctx, f, ['validate', 'fields', name, key], message);
      }
    }
  }
  const mapping = def.config.transform ? await checkMapping(ctx, def.config.transform.mapping) : undefined;
  if (sink.kind === 'postgres') {
    const targets =
      mapping === undefined ? undefined : mapping === null ? null : Object.keys(mapping.columns);
    await checkTableSink(ctx, def, targets);
  }
  if (source.kind === 'sftp' && !files) await checkPartner(ctx, source.partner);
  if (source.kind === 'postgres') await checkQuery(ctx, def, params);
  if (sink.kind === 'sftp') await checkPartner(ctx, sink.partner);
  if (sink.kind === 'file' && ctx.state) await checkTarget(ctx, def, params);
  if (ctx.state && files && source.kind !== 'postgres') {
    for (const file of files) {
      const s = await stat(path.resolve(ctx.home, file)).catch(() => null);
      if (!s?.isFile()) ctx.problems.push({ where: `--file ${file}`, message: 'no such file' });
    }
  }
}

/** The mapping file checked: parsed, its target columns and lookups valid identifiers, lookups in the catalogue. Null when it did not parse. */
async function checkMapping(ctx: Ctx, name: string): Promise<MappingFile | null> {
  const file = path.join('mappings', `${name}.yaml`);
  let mapping: MappingFile;
  try {
    mapping = await loadYamlFile(path.join(ctx.home, file), mappingFileSchema, file);
  } catch (err) {
    ctx.problems.push({ where: '', message: (err as Error).message });
    return null;
  }
  for (const [target, col] of Object.entries(mapping.columns)) {
    await identifier(ctx, file, ['columns', target], target);
    if (!col.lookup) continue;
    const { table, key, value } = col.lookup;
    const at = ['columns', target, 'lookup'];
    const ok =
      (await qualified(ctx, file, [...at, 'table'], table)) &&
      (await identifier(ctx, file, [...at, 'key'], key)) &&
      (await identifier(ctx, file, [...at, 'value'], value));
    if (!ok) continue;
    const info = await tableInfo(ctx, table);
    if (!info) {
      await problemAt(ctx, file, [...at, 'table'], noTable(table));
      continue;
    }
    for (const [k, c] of [
      ['key', key],
      ['value', value],
    ] as const) {
      if (!info.columns.includes(c))
        await problemAt(
          ctx,
          file,
          [...at, k],
          `table ${table} has no column ${c}; its columns are: ${info.columns.join(', ')}`,
        );
    }
  }
  return mapping;
}

function noTable(table: string): string {
  return `table ${table} does not exist in this database (run erp migrate, or check that DATABASE_URL names the right database)`;
}

/** The sink's table, the columns loaded into it (the mapping's targets) and the unique index an upsert needs. */
async function checkTableSink(
  ctx: Ctx,
  def: PipelineDefinition,
  /** The mapping's target columns; undefined without a mapping, null when the mapping did not parse. */
  targets: string[] | null | undefined,
): Promise<void> {
  const sink = def.config.sink;
  if (sink.kind !== 'postgres') return;
  const f = def.file;
  if (!(await qualified(ctx, f, ['sink', 'table'], sink.table))) return;
  const key = sink.key ?? [];
  const keysOk = (await Promise.all(key.map((k, i) => identifier(ctx, f, ['sink', 'key', i], k)))).every(
    Boolean,
  );
  const info = await tableInfo(ctx, sink.table);
  if (!info) return problemAt(ctx, f, ['sink', 'table'], noTable(sink.table));
  const theirs = `its columns are: ${info.columns.join(', ')}`;
  if (targets) {
    const mappingFile = path.join('mappings', `${def.config.transform!.mapping}.yaml`);
    for (const t of targets)
      if (!info.columns.includes(t))
        await problemAt(
          ctx,
          mappingFile,
          ['columns', t],
          `table ${sink.table} has no column ${t}; ${theirs}`,
        );
  } else if (targets === undefined && def.config.validate) {
    // Without a mapping every field of the file is loaded: a declared field must be a column.
    for (const field of Object.keys(def.config.validate.fields))
      if (!info.columns.includes(field))
        await problemAt(
          ctx,
          f,
          ['validate', 'fields', field],
          `table ${sink.table} has no column ${field}; ${theirs}`,
        );
  }
  if (sink.mode !== 'upsert' || !keysOk) return;
  const missing = key.filter((k) => !info.columns.includes(k));
  if (missing.length > 0)
    return problemAt(
      ctx,
      f,
      ['sink', 'key'],
      `table ${sink.table} has no column ${missing.join(', ')}; ${theirs}`,
    );
  if (targets) {
    const notLoaded = key.filter((k) => !targets.includes(k));
    if (notLoaded.length > 0)
      await problemAt(
        ctx,
        f,
        ['sink', 'key'],
        `upsert key ${notLoaded.join(', ')} is not among the mapped columns (${targets.join(', ')})`,
      );
  }
  const wanted = [...key].sort().join(',');
  if (!info.uniqueKeys.some((u) => [...u].sort().join(',') === wanted)) {
    const have = info.uniqueKeys.map((u) => `(${u.join(', ')})`).join(', ') || 'none';
    await problemAt(
      ctx,
      f,
      ['sink', 'key'],
      `an upsert on (${key.join(', ')}) needs a unique index or primary key of ${sink.table} on exactly those columns, and there is none (unique keys: ${have}); add one in a migration, or change sink.key`,
    );
  }
}

interface TableInfo {
  columns: string[];
  /** Column sets of its unique, non-partial, plain-column indexes (the primary key among them). */
  uniqueKeys: string[][];
}

function tableInfo(ctx: Ctx, table: string): Promise<TableInfo | null> {
  let info = ctx.tables.get(table);
  if (!info) {
    const { schema, table: name } = splitQualified(table);
    const reg = `${quoteIdent(schema)}.${quoteIdent(name)}`;
    info = ctx.pool
      .query<{ columns: string[] | null; unique_keys: string[][] | null }>(
        `SELECT (SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
                  WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped) AS columns,
                (SELECT json_agg(k.cols) FROM (
                   SELECT array_agg(a.attname::text ORDER BY a.attnum) AS cols
                     FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                    WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                    GROUP BY i.indexrelid) k) AS unique_keys`,
        [reg],
      )
      .then(({ rows }) =>
        rows[0]?.columns ? { columns: rows[0].columns, uniqueKeys: rows[0].unique_keys ?? [] } : null,
      );
    ctx.tables.set(table, info);
  }
  return info;
}

/** An export's query: its parameters resolve from the step's, and every `:'name'` it uses is declared. */
async function checkQuery(ctx: Ctx, def: PipelineDefinition, params: Record<string, string>): Promise<void> {
  const source = def.config.source;
  if (source.kind !== 'postgres') return;
  try {
    resolveQueryParams(source.params, params);
  } catch (err) {
    await problemAt(ctx, def.file, ['source', 'params'], (err as Error).message);
  }
  let text = source.sql;
  if (source.query !== undefined) {
    const file = path.resolve(ctx.home, source.query);
    const rel = path.relative(path.resolve(ctx.home, 'sql'), file);
    if (rel.startsWith('..') || path.isAbsolute(rel))
      return problemAt(ctx, def.file, ['source', 'query'], `'${source.query}' must be a file under sql/`);
    text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined)
      return problemAt(ctx, def.file, ['source', 'query'], `${source.query}: no such file`);
  }
  const declared = Object.fromEntries(Object.keys(source.params).map((k) => [k, 'x']));
  for (const name of unboundParams(text!, declared))
    await problemAt(
      ctx,
      def.file,
      ['source', source.query !== undefined ? 'query' : 'sql'],
      `the query uses :'${name}', which source.params does not declare (declared: ${Object.keys(source.params).join(', ') || 'none'})`,
    );
}

/** A partner the step uses: declared, and (when checking state) every environment variable it reads set. */
async function checkPartner(ctx: Ctx, name: string): Promise<void> {
  const partner = await loadAnyPartner(ctx.home, name);
  if (!ctx.state) return;
  try {
    resolveEndpoint(partner, ctx.env);
  } catch (err) {
    ctx.problems.push({ where: '', message: (err as Error).message });
  }
}

/** An export's file: the name renders, the directory exists and is writable, the file is not there unless overwrite. */
async function checkTarget(ctx: Ctx, def: PipelineDefinition, params: Record<string, string>): Promise<void> {
  const sink = def.config.sink;
  if (sink.kind !== 'file') return;
  // The format's file extension (a NACHA file is .ach).
  const ext = def.config.format.kind === 'nacha' ? 'ach' : def.config.format.kind;
  let name: string;
  try {
    // {run_id} is not known before the run: any value shows whether the rest renders.
    name = renderOutputName(sink.name, { period: params.period, as_of: params.as_of, run_id: 0, ext });
  } catch (err) {
    return problemAt(ctx, def.file, ['sink', 'name'], (err as Error).message);
  }
  const dir = path.resolve(ctx.home, sink.dir);
  const shown = path.join(sink.dir, name);
  const d = await stat(dir).catch(() => null);
  if (!d?.isDirectory())
    return problemAt(
      ctx,
      def.file,
      ['sink', 'dir'],
      `output directory ${sink.dir} does not exist; create it (mkdir -p ${sink.dir})`,
    );
  if (
    !(await access(dir, constants.W_OK).then(
      () => true,
      () => false,
    ))
  )
    return problemAt(
      ctx,
      def.file,
      ['sink', 'dir'],
      `output directory ${sink.dir} is not writable by this user`,
    );
  if (sink.overwrite || sink.name.includes('{run_id}')) return;
  if (
    await stat(path.join(dir, name)).then(
      () => true,
      () => false,
    )
  )
    await problemAt(
      ctx,
      def.file,
      ['sink', 'name'],
      `${shown} already exists and overwrite is off; move it aside or delete it if it is stale (docs/resume.md), or set sink.overwrite: true`,
    );
}
