/**
 * The one explicit list of job step kinds. Adding a kind is one new file under src/jobs/steps/
 * exporting its StepKind, plus one line here; nothing registers itself by being imported. The job
 * schema (and so `erp schema`'s job.schema.json), the executor, the run record, the preflight, the
 * audit record and the report follow from it; test/job-steps.test.ts checks that none of them names
 * a kind, and the README's step table against this list.
 */
import { z } from 'zod';
import { commandStep } from './command.js';
import { complianceStep } from './compliance.js';
import { ediStep } from './edi.js';
import { jobStep } from './job.js';
import { pipelineStep } from './pipeline.js';
import { sqlStep } from './sql.js';
import type { AnyStepKind, StepKind } from './types.js';

/** In the order a step entry is tried against them (which words the schema's errors). */
export const STEP_KINDS = [pipelineStep, sqlStep, jobStep, ediStep, complianceStep, commandStep] as const;

type Schemas<T extends readonly { schema: z.ZodType }[]> = { -readonly [K in keyof T]: T[K]['schema'] };

/** One entry of a job's `steps:`, told apart by its key (`pipeline:`, `sql:`, `job:`, …). */
export const stepSchema = z.union(STEP_KINDS.map((k) => k.schema) as Schemas<typeof STEP_KINDS>);
export type StepSpec = z.infer<typeof stepSchema>;

type ResultOf<K> = K extends StepKind<string, z.ZodType, infer R> ? R : never;

/** Each kind's result, under its kind's key (`sql`, `edi`, …), in a step's outcome. */
export type StepResults = {
  [K in (typeof STEP_KINDS)[number] as K['kind']]?: ResultOf<K>;
};

const KINDS: readonly AnyStepKind[] = STEP_KINDS;

/** The kind of a parsed step entry: the one whose key it has (the schema admitted it). */
export function stepKindOfEntry(entry: StepSpec): AnyStepKind {
  const found = KINDS.find((k) => k.kind in entry);
  if (!found) throw new Error(`a job step of no known kind: ${Object.keys(entry).join(', ')}`);
  return found;
}

/** The kind named `kind` (a run record's), or undefined for one this version does not know. */
export function stepKindOf(kind: string): AnyStepKind | undefined {
  return KINDS.find((k) => k.kind === kind);
}

/**
 * A step outcome's result, which it keeps under its kind's key (`{ kind: 'sql', sql: … }`), with
 * the report of that kind; undefined for a step without a result or of a kind this version does
 * not know.
 */
export function reportOf(o: {
  kind: string;
}): { report: AnyStepKind['report']; result: unknown } | undefined {
  const result = (o as Record<string, unknown>)[o.kind];
  const kind = stepKindOf(o.kind);
  return result === undefined || kind === undefined ? undefined : { report: kind.report, result };
}
