/**
 * One run: steps with timings, files with counts and their reject reports (CSV and XLSX), the
 * first rejects, who ran it from where with which parameters, the console actions that touched
 * it, live progress over server-sent events, and the operator's actions.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { jobIdOf } from '../../jobs/job-id.js';
import { actionsOfRun } from '../actions.js';
import { HttpError, requireRole } from '../auth.js';
import { historyChart } from '../chart.js';
import type { ConsoleContext } from '../context.js';
import { duration, html, when } from '../html.js';
import { can, page, postForm } from '../layout.js';
import { runFile } from '../../runs/store/files.js';
import { history, runDetail, runSnapshot } from '../../runs/store/console.js';
import { reportPath, writeRejectsXlsx } from '../reject-report.js';
import { cancelRun, reloadFile, rerun, type Actor } from '../run-actions.js';

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
/** How often the event stream reads the run's record while it is live. */
const POLL_MS = 1000;

function idParam(req: FastifyRequest, key = 'id'): number {
  const v = (req.params as Record<string, string>)[key];
  if (!v || !/^\d{1,15}$/.test(v)) throw new HttpError(404, 'no such run');
  return Number(v);
}

function actor(ctx: ConsoleContext, req: FastifyRequest): Actor {
  return { pool: ctx.pool, home: ctx.home, queue: ctx.queue, user: req.session!.user, address: req.ip };
}

