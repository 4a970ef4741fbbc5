import type { FastifyInstance, FastifyRequest } from 'fastify';
import { describeError } from '../../errors.js';
import { ediStatus } from '../../edi/status.js';
import { listPartnerNames, loadAnyPartner, type AnyPartner, type Partner } from '../../partners/profile.js';
import { latestTick, loadSchedules, nextTicks, tickId, ticksBetween } from '../../runner/scheduler.js';
import { requireRole } from '../auth.js';
import type { ConsoleContext } from '../context.js';
import { html, oneLine, query, when, type Safe } from '../html.js';
import { page, postForm, can } from '../layout.js';
import { findFiles, ticksWithRuns } from '../queries.js';
import { triggerNow } from '../run-actions.js';

/** Schedules, partners and EDI, and the file ledger. */

/** How far back the schedules page looks for missed ticks. */
const MISSED_WINDOW_MS = 7 * 24 * 3600_000;

const runLink = (r: { id: number; status: string } | undefined): Safe =>
  r
    ? html`<a href="/runs/${r.id}">run ${r.id}</a> <span class="status status-${r.status}">${r.status}</span>`
    : html`—`;

function sftpFingerprints(p: AnyPartner): string {
  if (p.sftp.host_key_sha256) return p.sftp.host_key_sha256.join(', ');
  return p.sftp.host_key_sha256_env ? `from $${p.sftp.host_key_sha256_env}` : '—';
}

