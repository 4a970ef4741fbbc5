/**
 * A named ERP job, `jobs/<name>.yaml`: typed parameters, ordered steps (pipelines, SQL files,
 * other jobs), a lock scope, retries, a timeout and schedules.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml.js';
import { FileCache } from '../config/file-cache.js';
import { UserError } from '../errors.js';
import { durationSchema } from '../config/duration.js';
import { listPipelineNames, loadPipeline } from '../pipeline/definition.js';
import { stepSchema, type StepSpec } from './steps/registry.js';

export const paramSchema = z
  .object({
    /** `period` is YYYY-MM; `date` is YYYY-MM-DD. */
    type: z.enum(['period', 'date', 'string', 'int', 'bool', 'enum']),
    description: z.string().optional(),
    /** A literal, or one of previous_month, current_month (periods), today, yesterday (dates). */
    default: z.union([z.string(), z.number(), z.boolean()]).optional(),
    /** Allowed values of an enum parameter. */
    values: z.array(z.string()).min(1).optional(),
    /** A parameter without a default must be given. */
    required: z.boolean().default(true),
  })
  .strict()
  .refine((p) => p.type !== 'enum' || p.values !== undefined, {
    message: 'an enum parameter needs `values`',
    path: ['values'],
  });
export type ParamSpec = z.infer<typeof paramSchema>;

export const scheduleSchema = z
  .object({
    /** Cron pattern: minute hour day-of-month month day-of-week (a leading seconds field is allowed). */
    cron: z.string(),
    /** IANA time zone the pattern is read in. */
    timezone: z.string().default('UTC'),
    /** Parameters each tick passes; dynamic defaults (previous_month, today…) are computed at the tick. */
    params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    /** After the scheduler was down, ticks missed within this window run once each, in order. */
    catch_up: durationSchema.optional(),
    /**
     * Each tick's run must have succeeded within this long: the built-in alerts fire when it is
     * missing, failed, or still running at the deadline.
     */
    deadline: durationSchema.optional(),
  })
  .strict();
export type ScheduleSpec = z.infer<typeof scheduleSchema>;

