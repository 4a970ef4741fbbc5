import type { Queue } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import type pg from 'pg';
import { listJobNames, loadJob } from '../jobs/definition.js';
import { loadAnyPartners, loadPartners } from '../partners/profile.js';
import { listPipelineNames, loadPipeline } from '../pipeline/definition.js';
import { overdueInterchanges } from '../edi/interchanges.js';
import type { AlertsConfig, RuleName } from './definition.js';
import { expectedPeriod, type ExpectSpec } from './expect.js';

/**
 * The built-in rules: each returns the conditions that hold at `now`, one per subject (a job, a
 * schedule, a pipeline, an interchange). src/alerts/engine.ts opens an alert for a new condition
 * and resolves the alert whose condition no longer holds. Every time comparison uses `now`, never
 * the database's clock, so tests drive the clock.
 */

/** One condition that holds. */
export interface Condition {
  rule: RuleName;
  subject: string;
  message: string;
}

export interface RuleContext {
  pool: pg.Pool;
  home: string;
  /** The runs queue, for the no-worker rule; without it that rule is not evaluated. */
  queue?: Queue;
}

const iso = (d: Date): string => d.toISOString().replace('.000Z', 'Z');

/** The last finished run of each job or pipeline failed: its error, first rejects and reject report. */
async function runFailed(ctx: RuleContext): Promise<Condition[]> {
  const { rows } = await ctx.pool.query<{
    id: string;
    name: string;
    status: string;
    error: string | null;
    finished_at: Date;
  }>(
    `SELECT DISTINCT ON (name) id, name, status, error, finished_at FROM runner.runs
      WHERE status IN ('succeeded', 'failed') AND NOT dry_run AND finished_at IS NOT NULL
      ORDER BY name, finished_at DESC, id DESC`,
  );
  const out: Condition[] = [];
  for (const r of rows.filter((x) => x.status === 'failed')) {
    const lines = [
      `run ${r.id} of ${r.name} failed at ${iso(r.finished_at)}: ${r.error ?? 'no error recorded'}`,
    ];
    const files = await ctx.pool.query<{
      file: string;
      message: string | null;
      reject_report: string | null;
      id: string;
    }>(
      `SELECT id, file, message, reject_report FROM runner.run_files WHERE run_id = $1 AND status = 'failed' ORDER BY id`,
      [r.id],
    );
    for (const f of files.rows) {
      lines.push(`file ${f.file}: ${f.message ?? 'failed'}`);
      const rejects = await ctx.pool.query<{
        line: string | null;
        field: string | null;
        value: string | null;
        reason: string;
      }>(`SELECT line, field, value, reason FROM runner.rejects WHERE run_file_id = $1 ORDER BY id LIMIT 5`, [
        f.id,
      ]);
      for (const j of rejects.rows)
        lines.push(
          `  line ${j.line ?? '?'}${j.field ? `, field ${j.field}` : ''}${j.value !== null ? `: value "${j.value}"` : ''}: ${j.reason}`,
        );
      if (f.reject_report) lines.push(`  reject report: ${f.reject_report}`);
    }
    out.push({ rule: 'run_failed', subject: r.name, message: lines.join('\n') });
  }
  return out;
}

/** The latest tick of each schedule with a `deadline` that passed: its run must have succeeded. */
async function scheduleLate(ctx: RuleContext, now: Date): Promise<Condition[]> {
  const out: Condition[] = [];
  for (const name of await listJobNames(ctx.home)) {
    const job = await loadJob(ctx.home, name).catch(() => null);
    if (!job) continue;
    for (const [index, s] of job.config.schedules.entries()) {
      if (s.deadline === undefined) continue;
      const tick = CronExpressionParser.parse(s.cron, {
        tz: s.timezone,
        currentDate: new Date(now.getTime() - s.deadline + 1),
      })
        .prev()
        .toDate();
      const due = new Date(tick.getTime() + s.deadline);
      const { rows } = await ctx.pool.query<{ id: string; status: string; error: string | null }>(
        `SELECT id, status, error FROM runner.runs WHERE schedule_tick = $1 ORDER BY id DESC LIMIT 1`,
        [`${job.name}#${index}@${tick.toISOString()}`],
      );
      const run = rows[0];
      if (run?.status === 'succeeded') continue;
      const what = !run
        ? 'no run was started for it (missed: is erp scheduler running?)'
        : run.status === 'failed' || run.status === 'cancelled'
          ? `run ${run.id} ${run.status}${run.error ? `: ${run.error}` : ''}`
          : `run ${run.id} is still ${run.status} past the deadline`;
      out.push({
        rule: 'schedule_late',
        subject: `${job.name}#${index}`,
        message: `schedule ${job.name}#${index} (${s.cron}): the tick of ${iso(tick)} had no successful run by ${iso(due)}; ${what}`,
      });
    }
  }
  return out;
}

