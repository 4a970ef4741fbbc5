/**
 * The `job` job step: `{ job: NAME, params?: {...} }` runs another job's steps as part of this
 * run. It never runs itself (role `include`): planning the run puts the called job's steps in its
 * place, so progress, the run record and a retry see only steps that do work.
 */
import { z } from 'zod';
import { NOTHING_TO_REPORT, stepParams, type StepKind } from './types.js';

const schema = z
  .object({
    /** Run another job's steps as part of this run. */
    job: z.string(),
    params: stepParams,
  })
  .strict();

export const jobStep: StepKind<'job', typeof schema, unknown> = {
  kind: 'job',
  role: 'include',
  schema,
  summary: "runs another job's steps in this run (`params` passes parameters on)",
  create: (entry, { params, expand }) => expand(entry.job, params),
  async uses(entry, defs) {
    await defs.job(entry.job);
  },
  report: NOTHING_TO_REPORT,
};
