/**
 * `retention.yaml` in the project home: how long erp keeps what it records, and the legal holds
 * that stop the purge for what they cover. `erp purge` (and the shipped `retention-purge` job)
 * applies it; `erp schema --out` writes its JSON Schema.
 *
 * ```yaml
 * periods:
 *   runs: 3y               # run records: steps, files, approvals (a run that loaded a file is kept: the ledger)
 *   rejects: 1y            # rejected rows in runner.rejects
 *   reject_reports: 1y     # the reject report CSVs beside the runs
 *   exports: 90d           # files the exports wrote (local file sinks)
 *   partner_archives: 2y   # partners' files in their SFTP archive directories
 *   interchanges: 2y       # raw outbound interchanges kept after delivery (edi.outbound_files)
 * holds:
 *   - { run: 1234, reason: 'dispute with PARTNERA, case 2026-17' }
 *   - { partner: PARTNERB, reason: 'litigation hold, counsel ref 88' }
 *   - { period: 2026-11, reason: 'tax audit of November 2026' }
 * ```
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml.js';
import { UserError } from '../errors.js';
import { PARTNER_NAME } from '../partners/profile.js';

const DAY_MS = 86_400_000;

/** A retention period: days, weeks or years (365 days), e.g. 90d, 12w, 7y. In ms. */
export const retentionPeriodSchema = z
  .string()
  .regex(/^[1-9]\d{0,4}(d|w|y)$/, 'a period like 90d, 12w or 7y (days, weeks, years of 365 days)')
  .transform((v) => Number(v.slice(0, -1)) * DAY_MS * { d: 1, w: 7, y: 365 }[v.slice(-1) as 'd' | 'w' | 'y']);

const reason = z.string().trim().min(1, 'say why the hold exists (who asked, which case)');

/** A legal hold: one run, everything of one partner, or everything of one month. */
export const holdSchema = z.union([
  z
    .object({
      /** A run id: the run record, its rejects, reject reports and exported files. */
      run: z.number().int().positive(),
      reason,
    })
    .strict(),
  z
    .object({
      /** A trading partner: its archived files, its interchanges, and runs with `partner` = it. */
      partner: z.string().regex(PARTNER_NAME, 'a partner name such as PARTNERA'),
      reason,
    })
    .strict(),
  z
    .object({
      /** A month YYYY-MM: runs with that `period` parameter or created in it, files dated in it. */
      period: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'a month YYYY-MM'),
      reason,
    })
    .strict(),
]);
export type Hold = z.output<typeof holdSchema>;

/** The categories a policy gives periods to, in the order the purge takes them. */
export const CATEGORIES = [
  'rejects',
  'reject_reports',
  'exports',
  'runs',
  'partner_archives',
  'interchanges',
] as const;
export type Category = (typeof CATEGORIES)[number];

export const retentionSchema = z
  .object({
    /** How long each kind of record is kept; a kind not listed is kept for ever. */
    periods: z
      .object({
        runs: retentionPeriodSchema.optional(),
        rejects: retentionPeriodSchema.optional(),
        reject_reports: retentionPeriodSchema.optional(),
        exports: retentionPeriodSchema.optional(),
        partner_archives: retentionPeriodSchema.optional(),
        interchanges: retentionPeriodSchema.optional(),
      })
      .strict(),
    /** Legal holds: what they cover is never purged while they are listed. */
    holds: z.array(holdSchema).default([]),
  })
  .strict()
  .superRefine((p, ctx) => {
    // A run's rejects, reports and exports are found through its record: they cannot outlive it.
    const runs = p.periods.runs;
    if (runs === undefined) return;
    for (const k of ['rejects', 'reject_reports', 'exports'] as const) {
      const own = p.periods[k];
      if (own === undefined || own > runs) {
        ctx.addIssue({
          code: 'custom',
          path: ['periods', k],
          message: `${k} must be kept no longer than runs (its run record is how erp finds them); give it a period no longer than runs'`,
        });
      }
    }
  });
export type RetentionPolicy = z.output<typeof retentionSchema>;

/** The policy file's name in the project home. */
export const RETENTION_FILE = 'retention.yaml';

/** `retention.yaml` under `home`; an operator error when there is none. */
export async function loadRetention(home: string): Promise<RetentionPolicy> {
  const file = path.join(home, RETENTION_FILE);
  try {
    await access(file);
  } catch {
    throw new UserError(
      `no ${RETENTION_FILE} in the project home: declare the retention periods there (docs/compliance.md)`,
    );
  }
  return loadYamlFile(file, retentionSchema, RETENTION_FILE);
}
