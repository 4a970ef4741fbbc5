/**
 * The `edi` job step: `{ edi: inbound | outbound | acks, partner: NAME, transaction_set?: 810 | 856 }`
 * exchanges X12 with a trading partner (src/edi/step.ts says what each direction does).
 */
import { z } from 'zod';
import {
  ediStepDetail,
  ediStepName,
  runEdiStep,
  type EdiStepResult,
  type EdiStepSpec,
} from '../../edi/step.js';
import { loadPartner } from '../../partners/profile.js';
import type { StepKind, StepShown } from './types.js';

const schema = z
  .object({
    /** EDI with a trading partner: read its inbox (850s in, 997/999 back), reconcile its acks only, or send 810/856. */
    edi: z.enum(['inbound', 'outbound', 'acks']),
    /** The partner, declared in partners/<name>.yaml. */
    partner: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/, 'a partner name such as PARTNERA'),
    /** Outbound only: send this transaction set only. @defaultValue every set the partner receives */
    transaction_set: z.enum(['810', '856']).optional(),
  })
  .strict()
  .refine((s) => s.transaction_set === undefined || s.edi === 'outbound', {
    message: 'transaction_set is for edi: outbound steps',
    path: ['transaction_set'],
  });

const ediLines = (name: string, summary: string, lines: string[]): StepShown => ({
  lines: [`  ${name}: ${summary}`, ...lines.map((l) => `    ${l}`)],
});

export const ediStep: StepKind<'edi', typeof schema, EdiStepResult> = {
  kind: 'edi',
  role: 'task',
  schema,
  summary: 'EDI with a partner: `inbound` (850s in, 997/999 back), `acks`, or `outbound` 810/856',
  async create(entry, { home, params }) {
    const spec: EdiStepSpec = {
      direction: entry.edi,
      partner: entry.partner,
      ...(entry.transaction_set ? { transactionSet: entry.transaction_set } : {}),
    };
    return [
      {
        name: ediStepName(spec),
        params,
        plan: async () => {
          await loadPartner(home, spec.partner);
        },
        preflight: (checks) => checks.partner(spec.partner),
        run: (ctx) =>
          runEdiStep(ctx.app, spec, {
            runId: ctx.runId,
            dryRun: ctx.dryRun,
            signal: ctx.signal,
            onRows: (n) => ctx.onRows(n),
          }),
      },
    ];
  },
  async uses(entry, defs) {
    await defs.partner(entry.partner);
  },
  report: {
    detail: ediStepDetail,
    progress: (r) => ({ message: r.summary }),
    shown: (step, r) => ediLines(step.name, r.summary, r.lines),
    shownFromRecord: (r) =>
      r.detail.summary !== undefined
        ? ediLines(r.name, String(r.detail.summary), (r.detail.lines as string[] | undefined) ?? [])
        : { lines: [] },
    detailLines(d) {
      const out: string[] = [];
      if (d.summary) out.push(`     ${String(d.summary)}`);
      const n = (k: string): string => String(d[k] ?? 0);
      if (d.orders_loaded !== undefined)
        out.push(
          `     files read ${n('files_read')}, transaction sets accepted ${n('sets_accepted')}, rejected ${n('sets_rejected')}, orders loaded ${n('orders_loaded')}`,
        );
      if (d.documents_sent !== undefined)
        out.push(`     files sent ${n('files_sent')}, documents sent ${n('documents_sent')}`);
      return out;
    },
  },
};
