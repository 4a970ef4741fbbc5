/**
 * `erp purge` and the `compliance: purge` job step: removes what the retention policy says is
 * older than its period, except what a legal hold covers, and records what it removed.
 *
 *   per category: candidates older than now − period ──► held? (run, partner, month) ──► kept
 *                                                     └─► files removed first (reports, exports,
 *                                                         partner archives), then the rows in one
 *                                                         transaction with the audit row
 *
 * Files go before the rows that point at them: a purge killed midway leaves rows whose file is
 * gone, which the next purge finds and finishes, never a file nobody can find any more.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { appendAudit } from '../audit/trail.js';
import { describeError } from '../errors.js';
import { listPartnerNames, loadAnyPartner, resolveEndpoint } from '../partners/profile.js';
import { withSftp } from '../sftp/connect.js';
import { loadPipeline } from '../pipeline/definition.js';
import { resolveInside } from '../sftp/names.js';
import { listRemote } from '../sftp/transfer.js';
import {
  clearRejectReports,
  deleteRejectsOfRuns,
  deleteRuns,
  filesWrittenBefore,
  finishedRunsBefore,
  markFilesPurged,
  rejectReportsBefore,
  runsWithRejectsBefore,
  type RunHolds,
} from '../runs/store/retention.js';
import { CATEGORIES, type Category, type RetentionPolicy } from './retention.js';

/** What the purge found in one category. */
export interface CategoryPurge {
  /** Items older than the period, not held: removed (or, in a dry run, to be removed). */
  items: string[];
  /** Items older than the period that a hold keeps. */
  held: number;
  cutoff: Date;
}

export type PurgeResult = Partial<Record<Category, CategoryPurge>>;

export interface PurgeOptions {
  dryRun: boolean;
  now?: Date;
  log: Logger;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

interface PurgeContext {
  pool: pg.Pool;
  home: string;
  dataDir: string;
}

/** The holds as the run store takes them (and the EDI query below: partners, months). */
function holdParams(policy: RetentionPolicy): RunHolds {
  const runs: string[] = [];
  const partners: string[] = [];
  const months: string[] = [];
  for (const h of policy.holds) {
    if ('run' in h) runs.push(String(h.run));
    else if ('partner' in h) partners.push(h.partner);
    else months.push(h.period);
  }
  return [runs, partners, months];
}

const monthOf = (d: Date): string => d.toISOString().slice(0, 7);

/** True when `file` resolves inside `dir`. */
export function inside(dir: string, file: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

export async function purge(
  app: PurgeContext,
  policy: RetentionPolicy,
  opts: PurgeOptions,
): Promise<PurgeResult> {
  const now = opts.now ?? new Date();
  const holds = holdParams(policy);
  const result: PurgeResult = {};
  /** Row deletions, run in one transaction after the files are gone. */
  const deletions: ((db: pg.PoolClient) => Promise<void>)[] = [];
  const purgedRuns: string[] = [];

  for (const category of CATEGORIES) {
    const period = policy.periods[category];
    if (period === undefined) continue;
    const cutoff = new Date(now.getTime() - period);
    const found: CategoryPurge = { items: [], held: 0, cutoff };
    result[category] = found;

    if (category === 'rejects') {
      const rows = await runsWithRejectsBefore(app.pool, holds, cutoff);
      const ids = take(rows, found, (r) => `run ${r.id}: ${r.n} rejected rows`);
      deletions.push((db) => deleteRejectsOfRuns(db, ids));
    } else if (category === 'reject_reports') {
      const rows = await rejectReportsBefore(app.pool, holds, cutoff);
      // Only files under the data directory, where erp writes them, are ever removed.
      const mine = rows.filter((r) => inside(app.dataDir, r.report));
      const ids = take(mine, found, (r) => path.relative(app.dataDir, r.report));
      if (!opts.dryRun) for (const r of mine.filter((m) => !m.held)) await rm(r.report, { force: true });
      deletions.push((db) => clearRejectReports(db, ids));
    } else if (category === 'exports') {
      const rows = await filesWrittenBefore(app.pool, holds, cutoff);
      const exports = [];
      for (const r of rows) {
        const dir = await exportDir(app.home, r.pipeline);
        const file = path.resolve(app.home, r.file);
        if (dir !== null && inside(dir, file)) exports.push({ ...r, file });
      }
      const ids = take(exports, found, (r) => path.relative(app.home, r.file));
      if (!opts.dryRun) for (const r of exports.filter((m) => !m.held)) await rm(r.file, { force: true });
      deletions.push((db) => markFilesPurged(db, ids));
    } else if (category === 'runs') {
      // A run that loaded a file stays: the exactly-once ledger names it.
      const rows = await finishedRunsBefore(app.pool, holds, cutoff);
      const ids = take(rows, found, (r) => `run ${r.id} (${r.name}, ${r.at.toISOString().slice(0, 10)})`);
      purgedRuns.push(...ids);
      // Its directory (reject reports) goes with it.
      if (!opts.dryRun) {
        for (const id of ids) await rm(path.join(app.dataDir, 'runs', id), { recursive: true, force: true });
      }
      deletions.push((db) => deleteRuns(db, ids));
    } else if (category === 'partner_archives') {
      await purgeArchives(app, policy, cutoff, found, opts);
    } else {
      const { rows } = await app.pool.query<{
        id: string;
        partner: string;
        file_name: string;
        held: boolean;
      }>(
        `SELECT o.interchange_id AS id, i.partner, o.file_name,
                (i.partner = ANY($1::text[]) OR to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM') = ANY($2::text[])) AS held
           FROM edi.outbound_files o JOIN edi.interchanges i ON i.id = o.interchange_id
          WHERE o.delivered_at IS NOT NULL AND o.delivered_at < $3 ORDER BY o.interchange_id`,
        [holds[1], holds[2], cutoff],
      );
      const ids = take(rows, found, (r) => `${r.partner} ${r.file_name}`);
      deletions.push(async (db) => {
        await db.query(`DELETE FROM edi.outbound_files WHERE interchange_id = ANY($1::bigint[])`, [ids]);
      });
    }
  }
  if (opts.dryRun) return result;

  const client = await app.pool.connect();
  try {
    await client.query('BEGIN');
    for (const d of deletions) await d(client);
    await appendAudit(client, {
      action: 'retention.purged',
      subject: 'retention',
      detail: {
        removed: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, v.items.length])),
        held: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, v.held])),
        older_than: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, v.cutoff.toISOString()])),
        runs: purgedRuns,
        holds: policy.holds.length,
      },
    });
    await client.query('COMMIT');
    client.release();
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release(true);
    throw err;
  }
  return result;
}

