/**
 * `expect:` on a pipeline or a partner: when its file is due, and what it should look like. The
 * built-in alerts (src/alerts/rules.ts) fire when the file has not arrived by the deadline, when it
 * arrived much smaller than usual, or when it is byte-identical to an earlier period's (a stale
 * re-send).
 *
 *   tick (cron) ──── within ────► deadline: no file loaded since the previous deadline → alert
 */
import { createRequire } from 'node:module';
import type * as CronParserModule from 'cron-parser';
import { z } from 'zod';

const require = createRequire(import.meta.url);
let parser: typeof CronParserModule.CronExpressionParser | undefined;
/**
 * cron-parser (CommonJS), loaded on first use: every `erp` process checks pipeline files against
 * this schema, and few of them declare `expect`; loading it cost each CLI start some 15 ms of CPU.
 */
function cron(): typeof CronParserModule.CronExpressionParser {
  return (parser ??= (require('cron-parser') as typeof CronParserModule).CronExpressionParser);
}

/** A duration like 90s, 30m, 2h or 1d, in ms. */
export const alertDurationSchema = z
  .string()
  .regex(/^\d+(s|m|h|d)$/, 'a duration like 90s, 30m, 2h or 1d')
  .transform((v) => {
    const n = Number(v.slice(0, -1));
    const unit = v.slice(-1);
    return n * (unit === 's' ? 1000 : unit === 'm' ? 60_000 : unit === 'h' ? 3_600_000 : 86_400_000);
  });

export const expectSchema = z
  .object({
    /** When the file is due: a cron pattern (minute hour day-of-month month day-of-week). */
    cron: z.string().refine((c) => {
      try {
        cron().parse(c);
        return true;
      } catch {
        return false;
      }
    }, 'a cron pattern such as "0 2 * * 1-5"'),
    /** IANA time zone of the pattern. @defaultValue UTC */
    timezone: z.string().default('UTC'),
    /** Grace after the cron time before the file counts as missing. @defaultValue 0s */
    within: alertDurationSchema.default(0),
    /** Fewest rows a loaded file of the period may have. */
    min_rows: z.number().int().min(0).optional(),
    /** Fewest bytes a file of the period may have. */
    min_bytes: z.number().int().min(0).optional(),
    /**
     * A file smaller than this share of the median size of the last 10 loaded files counts as
     * "much smaller than usual". @defaultValue 0.5
     */
    smaller_than: z.number().gt(0).max(1).default(0.5),
  })
  .strict();

export type ExpectSpec = z.output<typeof expectSchema>;

/**
 * The period whose deadline passed last at `now`: the deadline itself and the previous one (files
 * loaded after the previous deadline count for this period).
 */
export function expectedPeriod(spec: ExpectSpec, now: Date): { from: Date; deadline: Date } {
  // The latest tick whose deadline (tick + within) is at or before now.
  const it = cron().parse(spec.cron, {
    tz: spec.timezone,
    currentDate: new Date(now.getTime() - spec.within + 1),
  });
  const tick = it.prev().toDate();
  const before = it.prev().toDate();
  return {
    from: new Date(before.getTime() + spec.within),
    deadline: new Date(tick.getTime() + spec.within),
  };
}
