import type { FastifyInstance } from 'fastify';
import { pendingApprovals } from '../../approvals/approvals.js';
import { requireRole } from '../auth.js';
import type { ConsoleContext } from '../context.js';
import { html, when } from '../html.js';
import { page } from '../layout.js';

/**
 * Runs awaiting approval (segregation of duties), for users with the approver role: who asked for
 * what, until when, and the dry run the approver is asked to check. Deciding stays with
 * `erp approve` / `erp reject`, which enforce that the approver is not the requester.
 */
export function registerApprovalsPage(app: FastifyInstance, ctx: ConsoleContext): void {
  app.get('/approvals', async (req, reply) => {
    requireRole(req, 'approver');
    const rows = await pendingApprovals(ctx.pool);
    const body =
      rows.length === 0
        ? html`<p class="note">No run awaits approval.</p>`
        : html`<p class="note">
              Approve with <code>erp approve RUN</code> or end with <code>erp reject RUN</code>; the requester
              cannot approve their own run.
            </p>
            <table>
              <thead>
                <tr>
                  <th>Run</th>
                  <th>Job</th>
                  <th>Parameters</th>
                  <th>Requested by</th>
                  <th>Requested (UTC)</th>
                  <th>Expires (UTC)</th>
                  <th>Dry run</th>
                </tr>
              </thead>
              <tbody>
                ${rows.map(
                  (r) =>
                    html`<tr>
                      <td><a href="/runs/${r.run_id}">${r.run_id}</a></td>
                      <td>${r.name}</td>
                      <td>${Object.entries(r.params).map(([k, v]) => html`${k}=${String(v)} `)}</td>
                      <td>${r.requested_by}</td>
                      <td>${when(r.requested_at)}</td>
                      <td>${r.expires_at ? when(r.expires_at) : 'never'}</td>
                      <td>
                        <details>
                          <summary>show</summary>
                          <pre>${r.dry_run}</pre>
                        </details>
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>`;
    return reply.type('text/html; charset=utf-8').send(page(req, ctx.assets, 'Approvals', body));
  });
}
