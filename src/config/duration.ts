/**
 * Durations in definition files: a number of milliseconds, or `90s`, `30m`, `2h`, `500ms`. Job
 * timeouts, retries' backoff, schedules' catch-up and deadlines, and a command step's timeout.
 */
import { z } from 'zod';

/** A duration as a definition file writes it, parsed to milliseconds. */
export const durationSchema = z
  .union([z.number().int().positive(), z.string().regex(/^\d+(ms|s|m|h)$/, 'a duration like 90s, 30m or 2h')])
  .transform((v) => parseDuration(v));

export function parseDuration(v: number | string): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)(ms|s|m|h)$/.exec(v)!;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
}
