import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import type pg from 'pg';
import { UserError } from '../errors.js';
import { auditRows, type AuditRow } from './trail.js';

/** Formats of `erp audit export`. */
export type AuditExportFormat = 'csv' | 'jsonl';

const COLUMNS: (keyof AuditRow)[] = [
  'seq',
  'at',
  'actor',
  'host',
  'action',
  'subject',
  'detail',
  'prev_hash',
  'hash',
];

/**
 * A date (YYYY-MM-DD, the whole day in UTC) or an ISO timestamp; `end` turns a date into the
 * start of the next day, so `--to 2026-11-30` includes that day.
 */
export function parseBound(flag: string, value: string | undefined, end: boolean): Date | undefined {
  if (value === undefined) return undefined;
  const v = String(value);
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    const d = new Date(`${v}T00:00:00Z`);
    if (!Number.isNaN(d.getTime()) && d.toISOString().startsWith(v))
      return end ? new Date(d.getTime() + 86_400_000) : d;
  } else if (/^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v))) {
    return new Date(v);
  }
  throw new UserError(`${flag} '${v}' is not a date: expected YYYY-MM-DD or an ISO 8601 timestamp`);
}

/**
 * Writes the audit rows with `from <= at < to` to `out` for an auditor, with every column the
 * hash covers plus the hashes, so the chain can be checked outside erp (see docs/compliance.md).
 * Returns the number of rows written.
 */
export async function exportAudit(
  pool: pg.Pool,
  out: Writable,
  opts: { from?: Date; to?: Date; format: AuditExportFormat },
): Promise<number> {
  let n = 0;
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  if (opts.format === 'csv') await write(stringify([COLUMNS]));
  for await (const page of auditRows(pool, opts)) {
    const text =
      opts.format === 'csv'
        ? stringify(page.map((r) => COLUMNS.map((c) => r[c])))
        : page.map((r) => JSON.stringify(r)).join('\n') + '\n';
    await write(text);
    n += page.length;
  }
  return n;
}