/** Files that did not come, came much smaller than usual, or came again unchanged. */
async function expectedFiles(ctx: RuleContext, now: Date): Promise<Condition[]> {
  const out: Condition[] = [];
  const sftpPipelines = new Map<string, string[]>();
  for (const name of await listPipelineNames(ctx.home)) {
    const def = await loadPipeline(ctx.home, name).catch(() => null);
    if (!def) continue;
    const source = def.config.source as { kind: string; partner?: string };
    if (source.kind === 'sftp' && source.partner) {
      sftpPipelines.set(source.partner, [...(sftpPipelines.get(source.partner) ?? []), name]);
    }
    if (def.config.expect) {
      out.push(
        ...(await arrivals(
          ctx,
          { label: `pipeline ${name}`, subject: name, pipelines: [name] },
          def.config.expect,
          now,
        )),
      );
    }
  }
  // A partner's files are those its pipelines fetch from its SFTP server and the interchanges it sends.
  for (const partner of await loadAnyPartners(ctx.home).catch(() => [])) {
    if (!partner.expect) continue;
    const from = {
      label: `partner ${partner.name}`,
      subject: `partner ${partner.name}`,
      pipelines: sftpPipelines.get(partner.name) ?? [],
      partner: partner.name,
    };
    out.push(...(await arrivals(ctx, from, partner.expect, now)));
  }
  return out;
}

/** Where an expected file comes from: pipelines' loaded files, and a partner's inbound interchanges. */
interface ArrivalSource {
  label: string;
  subject: string;
  pipelines: string[];
  partner?: string;
}

/**
 * The files of a source: a pipeline's run files (rows loaded, size, skipped when seen before) and a
 * partner's inbound interchanges (transaction sets as rows; a re-delivery byte-identical to a loaded
 * one as skipped).
 */
const ARRIVALS = `
  SELECT f.file, f.status, f.sha256, f.size_bytes AS size, f.rows_loaded, f.finished_at AS at,
         (SELECT min(e.loaded_at) FROM runner.ingested_files e WHERE e.pipeline = f.pipeline AND e.sha256 = f.sha256) AS earlier
    FROM runner.run_files f JOIN runner.runs r ON r.id = f.run_id
   WHERE f.pipeline = ANY($1) AND NOT r.dry_run AND f.status IN ('loaded', 'skipped')
  UNION ALL
  SELECT i.file_name, CASE i.status WHEN 'duplicate' THEN 'skipped' ELSE i.status END, i.sha256, NULL,
         i.set_count, i.created_at,
         (SELECT min(e.created_at) FROM edi.interchanges e
           WHERE e.partner = i.partner AND e.direction = 'in' AND e.status = 'loaded' AND e.sha256 = i.sha256)
    FROM edi.interchanges i
   WHERE i.partner = $2 AND i.direction = 'in'
     AND (i.status = 'loaded' OR (i.status = 'duplicate' AND EXISTS (
           SELECT 1 FROM edi.interchanges e WHERE e.partner = i.partner AND e.direction = 'in'
              AND e.status = 'loaded' AND e.sha256 = i.sha256)))`;

