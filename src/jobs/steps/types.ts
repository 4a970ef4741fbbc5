/**
 * What a job step kind is: its key in a job file, the part it plays in a run, the zod schema of
 * its entry (the single spec for validation, messages and `erp schema`'s JSON Schema), and its
 * factory, which turns an entry into the steps that execute it. Each kind is one file beside this
 * one; src/jobs/steps/registry.ts lists them explicitly (nothing registers itself by being imported).
 *
 *   jobs/x.yaml entry ──schema──► create ──► JobStep[] ──► planRun: plan()        (jobs/execute.ts)
 *                                                       ├─► preflight(checks)      (jobs/preflight.ts)
 *                                                       └─► run(ctx) ──► result ──► report.detail  (run record)
 *                                                                                ├─► report.progress
 *                                                                                └─► report.shown   (erp run)
 *   runner.run_steps row ──► report.shownFromRecord, report.detailLines                (commands/report.ts)
 *
 * The executor, the run record, the preflight and the report ask the kind; none of them names one.
 */
import type pg from 'pg';
import { z } from 'zod';
import type { AppContext } from '../../app.js';
import type { RunDetail } from '../../runs/store/runs.js';
import type { PipelineResult } from '../../pipeline/result.js';

/**
 * The part a step kind plays in a run:
 * - `load`: reads files into tables (a pipeline); its files and rows are the run's counters.
 * - `transaction`: its work is one transaction, and its success is committed in it (a SQL step):
 *   the executor hands it `commitWith`.
 * - `task`: does its work, then its success is recorded (EDI, compliance, an external command).
 * - `include`: stands for other steps (another job's), expanded when the run is planned; never runs.
 */
export type StepRole = 'load' | 'transaction' | 'task' | 'include';

/** `params:` of a step entry: values passed to the step, `{name}` taking a job parameter. */
export const stepParams = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional();

/**
 * A step kind. `Kind` is both the key that tells its entries in a job file (`sql: close.sql`) and
 * the kind plans, progress and run records name (runner.run_steps.kind).
 */
export interface StepKind<Kind extends string, Schema extends z.ZodType, Result> {
  kind: Kind;
  role: StepRole;
  schema: Schema;
  /** One line for the README's step table. */
  summary: string;
  /**
   * The steps an entry stands for: one, or for a `job` entry the called job's. A step made here
   * takes this kind's `kind` and `role` when it leaves them out (src/jobs/execute.ts); the called
   * job's steps keep their own.
   */
  create(entry: z.output<Schema>, input: StepInput): Promise<StepWork<Result>[]>;
  /** Tells `defs` the definition files the entry uses (the audit record's hashes). */
  uses(entry: z.output<Schema>, defs: DefinitionVisitor): Promise<void>;
  report: StepReport<Result>;
}

/** Any step kind, as the registry's list holds them. */
export type AnyStepKind = StepKind<string, z.ZodType, unknown>;

/** What a step kind's factory gets besides the entry. */
export interface StepInput {
  home: string;
  /** The step's parameters: the job's, or the entry's own `params` with `{name}` filled from the job's. */
  params: Record<string, string>;
  /** `text` with `{name}` replaced by the job's parameter `name` (an unknown name is refused). */
  fill(text: string, where: string): string;
  /** The steps of job `name` run with `params`; refuses a job that calls itself. */
  expand(name: string, params: Record<string, string>): Promise<JobStep[]>;
}

/** One step of a run, nested jobs expanded, as its kind's factory made it. */
export interface JobStep<Result = unknown> {
  kind: string;
  role: StepRole;
  /** The pipeline, the SQL file under sql/, the EDI step's display name, the program and arguments. */
  name: string;
  params: Record<string, string>;
  /** Checks that what the step needs is there (its definition loads, its file exists), before anything is queued. */
  plan(input: { jobFile: string }): Promise<void>;
  /** The preflight's checks of the step: problems go to `checks`; a UserError thrown is one too. */
  preflight(checks: PreflightChecks): Promise<void>;
  /** Executes the step; throws when it fails (the error says why in one line). */
  run(ctx: StepRunContext<Result>): Promise<Result>;
}