export const jobSchema = z
  .object({
    description: z.string().optional(),
    params: z
      .record(z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a parameter name like period or as_of'), paramSchema)
      .default({}),
    /** What the job does, in order: each step is one of the kinds in src/jobs/steps/registry.ts. */
    steps: z.array(stepSchema).min(1),
    /**
     * Lock scope: the parameters that, with the job name, identify runs that may not overlap.
     * `[]` locks the job as a whole; omit `lock` for one lock per job and parameter set; `false` for none.
     */
    lock: z.union([z.array(z.string()), z.literal(false)]).optional(),
    retries: z
      .object({
        /** Attempts in all, the first included. */
        attempts: z.number().int().min(1).max(20).default(3),
        /** First retry delay; each next one doubles. */
        backoff: durationSchema.default(5000),
      })
      .strict()
      .default({ attempts: 3, backoff: 5000 }),
    /** The run is cancelled when it takes longer. */
    timeout: durationSchema.optional(),
    schedules: z.array(scheduleSchema).default([]),
    /** Segregation of duties: runs wait for `erp approve` by a second person (src/approvals/). */
    approval: z
      .object({
        /** Runs wait, with their dry run attached, until approved or rejected. */
        required: z.boolean(),
        /** The approver must not be the person who requested the run. @defaultValue true */
        distinct_from_requester: z.boolean().default(true),
        /** A run not approved within this long is cancelled. @defaultValue never */
        expires_after: durationSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type JobConfig = z.infer<typeof jobSchema>;

export interface JobDefinition {
  name: string;
  file: string;
  config: JobConfig;
}

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

export async function listJobNames(home: string): Promise<string[]> {
  try {
    return (await readdir(path.join(home, 'jobs')))
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/** Parsed job files: a worker resolves the job of every run it takes, and parsing is a good part of a small run's cost. */
const parsedJobs = new FileCache<JobDefinition>();

/** The job `name`, or undefined when jobs/ has no file of that name. */
function cachedJob(home: string, name: string): Promise<JobDefinition | undefined> {
  const file = path.join(home, 'jobs', `${name}.yaml`);
  return parsedJobs.get(file, () => parseJob(home, name, file));
}

export async function loadJob(home: string, name: string): Promise<JobDefinition> {
  if (!NAME.test(name))
    throw new UserError(`'${name}' is not a job name (lower-case letters, digits, - and _)`);
  // Without its file, parsing says so in the words every definition error uses.
  return (await cachedJob(home, name)) ?? parseJob(home, name, path.join(home, 'jobs', `${name}.yaml`));
}

async function parseJob(home: string, name: string, file: string): Promise<JobDefinition> {
  const display = path.relative(home, file);
  const config = await loadYamlFile(file, jobSchema, display);
  for (const key of config.lock === false ? [] : (config.lock ?? [])) {
    if (!(key in config.params)) {
      throw new UserError(
        `${display}: lock names '${key}', which is not a parameter; parameters are: ${Object.keys(config.params).join(', ') || '(none)'}`,
      );
    }
  }
  return { name, file: display, config };
}

/** What `erp run <name>` runs: a job, or a pipeline as a one-step job. */
export interface Runnable {
  kind: 'job' | 'pipeline';
  name: string;
  job: JobDefinition;
}

/** Resolves a name to a job, or to a pipeline wrapped as a one-step job; unknown names list what exists. */
export async function resolveRunnable(home: string, name: string): Promise<Runnable> {
  // A worker resolves a job for every run: a job file of that name settles it without listing.
  const job = NAME.test(name) ? await cachedJob(home, name) : undefined;
  if (job) return { kind: 'job', name, job };
  const [jobs, pipelines] = await Promise.all([listJobNames(home), listPipelineNames(home)]);
  if (jobs.includes(name)) return { kind: 'job', name, job: await loadJob(home, name) };
  if (pipelines.includes(name)) {
    // Load it now so a broken definition is refused before anything is queued.
    const def = await loadPipeline(home, name);
    // An export's query parameters become the one-step job's parameters.
    const source = def.config.source;
    const params: Record<string, unknown> = {};
    if (source.kind === 'postgres') {
      for (const [k, p] of Object.entries(source.params)) {
        const type = p.type === 'decimal' ? 'string' : p.type;
        params[k] = {
          type,
          description: p.description,
          default: p.default,
          required: p.default === undefined,
        };
      }
    }
    return {
      kind: 'pipeline',
      name,
      job: {
        name,
        file: def.file,
        config: jobSchema.parse({
          params,
          steps: [{ pipeline: name }],
          lock: Object.keys(params),
          retries: { attempts: 3 },
        }),
      },
    };
  }
  const none =
    jobs.length + pipelines.length === 0
      ? ` — no jobs/ or pipelines/ under ${path.resolve(home)}: run erp from the project directory, or set ERP_HOME to it`
      : '';
  throw new UserError(
    `unknown job or pipeline '${name}'; jobs: ${jobs.join(', ') || '(none)'}; pipelines: ${pipelines.join(', ') || '(none)'}${none}`,
  );
}

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function dynamicDefault(value: string, type: ParamSpec['type'], now: Date): string | null {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const iso = (d: Date): string => d.toISOString().slice(0, 10);
  switch (value) {
    case 'previous_month': {
      const d = new Date(Date.UTC(y, m - 1, 1));
      return type === 'period' ? iso(d).slice(0, 7) : iso(d);
    }
    case 'current_month':
      return type === 'period' ? iso(now).slice(0, 7) : iso(new Date(Date.UTC(y, m, 1)));
    case 'today':
      return iso(now);
    case 'yesterday':
      return iso(new Date(now.getTime() - 86_400_000));
    default:
      return null;
  }
}

/**
 * Checks the given parameters against the job's declarations and fills defaults. Unknown,
 * missing or malformed parameters are refused with the list of what is valid.
 */
export function resolveParams(
  job: JobDefinition,
  given: Record<string, string>,
  now = new Date(),
): Record<string, string> {
  const specs = job.config.params;
  const describe = (): string =>
    Object.entries(specs)
      .map(
        ([k, s]) =>
          `${k} (${s.type}${s.values ? `: ${s.values.join('|')}` : ''}${s.default !== undefined ? `, default ${s.default}` : ''})`,
      )
      .join(', ') || '(none)';
  for (const key of Object.keys(given)) {
    if (!(key in specs))
      throw new UserError(`${job.name} has no parameter '${key}'; its parameters are: ${describe()}`);
  }
  const out: Record<string, string> = {};
  for (const [key, spec] of Object.entries(specs)) {
    let value = given[key];
    if (value === undefined && spec.default !== undefined) {
      value =
        typeof spec.default === 'string'
          ? (dynamicDefault(spec.default, spec.type, now) ?? spec.default)
          : String(spec.default);
    }
    if (value === undefined) {
      if (spec.required)
        throw new UserError(
          `${job.name} needs parameter '${key}' (${spec.type}); its parameters are: ${describe()}`,
        );
      continue;
    }
    out[key] = checkParam(job.name, key, spec, value);
  }
  return out;
}

function checkParam(job: string, key: string, spec: ParamSpec, value: string): string {
  const bad = (expected: string): never => {
    throw new UserError(`${job}: parameter ${key} = '${value}' is not valid; expected ${expected}`);
  };
  switch (spec.type) {
    case 'period':
      if (!PERIOD.test(value)) bad('a period YYYY-MM, e.g. 2026-11');
      return value;
    case 'date': {
      const m = DATE.exec(value);
      const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : null;
      if (!d || d.toISOString().slice(0, 10) !== value) bad('a date YYYY-MM-DD');
      return value;
    }
    case 'int':
      if (!/^-?\d+$/.test(value)) bad('a whole number');
      return value;
    case 'bool':
      if (!['true', 'false'].includes(value)) bad('true or false');
      return value;
    case 'enum':
      if (!spec.values!.includes(value)) bad(`one of ${spec.values!.join(', ')}`);
      return value;
    case 'string':
      return value;
  }
}

/**
 * A run's parameters as runner.runs records them: `int` and `bool` parameters as JSON numbers and
 * booleans, the others as text, so `erp runs show` shows each as it was declared and given.
 */
export function typedParams(
  job: JobDefinition,
  params: Record<string, string>,
): Record<string, string | number | boolean> {
  return Object.fromEntries(
    Object.entries(params).map(([k, v]) => {
      const type = job.config.params[k]?.type;
      if (type === 'bool') return [k, v === 'true'];
      if (type === 'int' && Number.isSafeInteger(Number(v))) return [k, Number(v)];
      return [k, v];
    }),
  );
}

/** The parameters a run recorded ({@link typedParams}) as the text the steps bind. */
export function paramStrings(recorded: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(recorded).map(([k, v]) => [k, String(v)]));
}

/** The lock key of a run: job name plus the values of the lock's parameters; null when unlocked. */
export function lockKeyOf(job: JobDefinition, params: Record<string, string>): string | null {
  const lock = job.config.lock;
  if (lock === false) return null;
  const keys = lock ?? Object.keys(job.config.params).sort();
  return [job.name, ...keys.map((k) => `${k}=${params[k] ?? ''}`)].join(':');
}

/** Replaces `{name}` in step parameter values with the job's parameters. */
export function stepParamsOf(step: StepSpec, jobParams: Record<string, string>): Record<string, string> {
  const given = 'params' in step ? step.params : undefined;
  if (!given) return { ...jobParams };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(given))
    out[k] = fillParams(String(v), jobParams, `step parameter ${k}`);
  return out;
}

/** `text` with `{name}` replaced by the job's parameter `name`; `where` names the text in the refusal of an unknown one. */
export function fillParams(text: string, jobParams: Record<string, string>, where: string): string {
  return text.replace(/\{([a-z_][a-z0-9_]*)\}/g, (_whole, name: string) => {
    const value = jobParams[name];
    if (value === undefined)
      throw new UserError(`${where} uses {${name}}, which is not a parameter of the job`);
    return value;
  });
}