export function registerOtherPages(app: FastifyInstance, ctx: ConsoleContext): void {
  app.get('/schedules', async (req, reply) => {
    const now = new Date();
    const entries = await loadSchedules(ctx.home);
    const rows = [];
    for (const e of entries) {
      const last = latestTick(e, now);
      const window = ticksBetween(e, new Date(now.getTime() - MISSED_WINDOW_MS), now, 500);
      const runs = await ticksWithRuns(
        ctx.pool,
        window.map((t) => tickId(e, t)),
      );
      const missed = window.filter((t) => !runs.has(tickId(e, t)));
      rows.push({ e, last, lastRun: runs.get(tickId(e, last)), missed, next: nextTicks(e, now, 3) });
    }
    const operator = can(req, 'operator');
    const body = html`${
        rows.length === 0
          ? html`<p class="note">No job declares a schedule.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th>Schedule</th>
                  <th>Cron</th>
                  <th>Time zone</th>
                  <th>Next (UTC)</th>
                  <th>Last tick</th>
                  <th>Its run</th>
                  <th>Missed ticks (7 days)</th>
                  <th></th>
                </tr>
              </thead>
              <tbody>
                ${rows.map(
                  (r) =>
                    html`<tr>
                      <td>${r.e.job.name}#${r.e.index}</td>
                      <td><code>${r.e.schedule.cron}</code></td>
                      <td>${r.e.schedule.timezone}</td>
                      <td>${r.next.map((d) => html`${when(d)}<br />`)}</td>
                      <td>${when(r.last)}</td>
                      <td>${runLink(r.lastRun)}</td>
                      <td>
                        ${r.missed.length === 0 ? 'none' : html`${r.missed.length}: ${r.missed.slice(-3).map((d) => html`${when(d)} `)}`}
                      </td>
                      <td>
                        ${operator ? postForm(req, `/schedules/${encodeURIComponent(r.e.job.name)}/${r.e.index}/trigger`, 'Trigger now') : null}
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
      <p class="note">
        A missed tick is one with no run: no scheduler ran then, and no <code>catch_up</code> made it up.
      </p>`;
    return reply.type('text/html; charset=utf-8').send(page(req, ctx.assets, 'Schedules', body));
  });

  app.post('/schedules/:job/:index/trigger', async (req: FastifyRequest, reply) => {
    requireRole(req, 'operator');
    const { job, index } = req.params as { job: string; index: string };
    const id = await triggerNow(
      { pool: ctx.pool, home: ctx.home, queue: ctx.queue, user: req.session!.user, address: req.ip },
      job,
      `${job}#${index}`,
    );
    return reply.redirect(`/runs/${id}`, 303);
  });

  app.get('/partners', async (req, reply) => {
    const partners: AnyPartner[] = [];
    const broken: { name: string; error: string }[] = [];
    for (const name of await listPartnerNames(ctx.home)) {
      try {
        partners.push(await loadAnyPartner(ctx.home, name));
      } catch (err) {
        broken.push({ name, error: oneLine(describeError(err), 300) });
      }
    }
    const trading = partners.filter((p): p is Partner => p.x12 !== undefined && p.customer_no !== undefined);
    const status = await ediStatus(ctx.pool, trading, { limit: 50 });
    const { rows: numbers } = await ctx.pool.query<{
      partner: string;
      isa13: string;
      gs06: string;
      st02: string;
      updated_at: Date;
    }>(
      'SELECT partner, isa13::text, gs06::text, st02::text, updated_at FROM edi.control_numbers ORDER BY partner',
    );
    const body = html` <section>
        <h2>Partners</h2>
        <table>
          <thead>
            <tr>
              <th>Partner</th>
              <th>SFTP</th>
              <th>Host key (SHA-256)</th>
              <th>X12</th>
              <th>Ack within</th>
            </tr>
          </thead>
          <tbody>
            ${partners.map(
              (p) =>
                html`<tr>
                  <td>${p.name}</td>
                  <td>${p.sftp.host ?? `$${p.sftp.host_env ?? ''}`}</td>
                  <td><code>${sftpFingerprints(p)}</code></td>
                  <td>${p.x12 ? `${p.x12.version} ${p.x12.ack}` : '—'}</td>
                  <td>${p.x12 ? `${p.x12.ack_overdue_hours} h` : '—'}</td>
                </tr>`,
            )}
            ${broken.map(
              (b) =>
                html`<tr>
                  <td>${b.name}</td>
                  <td colspan="4" class="error-line">${b.error}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>
      <section id="overdue">
        <h2>Acknowledgments overdue</h2>
        ${
          status.overdue.length === 0
            ? html`<p class="note">None.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>Partner</th>
                    <th>ISA13</th>
                    <th>File</th>
                    <th>Sent (UTC)</th>
                    <th>Waiting</th>
                  </tr>
                </thead>
                <tbody>
                  ${status.overdue.map(
                    (o) =>
                      html`<tr>
                        <td>${o.partner}</td>
                        <td>${o.isa13}</td>
                        <td>${o.fileName}</td>
                        <td>${when(o.sentAt)}</td>
                        <td>${o.hoursWaiting.toFixed(1)} h</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
      <section>
        <h2>Interchanges in and out</h2>
        ${
          status.recent.length === 0
            ? html`<p class="note">None yet.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>When (UTC)</th>
                    <th>Dir</th>
                    <th>Partner</th>
                    <th>ISA13</th>
                    <th>Status</th>
                    <th>Sets</th>
                    <th>Ack ISA13</th>
                    <th>File</th>
                    <th>Message</th>
                  </tr>
                </thead>
                <tbody>
                  ${status.recent.map(
                    (i) =>
                      html`<tr>
                        <td>${when(i.at)}</td>
                        <td>${i.direction}</td>
                        <td>${i.partner}</td>
                        <td>${i.isa13}</td>
                        <td>${i.status}</td>
                        <td class="num">${i.sets}</td>
                        <td>${i.ackIsa13 ?? '—'}</td>
                        <td>${i.fileName}</td>
                        <td>${oneLine(i.message)}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
      <section>
        <h2>Inbound files that could not be read (7 days)</h2>
        ${
          status.failedFiles.length === 0
            ? html`<p class="note">None.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Partner</th>
                    <th>File</th>
                    <th>Error</th>
                    <th>Moved to</th>
                  </tr>
                </thead>
                <tbody>
                  ${status.failedFiles.map(
                    (f) =>
                      html`<tr>
                        <td>${when(f.at)}</td>
                        <td>${f.partner}</td>
                        <td>${f.fileName}</td>
                        <td>${oneLine(f.error)}</td>
                        <td>${f.movedTo ?? '—'}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
        <p class="note">
          Held interchanges and their reprocessing show here once the EDI exceptions feature records them.
        </p>
      </section>
      <section>
        <h2>Control numbers (last used)</h2>
        ${
          numbers.length === 0
            ? html`<p class="note">None allocated yet.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th>Partner</th>
                    <th>ISA13</th>
                    <th>GS06</th>
                    <th>ST02</th>
                    <th>Updated</th>
                  </tr>
                </thead>
                <tbody>
                  ${numbers.map(
                    (n) =>
                      html`<tr>
                        <td>${n.partner}</td>
                        <td>${n.isa13}</td>
                        <td>${n.gs06}</td>
                        <td>${n.st02}</td>
                        <td>${when(n.updated_at)}</td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>`;
    return reply.type('text/html; charset=utf-8').send(page(req, ctx.assets, 'Partners & EDI', body));
  });

  app.get('/files', async (req, reply) => {
    const q = String((req.query as Record<string, unknown>).q ?? '')
      .trim()
      .slice(0, 200);
    const rows = await findFiles(ctx.pool, q);
    const body = html` <form method="get" action="/files" class="filters">
        <label>File name or SHA-256 <input name="q" value="${q}" size="70" /></label
        ><button type="submit">Find</button>
      </form>
      ${
        rows.length === 0
          ? html`<p class="note">No file in the ledger matches.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th>File</th>
                  <th>Pipeline</th>
                  <th>SHA-256</th>
                  <th class="num">Bytes</th>
                  <th>Loaded by</th>
                  <th>When (UTC)</th>
                  <th class="num">Rows</th>
                </tr>
              </thead>
              <tbody>
                ${rows.map(
                  (f) =>
                    html`<tr>
                      <td>${f.file}</td>
                      <td>${f.pipeline}</td>
                      <td>
                        <code><a href="/files${query({ q: f.sha256 })}">${f.sha256.slice(0, 16)}…</a></code>
                      </td>
                      <td class="num">${f.size_bytes}</td>
                      <td><a href="/runs/${f.run_id}">run ${f.run_id}</a></td>
                      <td>${when(f.loaded_at)}</td>
                      <td class="num">${f.rows_loaded}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }`;
    return reply.type('text/html; charset=utf-8').send(page(req, ctx.assets, 'Files', body));
  });
}