async function arrivals(
  ctx: RuleContext,
  source: ArrivalSource,
  spec: ExpectSpec,
  now: Date,
): Promise<Condition[]> {
  const { subject } = source;
  const { from, deadline } = expectedPeriod(spec, now);
  const { rows } = await ctx.pool.query<{
    file: string;
    status: string;
    sha256: string | null;
    size: string | null;
    rows_loaded: string;
    earlier: Date | null;
  }>(`SELECT * FROM (${ARRIVALS}) a WHERE a.at > $3 AND a.at <= $4 ORDER BY a.at`, [
    source.pipelines,
    source.partner ?? null,
    from,
    now,
  ]);
  const loaded = rows.filter((r) => r.status === 'loaded');
  const where = `${source.label} (due ${spec.cron}${spec.within ? ` + ${spec.within / 60_000} min` : ''})`;
  if (loaded.length === 0) {
    const stale = rows.find((r) => r.status === 'skipped');
    if (stale)
      return [
        {
          rule: 'file_stale',
          subject,
          message: `${where}: the file for the period due ${iso(deadline)}, ${stale.file}, is byte-identical to one loaded ${stale.earlier ? iso(stale.earlier) : 'earlier'} (SHA-256 ${stale.sha256 ?? '?'}): a stale re-send, nothing new was loaded`,
        },
      ];
    return [
      {
        rule: 'file_missing',
        subject,
        message: `${where}: no file loaded since ${iso(from)}; it was due by ${iso(deadline)}`,
      },
    ];
  }
  const { rows: usual } = await ctx.pool.query<{ median: number | null }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY size)::float8 AS median FROM (
       SELECT a.size FROM (${ARRIVALS}) a WHERE a.status = 'loaded' AND a.at <= $3 AND a.size IS NOT NULL
        ORDER BY a.at DESC LIMIT 10) s`,
    [source.pipelines, source.partner ?? null, from],
  );
  const median = usual[0]?.median ?? null;
  const small: string[] = [];
  for (const f of loaded) {
    const size = f.size === null ? null : Number(f.size);
    if (spec.min_rows !== undefined && Number(f.rows_loaded) < spec.min_rows)
      small.push(`${f.file}: ${f.rows_loaded} rows loaded, expected at least ${spec.min_rows}`);
    else if (spec.min_bytes !== undefined && size !== null && size < spec.min_bytes)
      small.push(`${f.file}: ${size} bytes, expected at least ${spec.min_bytes}`);
    else if (median !== null && size !== null && size < spec.smaller_than * median)
      small.push(
        `${f.file}: ${size} bytes, under ${Math.round(spec.smaller_than * 100)}% of the usual ${Math.round(median)} (median of the last 10)`,
      );
  }
  return small.length === 0
    ? []
    : [
        {
          rule: 'file_small',
          subject,
          message: `${where}: much smaller than usual: ${small.join('; ')}`,
        },
      ];
}

/** Outbound interchanges whose 997/999 is later than the partner's limit. */
async function ackOverdue(ctx: RuleContext, now: Date): Promise<Condition[]> {
  const partners = await loadPartners(ctx.home);
  if (partners.length === 0) return [];
  const limits = Object.fromEntries(partners.map((p) => [p.name, p.x12.ack_overdue_hours]));
  return (await overdueInterchanges(ctx.pool, limits, now)).map((o) => ({
    rule: 'ack_overdue' as const,
    subject: `${o.partner} ${o.isa13}`,
    message: `partner ${o.partner}: interchange ${o.isa13} (${o.fileName}) sent ${o.hoursWaiting} h ago has no 997/999 yet (limit ${limits[o.partner]} h)`,
  }));
}

/**
 * Inbound files a partner sent that could not be read, moved aside for an operator, with nothing
 * from that partner loaded since: the alert clears once the partner's next interchange loads.
 */
async function inboundHeld(ctx: RuleContext): Promise<Condition[]> {
  const { rows } = await ctx.pool.query<{
    partner: string;
    file_name: string;
    error: string;
    moved_to: string | null;
  }>(
    `SELECT f.partner, f.file_name, f.error, f.moved_to FROM edi.failed_files f
      WHERE f.created_at > coalesce((SELECT max(i.created_at) FROM edi.interchanges i
                                      WHERE i.partner = f.partner AND i.direction = 'in' AND i.status = 'loaded'), '-infinity')
      ORDER BY f.id`,
  );
  return rows.map((r) => ({
    rule: 'inbound_held' as const,
    subject: `${r.partner} ${r.file_name}`,
    message: `partner ${r.partner}: inbound file ${r.file_name} is held for an operator${r.moved_to ? ` in ${r.moved_to}` : ''}: ${r.error}`,
  }));
}

/** Runs queued longer than `afterMs` while no worker is connected to the queue. */
async function noWorker(ctx: RuleContext, now: Date, afterMs: number): Promise<Condition[]> {
  if (!ctx.queue) return [];
  const { rows } = await ctx.pool.query<{ n: number; oldest: Date | null }>(
    `SELECT count(*)::int AS n, min(created_at) AS oldest FROM runner.runs WHERE status = 'queued' AND created_at <= $1`,
    [new Date(now.getTime() - afterMs)],
  );
  if (!rows[0] || rows[0].n === 0) return [];
  if ((await ctx.queue.getWorkers()).length > 0) return [];
  return [
    {
      rule: 'no_worker',
      subject: 'queue',
      message: `${rows[0].n} run(s) queued for over ${Math.round(afterMs / 60_000)} min (oldest since ${iso(rows[0].oldest!)}) and no erp worker is connected`,
    },
  ];
}

/** Every enabled rule's conditions at `now`. */
export async function evaluateRules(ctx: RuleContext, config: AlertsConfig, now: Date): Promise<Condition[]> {
  const on = (r: RuleName): boolean => config.rules[r].enabled;
  const out: Condition[] = [];
  if (on('run_failed')) out.push(...(await runFailed(ctx)));
  if (on('schedule_late')) out.push(...(await scheduleLate(ctx, now)));
  if (on('file_missing') || on('file_small') || on('file_stale'))
    out.push(...(await expectedFiles(ctx, now)).filter((c) => on(c.rule)));
  if (on('ack_overdue')) out.push(...(await ackOverdue(ctx, now)));
  if (on('inbound_held')) out.push(...(await inboundHeld(ctx)));
  if (on('no_worker')) out.push(...(await noWorker(ctx, now, config.rules.no_worker.after)));
  return out;
}
