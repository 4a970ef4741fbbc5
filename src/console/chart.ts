/**
 * A job's last runs as two small bar charts, duration and rows, rendered server-side as inline
 * SVG: no chart library, no script, and it obeys the page's Content Security Policy (presentation
 * attributes, not style). A failed run's bar is red; each bar's title names the run.
 */
import { html, type Safe } from './html.js';
import type { HistoryPoint } from '../runs/store/console.js';

const W = 320;
const H = 64;

function bars(points: HistoryPoint[], value: (p: HistoryPoint) => number, unit: string, label: string): Safe {
  const max = Math.max(1e-9, ...points.map(value));
  const step = W / Math.max(points.length, 1);
  const barW = Math.max(1, step - 2);
  return html`<figure class="chart">
    <svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${label}">
      <line x1="0" y1="${H - 0.5}" x2="${W}" y2="${H - 0.5}" stroke="#999" stroke-width="1" />
      ${points.map((p, i) => {
        const h = Math.max(1, Math.round((value(p) / max) * (H - 4)));
        const fill = p.status === 'failed' ? '#c0392b' : p.status === 'cancelled' ? '#999' : '#2e7d32';
        return html`<rect
          x="${(i * step + 1).toFixed(1)}"
          y="${H - h}"
          width="${barW.toFixed(1)}"
          height="${h}"
          fill="${fill}"
          ><title>
            run ${p.id} (${p.status}): ${value(p).toLocaleString('en-US', { maximumFractionDigits: 2 })}
            ${unit}
          </title></rect
        >`;
      })}
    </svg>
    <figcaption>
      ${label} · max ${max.toLocaleString('en-US', { maximumFractionDigits: 2 })} ${unit}
    </figcaption>
  </figure>`;
}

/** Duration and rows of `points` (oldest first), or a note when there are none. */
export function historyChart(name: string, points: HistoryPoint[]): Safe {
  if (points.length === 0) return html`<p class="note">No finished runs of ${name} yet.</p>`;
  return html`<div class="charts">
    ${bars(points, (p) => p.seconds ?? 0, 's', `${name}: duration of the last ${points.length} runs`)}
    ${bars(points, (p) => p.rows, 'rows', `${name}: rows of the last ${points.length} runs`)}
  </div>`;
}
