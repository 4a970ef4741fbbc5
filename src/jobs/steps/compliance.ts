/**
 * The `compliance` job step: `{ compliance: purge }` applies retention.yaml (src/compliance/); what
 * it removed, or would remove in a dry run, goes to the audit trail and the step's record.
 */
import { z } from 'zod';
import { loadRetention, RETENTION_FILE } from '../../compliance/retention.js';
import type { StepKind } from './types.js';

const schema = z
  .object({
    /** A compliance task: `purge` applies retention.yaml (what it removed goes to the audit trail). */
    compliance: z.enum(['purge']),
  })
  .strict();

/** What a compliance step did: one line per retention category. */
export interface ComplianceStepResult {
  summary: string;
}

export const complianceStep: StepKind<'compliance', typeof schema, ComplianceStepResult> = {
  kind: 'compliance',
  role: 'task',
  schema,
  summary: 'a compliance task: `purge` applies retention.yaml',
  async create(entry, { home, params }) {
    const name = entry.compliance;
    return [
      {
        name,
        params,
        plan: async () => {
          await loadRetention(home);
        },
        preflight: async (checks) => {
          await loadRetention(checks.home);
        },
        async run(ctx) {
          // Loaded only when a run purges: it brings the SFTP client along (partners' archives).
          const { purge, summarisePurge } = await import('../../compliance/purge.js');
          const result = await purge(ctx.app, await loadRetention(ctx.app.home), {
            dryRun: ctx.dryRun,
            log: ctx.app.log,
            signal: ctx.signal,
          });
          return { summary: summarisePurge(result, ctx.dryRun) };
        },
      },
    ];
  },
  async uses(_entry, defs) {
    await defs.file('retention', RETENTION_FILE, RETENTION_FILE);
  },
  report: {
    detail: (r) => ({ summary: r.summary }),
    progress: (r) => ({ message: r.summary }),
    shown: (step, r) => ({ lines: [`  compliance ${step.name}: ${r.summary}`] }),
    shownFromRecord: (r) =>
      r.detail.summary !== undefined
        ? { lines: [`  compliance ${r.name}: ${String(r.detail.summary)}`] }
        : { lines: [] },
    detailLines: (d) => (d.summary ? [`     ${String(d.summary)}`] : []),
  },
};
