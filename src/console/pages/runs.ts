import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../auth.js';
import { historyChart } from '../chart.js';
import type { ConsoleContext } from '../context.js';
import { duration, html, oneLine, query, when, type Safe } from '../html.js';
import { page } from '../layout.js';
import { findRuns, history, overview, type RunFilter } from '../queries.js';
import type { RunRow } from '../../runs/history.js';
import { listAlerts, type AlertRow } from '../../alerts/list.js';

/** The overview ("last night at a glance") and the runs list. */

const PAGE_SIZE = 50;
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** A date from a query value (`2026-11-30` or `2026-11-30T22:00`, UTC), or undefined; a bad one is a 400. */
function dateParam(v: unknown, name: string): Date | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  const d = new Date(/Z|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}${v.length <= 10 ? 'T00:00' : ''}Z`);
  if (Number.isNaN(d.getTime()))
    throw new HttpError(400, `${name}: expected a date like 2026-11-30 or 2026-11-30T22:00`);
  return d;
}

function status(s: string): Safe {
  return html`<span class="status status-${s}">${s}</span>`;
}

/** A table of runs. */
export function runsTable(rows: RunRow[]): Safe {
  if (rows.length === 0) return html`<p class="note">No runs.</p>`;
  return html`<table class="runs">
    <thead>
      <tr>
        <th>Run</th>
        <th>Job / pipeline</th>
        <th>Status</th>
        <th>Created (UTC)</th>
        <th>Duration</th>
        <th class="num">Loaded</th>
        <th class="num">Rejected</th>
        <th>Who</th>
        <th>Error</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (r) =>
          html`<tr class="run-row run-${r.status}" data-run="${r.id}">
            <td><a href="/runs/${r.id}">${r.id}</a></td>
            <td>${r.name} <span class="kind">${r.kind}</span></td>
            <td>${status(r.status)}</td>
            <td>${when(r.created_at)}</td>
            <td>${duration(r.started_at, r.finished_at)}</td>
            <td class="num">${r.rows_loaded}</td>
            <td class="num">${r.rows_rejected}</td>
            <td>${r.requested_by}</td>
            <td class="error-line">${oneLine(r.error)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** Open alerts (those `erp alerts` lists as open), including files expected but not arrived. */
function alertsTable(rows: AlertRow[]): Safe {
  if (rows.length === 0) return html`<p class="note">No open alerts.</p>`;
  return html`<table class="alerts">
    <thead>
      <tr>
        <th>Rule</th>
        <th>Subject</th>
        <th>Since (UTC)</th>
        <th>Message</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (a) =>
          html`<tr data-alert="${a.id}">
            <td>${a.rule}</td>
            <td>${a.subject}</td>
            <td>${when(a.opened_at)}</td>
            <td class="error-line">${oneLine(a.message)}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

async function queueState(ctx: ConsoleContext): Promise<Safe> {
  if (!ctx.queue) return html`<p class="note">Queue: Redis is not reachable from the console.</p>`;
  try {
    const within = <T>(p: Promise<T>): Promise<T> =>
      Promise.race([p, new Promise<T>((_, no) => setTimeout(() => no(new Error('timeout')), 2000).unref())]);
    const [counts, workers] = await Promise.all([
      within(ctx.queue.getJobCounts('waiting', 'active', 'delayed', 'failed')),
      within(ctx.queue.getWorkersCount()),
    ]);
    return html`<dl class="facts">
      <dt>Queue waiting</dt>
      <dd id="queue-waiting">${counts.waiting ?? 0}</dd>
      <dt>Active</dt>
      <dd>${counts.active ?? 0}</dd>
      <dt>Delayed (retries)</dt>
      <dd>${counts.delayed ?? 0}</dd>
      <dt>Workers alive</dt>
      <dd id="workers-alive">${workers}</dd>
    </dl>`;
  } catch (err) {
    return html`<p class="note">Queue: ${(err as Error).message}</p>`;
  }
}

export function registerRunsPages(app: FastifyInstance, ctx: ConsoleContext): void {
  app.get('/', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const since = dateParam(q.since, 'since') ?? new Date(Date.now() - 24 * 3600_000);
    const [o, queue, alerts] = await Promise.all([
      overview(ctx.pool, since),
      queueState(ctx),
      listAlerts(ctx.pool),
    ]);
    const body = html` <form method="get" action="/" class="filters">
        <label
          >Since (UTC) <input name="since" value="${when(since).replace(' ', 'T').slice(0, 16)}"
        /></label>
        <button type="submit">Show</button>
      </form>
      <section>
        <h2>Runs since ${when(since)}</h2>
        <ul class="counts">
          ${STATUSES.map(
            (s) =>
              html`<li>
                <a href="/runs${query({ status: s, from: since.toISOString() })}"
                  >${status(s)} <strong data-count="${s}">${o.byStatus[s] ?? 0}</strong></a
                >
              </li>`,
          )}
        </ul>
      </section>
      <section id="failed">
        <h2>Failed</h2>
        ${runsTable(o.failed)}
      </section>
      <section>
        <h2>Queued and running</h2>
        ${runsTable(o.active)}
      </section>
      <section>
        <h2>Queue and workers</h2>
        ${queue}
      </section>
      <section>
        <h2>Open alerts</h2>
        ${alertsTable(alerts)}
      </section>`;
    return reply.type('text/html; charset=utf-8').send(page(req, ctx.assets, 'Overview', body));
  });

  app.get('/runs', async (req: FastifyRequest, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const filter: RunFilter = {
      name: q.name || undefined,
      kind: q.kind === 'job' || q.kind === 'pipeline' ? q.kind : undefined,
      status: q.status && STATUSES.includes(q.status) ? q.status : undefined,
      who: q.who || undefined,
      from: dateParam(q.from, 'from'),
      to: dateParam(q.to, 'to'),
      before: q.before && /^\d+$/.test(q.before) ? Number(q.before) : undefined,
    };
    const { rows, more } = await findRuns(ctx.pool, filter, PAGE_SIZE);
    const keep = { name: q.name, kind: q.kind, status: q.status, who: q.who, from: q.from, to: q.to };
    const chart = filter.name ? historyChart(filter.name, await history(ctx.pool, filter.name)) : null;
    const body = html` <form method="get" action="/runs" class="filters">
        <label>Job or pipeline <input name="name" value="${q.name ?? ''}" /></label>
        <label
          >Kind
          <select name="kind">
            <option value="">any</option>
            ${['job', 'pipeline'].map((k) => html`<option ${q.kind === k ? 'selected' : ''}>${k}</option>`)}
          </select></label
        >
        <label
          >Status
          <select name="status">
            <option value="">any</option>
            ${STATUSES.map((s) => html`<option ${q.status === s ? 'selected' : ''}>${s}</option>`)}
          </select></label
        >
        <label>Who <input name="who" value="${q.who ?? ''}" /></label>
        <label>From (UTC) <input name="from" value="${q.from ?? ''}" placeholder="2026-11-30" /></label>
        <label>To <input name="to" value="${q.to ?? ''}" placeholder="2026-12-01" /></label>
        <button type="submit">Filter</button>
      </form>
      ${chart} ${runsTable(rows)}
      <nav class="pages">
        ${filter.before ? html`<a href="/runs${query(keep)}">Newest</a>` : null}
        ${more ? html`<a rel="next" href="/runs${query({ ...keep, before: rows[rows.length - 1]!.id })}">Older →</a>` : null}
      </nav>`;
    return reply.type('text/html; charset=utf-8').send(page(req, ctx.assets, 'Runs', body));
  });
}