/** Sorts candidates into removed and held; returns the ids of those removed. */
function take<T extends { held: boolean; id?: string }>(
  rows: T[],
  found: CategoryPurge,
  show: (r: T) => string,
): string[] {
  const ids: string[] = [];
  for (const r of rows) {
    if (r.held) {
      found.held++;
      continue;
    }
    found.items.push(show(r));
    if (r.id !== undefined) ids.push(r.id);
  }
  return ids;
}

/** The local directory an export pipeline writes to; null for imports and remote sinks. */
export async function exportDir(home: string, pipeline: string): Promise<string | null> {
  try {
    const def = await loadPipeline(home, pipeline);
    if (def.config.source.kind !== 'postgres' || def.config.sink.kind !== 'file') return null;
    return path.resolve(home, def.config.sink.dir);
  } catch {
    // A pipeline since removed: its files are not erp's to guess at.
    return null;
  }
}

/** Partners' archived files older than the cutoff, over SFTP. */
async function purgeArchives(
  app: PurgeContext,
  policy: RetentionPolicy,
  cutoff: Date,
  found: CategoryPurge,
  opts: PurgeOptions,
): Promise<void> {
  const heldPartners = new Set(policy.holds.flatMap((h) => ('partner' in h ? [h.partner] : [])));
  const heldMonths = new Set(policy.holds.flatMap((h) => ('period' in h ? [h.period] : [])));
  for (const name of await listPartnerNames(app.home)) {
    const partner = await loadAnyPartner(app.home, name);
    const endpoint = resolveEndpoint(partner, opts.env);
    const connect = {
      log: opts.log,
      partner: partner.name,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.env ? { env: opts.env } : {}),
    };
    await withSftp(endpoint, connect, async (client) => {
      for (const e of await listRemote(client, endpoint.archive)) {
        if (!e.isFile || e.mtime >= cutoff.getTime()) continue;
        if (heldPartners.has(partner.name) || heldMonths.has(monthOf(new Date(e.mtime)))) {
          found.held++;
          continue;
        }
        const remote = resolveInside(endpoint.archive, e.name);
        found.items.push(`${partner.name} ${remote}`);
        if (opts.dryRun) continue;
        try {
          await client.delete(remote);
        } catch (err) {
          throw new Error(`partner ${partner.name}: cannot remove ${remote}: ${describeError(err)}`);
        }
      }
    });
  }
}

const LABELS: Record<Category, string> = {
  rejects: 'rejected rows (runs)',
  reject_reports: 'reject reports',
  exports: 'exported files',
  runs: 'run records',
  partner_archives: 'archived partner files',
  interchanges: 'raw interchanges',
};

/** One line per category: how many items went (or would go), how many are held. */
export function summarisePurge(result: PurgeResult, dryRun: boolean): string {
  const parts = Object.entries(result).map(
    ([k, v]) => `${LABELS[k as Category]}: ${v.items.length}${v.held > 0 ? ` (${v.held} held)` : ''}`,
  );
  return `${dryRun ? 'would purge' : 'purged'} ${parts.join(', ') || 'nothing (no periods in retention.yaml)'}`;
}

/** What `erp purge --dry-run` prints: per category, the cutoff and the items, `limit` shown each. */
export function describePurge(result: PurgeResult, dryRun: boolean, limit = 50): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(result)) {
    const label = LABELS[k as Category];
    lines.push(
      `${label} older than ${v.cutoff.toISOString().slice(0, 16).replace('T', ' ')} UTC: ` +
        `${v.items.length} ${dryRun ? 'would go' : 'removed'}${v.held > 0 ? `, ${v.held} kept by a legal hold` : ''}`,
    );
    for (const item of v.items.slice(0, limit)) lines.push(`  ${item}`);
    if (v.items.length > limit) lines.push(`  … and ${v.items.length - limit} more`);
  }
  if (lines.length === 0) lines.push('retention.yaml gives no periods: nothing is purged');
  return lines.join('\n');
}