/** A step as its kind's factory makes it: without a kind and role, those of the kind that made it. */
export type StepWork<Result = unknown> = Omit<JobStep<Result>, 'kind' | 'role'> &
  Partial<Pick<JobStep<Result>, 'kind' | 'role'>>;

/** What a step gets to run. */
export interface StepRunContext<Result> {
  /** Its logger carries the run, the job and the step. */
  app: AppContext;
  runId: number | null;
  dryRun: boolean;
  force: boolean | undefined;
  /** `--file`: files replacing a pipeline source's listing. */
  files: string[] | undefined;
  /** Aborted when the run is cancelled, times out, or its worker hands it back. */
  signal: AbortSignal;
  onRows(rows: number, at?: { file?: string; bytes?: number; bytesTotal?: number }): void;
  /** A failing step's result, kept in the run's outcome (a failed pipeline's files and rejects). */
  onFailed(result: Result, error: string): void;
  /**
   * Given to a `transaction` step of a recorded run (not a dry run): the statement that records
   * its success, run last in its transaction and sent with its COMMIT.
   */
  commitWith?: (result: Result, client: pg.PoolClient) => Promise<string>;
  /**
   * Told each pipeline's result (a pipeline step's, or a job's pipelines'): a worker counts it in
   * the metrics it serves. A CLI process serves none, and never loads prom-client for a run.
   */
  onPipeline?: (result: PipelineResult) => void;
}

/** The checks the preflight offers a step (src/jobs/preflight.ts). */
export interface PreflightChecks {
  home: string;
  /** The file of the job the run was asked for, which problems of its steps name. */
  jobFile: string;
  /** Check the state the run meets too (files present, variables set), not only definitions. */
  state: boolean;
  env: NodeJS.ProcessEnv;
  /** `--file`: files replacing the pipelines' sources. */
  files: string[] | undefined;
  problem(where: string, message: string): void;
  /** A pipeline's definition, mapping, catalogue, query and export target, run with `params`. */
  pipeline(name: string, params: Record<string, string>, files: string[] | undefined): Promise<void>;
  /** A partner's profile and, with `state`, its endpoint's variables. */
  partner(name: string): Promise<void>;
}

/** Where the audit record's definition hashes come from (src/audit/definitions.ts). */
export interface DefinitionVisitor {
  home: string;
  pipeline(name: string): Promise<void>;
  partner(name: string): Promise<void>;
  job(name: string): Promise<void>;
  /** A plain file: a SQL file, retention.yaml. `file` is relative to the home. */
  file(kind: 'sql' | 'retention', name: string, file: string): Promise<void>;
}

/** A step's record as `erp run` reads it back: its row and the run's files and rejects. */
export interface StepRecord {
  name: string;
  status: string;
  detail: Record<string, unknown>;
  files: RunDetail['files'];
  rejects: RunDetail['rejects'];
}

/** What `erp run` prints of a step, and the run error those lines already tell (not said twice). */
export interface StepShown {
  lines: string[];
  tells?: string | null;
}

/** What the run record, the progress and the report make of a kind's result. */
export interface StepReport<Result> {
  /** What the step's record keeps of its result (runner.run_steps.detail). */
  detail(result: Result): Record<string, unknown>;
  /** The rows and the message progress shows once the step succeeded. */
  progress(result: Result): { rows?: number; message?: string };
  /** What `erp run` prints of the step from its result (a dry run records nothing). */
  shown(step: { name: string; status: string }, result: Result, dryRun: boolean): StepShown;
  /** The same from its record, whether it ran in this process or in a worker. */
  shownFromRecord(record: StepRecord): StepShown;
  /** What `erp runs show` prints under the step's line, from its record's detail. */
  detailLines(detail: Record<string, unknown>): string[];
}

/** The report of a kind that never runs itself (a `job` entry) or keeps nothing. */
export const NOTHING_TO_REPORT: StepReport<unknown> = {
  detail: () => ({}),
  progress: () => ({}),
  shown: () => ({ lines: [] }),
  shownFromRecord: () => ({ lines: [] }),
  detailLines: () => [],
};