async function download(ctx: ConsoleContext, req: FastifyRequest, reply: FastifyReply, kind: 'csv' | 'xlsx') {
  const runId = idParam(req);
  const fileId = idParam(req, 'file');
  const report = await reportPath(
    ctx.dataDir,
    (await runFile(ctx.pool, runId, fileId))?.reject_report ?? null,
  );
  if (!report) throw new HttpError(404, 'this file has no reject report');
  const base = `run-${runId}-${path.basename(report, '.csv')}`.replace(/[^A-Za-z0-9._-]/g, '_');
  if (kind === 'csv') {
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="${base}.csv"`)
      .send(createReadStream(report));
  }
  const out = new PassThrough();
  writeRejectsXlsx(report, out).catch((err: Error) => {
    ctx.log.warn({ err, runId, fileId }, 'console: the XLSX reject report failed');
    out.destroy(err);
  });
  return reply
    .type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
    .header('content-disposition', `attachment; filename="${base}.xlsx"`)
    .send(out);
}

export function registerRunPage(app: FastifyInstance, ctx: ConsoleContext): void {
  app.get('/runs/:id', async (req, reply) => {
    const id = idParam(req);
    const d = await runDetail(ctx.pool, id);
    if (!d) throw new HttpError(404, `no run ${id}`);
    const { run } = d;
    const [actions, points] = await Promise.all([actionsOfRun(ctx.pool, id), history(ctx.pool, run.name)]);
    const live = !FINAL.has(run.status);
    const operator = can(req, 'operator');
    const body = html` <section
        class="run"
        id="run"
        data-run="${id}"
        data-live="${live ? `/runs/${id}/events` : ''}"
      >
        <dl class="facts">
          <dt>${run.kind}</dt>
          <dd>
            <a href="/runs?name=${encodeURIComponent(run.name)}">${run.name}</a
            >${run.dry_run ? ' (dry run)' : ''}
          </dd>
          <dt>Status</dt>
          <dd><span class="status status-${run.status}" data-field="status">${run.status}</span></dd>
          <dt>Parameters</dt>
          <dd>
            <code>${JSON.stringify(run.params)}</code>
            ${Object.keys(run.options).length > 0 ? html` options <code>${JSON.stringify(run.options)}</code>` : null}
          </dd>
          <dt>Requested by</dt>
          <dd>${run.requested_by} on ${run.host} (${run.trigger})</dd>
          <dt>Created</dt>
          <dd>${when(run.created_at)}</dd>
          <dt>Started · finished</dt>
          <dd>
            ${when(run.started_at)} · ${when(run.finished_at)} (${duration(run.started_at, run.finished_at)})
          </dd>
          <dt>Rows</dt>
          <dd>
            read <span data-field="rows_read">${run.rows_read}</span>, loaded
            <span data-field="rows_loaded">${run.rows_loaded}</span>, rejected
            <span data-field="rows_rejected">${run.rows_rejected}</span>; files loaded
            <span data-field="files_loaded">${run.files_loaded}</span>, skipped
            <span data-field="files_skipped">${run.files_skipped}</span>
          </dd>
          <dt>Live</dt>
          <dd data-field="progress">${live ? 'waiting for progress…' : '—'}</dd>
        </dl>
        ${
          run.error
            ? html`<h2>Error</h2>
                <pre class="error" id="run-error">${run.error}</pre>`
            : null
        }
        <div class="actions">
          ${operator && live ? postForm(req, `/runs/${id}/cancel`, 'Cancel run') : null}
          ${operator && !live ? postForm(req, `/runs/${id}/rerun`, 'Rerun with the same parameters') : null}
        </div>
      </section>
      <section>
        <h2>Steps</h2>
        <table>
          <thead>
            <tr>
              <th>#</th>
              <th>Kind</th>
              <th>Name</th>
              <th>Status</th>
              <th>Started</th>
              <th>Duration</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            ${d.steps.map(
              (s) =>
                html`<tr data-step="${s.position}">
                  <td>${s.position}</td>
                  <td>${s.kind}</td>
                  <td>${s.name}</td>
                  <td><span class="status status-${s.status}" data-field="step-status">${s.status}</span></td>
                  <td>${when(s.started_at)}</td>
                  <td>${duration(s.started_at, s.finished_at)}</td>
                  <td>${s.error ?? ''}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>
      <section>
        <h2>Files</h2>
        ${
          d.files.length === 0
            ? html`<p class="note">No files recorded.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>File</th>
                    <th>Pipeline</th>
                    <th>Status</th>
                    <th class="num">Read</th>
                    <th class="num">Loaded</th>
                    <th class="num">Rejected</th>
                    <th>Reject report</th>
                    <th>Message</th>
                    <th></th>
                  </tr>
                </thead>
                <tbody>
                  ${d.files.map(
                    (f) =>
                      html`<tr>
                        <td title="${f.sha256 ?? ''}">${f.file}</td>
                        <td>${f.pipeline}</td>
                        <td>${f.status}</td>
                        <td class="num">${f.rows_read}</td>
                        <td class="num">${f.rows_loaded}</td>
                        <td class="num">${f.rows_rejected}</td>
                        <td>
                          ${
                            f.reject_report
                              ? html`<a class="download" href="/runs/${id}/files/${f.id}/rejects.csv">CSV</a>
                                  <a class="download" href="/runs/${id}/files/${f.id}/rejects.xlsx">XLSX</a>`
                              : '—'
                          }
                        </td>
                        <td>${f.message ?? ''}</td>
                        <td>
                          ${operator && !live ? postForm(req, `/runs/${id}/files/${f.id}/reload`, 'Reload (--force)') : null}
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
      <section id="rejects">
        <h2>First rejects</h2>
        ${
          d.rejects.length === 0
            ? html`<p class="note">No rejects.</p>`
            : html`<table class="rejects">
                <thead>
                  <tr>
                    <th>File</th>
                    <th class="num">Line</th>
                    <th>Field</th>
                    <th>Value</th>
                    <th>Reason</th>
                  </tr>
                </thead>
                <tbody>
                  ${d.rejects.map(
                    (r) =>
                      html`<tr>
                        <td>${r.file}</td>
                        <td class="num">${r.line ?? ''}</td>
                        <td>${r.field ?? ''}</td>
                        <td class="value"><code>${r.value ?? ''}</code></td>
                        <td>${r.reason}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
      <section id="actions">
        <h2>Console actions on this run</h2>
        ${
          actions.length === 0
            ? html`<p class="note">None.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>When (UTC)</th>
                    <th>Who</th>
                    <th>From</th>
                    <th>Action</th>
                    <th>Run</th>
                  </tr>
                </thead>
                <tbody>
                  ${actions.map(
                    (a) =>
                      html`<tr class="action">
                        <td>${when(a.at)}</td>
                        <td>${a.actor}</td>
                        <td>${a.address}</td>
                        <td>${a.action}</td>
                        <td>
                          ${a.newRunId && a.newRunId !== id ? html`<a href="/runs/${a.newRunId}">run ${a.newRunId}</a>` : a.runId === id ? 'this run' : html`started this run`}
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
      <section>
        <h2>Last runs of ${run.name}</h2>
        ${historyChart(run.name, points)}
      </section>`;
    return reply.type('text/html; charset=utf-8').send(page(req, ctx.assets, `Run ${id}`, body));
  });

  app.get('/runs/:id/files/:file/rejects.csv', (req, reply) => download(ctx, req, reply, 'csv'));
  app.get('/runs/:id/files/:file/rejects.xlsx', (req, reply) => download(ctx, req, reply, 'xlsx'));

  // Live progress: the run's record every second, and the worker's progress events as they come.
  app.get('/runs/:id/events', (req, reply) => {
    const id = idParam(req);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    let closed = false;
    const send = (event: string, data: unknown): void => {
      if (!closed) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const jobId = jobIdOf(id);
    const onProgress = ({ jobId: j, data }: { jobId: string; data: unknown }): void => {
      if (j === jobId) send('progress', data);
    };
    ctx.events?.on('progress', onProgress);
    const stop = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      ctx.events?.off('progress', onProgress);
      res.end();
    };
    const tick = async (): Promise<void> => {
      try {
        const snap = await runSnapshot(ctx.pool, id);
        if (!snap) return stop();
        send('run', snap);
        if (FINAL.has(String(snap.status))) stop();
      } catch (err) {
        ctx.log.debug({ err }, 'console: event stream read failed');
      }
    };
    const timer = setInterval(() => void tick(), POLL_MS);
    req.raw.on('close', stop);
    void tick();
  });

  const act =
    (fn: (a: Actor, id: number, req: FastifyRequest) => Promise<unknown>) =>
    async (req: FastifyRequest, reply: FastifyReply) => {
      requireRole(req, 'operator');
      const id = idParam(req);
      const result = await fn(actor(ctx, req), id, req);
      return reply.redirect(typeof result === 'number' ? `/runs/${result}` : `/runs/${id}`, 303);
    };
  app.post(
    '/runs/:id/cancel',
    act((a, id) => cancelRun(a, id)),
  );
  app.post(
    '/runs/:id/rerun',
    act((a, id) => rerun(a, id)),
  );
  app.post(
    '/runs/:id/files/:file/reload',
    act((a, id, req) => reloadFile(a, id, idParam(req, 'file'))),
  );
}
