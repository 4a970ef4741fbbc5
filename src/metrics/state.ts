import type { Queue } from 'bullmq';
import type pg from 'pg';
import type { Logger } from 'pino';
import { Gauge, Registry } from 'prom-client';
import { loadPartners } from '../partners/profile.js';
import { overdueInterchanges } from '../edi/interchanges.js';

/**
 * Metrics read at scrape time from the shared state every process sees — PostgreSQL (runs, EDI,
 * alerts) and BullMQ's counts in Redis — so any worker, scheduler or console reports the same
 * values, however many there are. Each gauge's `collect` runs its query when /metrics is scraped;
 * a failing query leaves that gauge empty for the scrape and logs at debug level.
 */
export interface StateSources {
  pool: pg.Pool;
  /** The runs queue, for its counts and its live workers; omitted where the process has none. */
  queue?: Queue;
  home: string;
  log: Logger;
}

/** A registry whose gauges read `sources` at each scrape. */
export function stateRegistry(sources: StateSources): Registry {
  const registry = new Registry();
  const { pool, queue, log } = sources;
  const quietly = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      log.debug({ err: (err as Error).message }, `metrics: could not read ${what}`);
    }
  };

  if (queue) {
    new Gauge({
      name: 'erp_queue_jobs',
      help: "Runs in the BullMQ queue by state (BullMQ's own counts)",
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        await quietly('the queue counts', async () => {
          const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed');
          this.reset();
          for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        });
      },
    });
    new Gauge({
      name: 'erp_queue_workers',
      help: 'Worker connections BullMQ sees on the runs queue (0: nobody takes work)',
      registers: [registry],
      async collect() {
        await quietly('the workers', async () => this.set((await queue.getWorkers()).length));
      },
    });
  }

  new Gauge({
    name: 'erp_runs_queued_oldest_age_seconds',
    help: 'Age of the oldest queued run (0 when none is queued)',
    registers: [registry],
    async collect() {
      await quietly('the oldest queued run', async () => {
        const { rows } = await pool.query<{ age: number | null }>(
          `SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM runner.runs WHERE status = 'queued'`,
        );
        this.set(rows[0]?.age ?? 0);
      });
    },
  });
  new Gauge({
    name: 'erp_runs_active',
    help: 'Runs queued or running, by status (from runner.runs)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      await quietly('the active runs', async () => {
        const { rows } = await pool.query<{ status: string; n: number }>(
          `SELECT s.status, count(r.id)::int AS n FROM unnest(ARRAY['queued', 'running']) AS s (status)
             LEFT JOIN runner.runs r ON r.status = s.status GROUP BY s.status`,
        );
        for (const r of rows) this.set({ status: r.status }, r.n);
      });
    },
  });
  new Gauge({
    name: 'erp_job_last_success_timestamp_seconds',
    help: 'Unix time the last successful run of each job or pipeline finished',
    labelNames: ['job'],
    registers: [registry],
    async collect() {
      await quietly('the last successes', async () => {
        const { rows } = await pool.query<{ name: string; at: number }>(
          `SELECT name, extract(epoch FROM max(finished_at))::float8 AS at FROM runner.runs
            WHERE status = 'succeeded' AND NOT dry_run GROUP BY name`,
        );
        this.reset();
        for (const r of rows) this.set({ job: r.name }, r.at);
      });
    },
  });
  new Gauge({
    name: 'erp_edi_interchanges',
    help: 'Interchanges recorded, by partner and direction (in, out); rate() it like a counter',
    labelNames: ['partner', 'direction'],
    registers: [registry],
    async collect() {
      await quietly('the interchanges', async () => {
        const { rows } = await pool.query<{ partner: string; direction: string; n: number }>(
          `SELECT partner, direction, count(*)::int AS n FROM edi.interchanges GROUP BY partner, direction`,
        );
        this.reset();
        for (const r of rows) this.set({ partner: r.partner, direction: r.direction }, r.n);
      });
    },
  });
  new Gauge({
    name: 'erp_edi_acks_overdue',
    help: "Outbound interchanges whose 997/999 is later than the partner's ack_overdue_hours",
    labelNames: ['partner'],
    registers: [registry],
    async collect() {
      await quietly('the overdue acknowledgments', async () => {
        const partners = await loadPartners(sources.home);
        const limits = Object.fromEntries(partners.map((p) => [p.name, p.x12.ack_overdue_hours]));
        const overdue = await overdueInterchanges(pool, limits);
        this.reset();
        for (const p of partners) this.set({ partner: p.name }, 0);
        for (const o of overdue) this.inc({ partner: o.partner });
      });
    },
  });
  new Gauge({
    name: 'erp_alerts_open',
    help: 'Alerts open now, by rule',
    labelNames: ['rule'],
    registers: [registry],
    async collect() {
      await quietly('the open alerts', async () => {
        const { rows } = await pool.query<{ rule: string; n: number }>(
          `SELECT rule, count(*)::int AS n FROM runner.alerts WHERE resolved_at IS NULL GROUP BY rule`,
        );
        this.reset();
        for (const r of rows) this.set({ rule: r.rule }, r.n);
      });
    },
  });
  return registry;
}
