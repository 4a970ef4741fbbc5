// The console's one script: live progress on a run page (server-sent events). Pages work without
// it; it only writes text (textContent), never markup, so nothing it receives can run.
'use strict';

const FINAL = ['succeeded', 'failed', 'cancelled'];

function follow(section) {
  const url = section.dataset.live;
  if (!url || typeof EventSource === 'undefined') return;
  const field = (name) => section.querySelector(`[data-field="${name}"]`);
  const source = new EventSource(url);
  source.addEventListener('run', (e) => {
    const run = JSON.parse(e.data);
    for (const key of ['rows_read', 'rows_loaded', 'rows_rejected', 'files_loaded', 'files_skipped']) {
      const el = field(key);
      if (el) el.textContent = String(run[key]);
    }
    const status = field('status');
    if (status && status.textContent !== run.status) {
      status.textContent = run.status;
      status.className = `status status-${run.status}`;
    }
    for (const step of run.steps) {
      const el = document.querySelector(
        `tr[data-step="${Number(step.position)}"] [data-field="step-status"]`,
      );
      if (el) {
        el.textContent = step.status;
        el.className = `status status-${step.status}`;
      }
    }
    if (FINAL.includes(run.status)) {
      source.close();
      // The finished run's page has its files, rejects and actions: show it.
      setTimeout(() => window.location.reload(), 300);
    }
  });
  source.addEventListener('progress', (e) => {
    const p = JSON.parse(e.data);
    const el = field('progress');
    if (!el || !p) return;
    const rows = p.rows === undefined ? '' : `, ${p.rows} rows`;
    el.textContent = `step ${p.step}/${p.steps} ${p.kind} ${p.name}: ${p.state}${rows}`;
  });
}

document.addEventListener('DOMContentLoaded', () => {
  const run = document.getElementById('run');
  if (run) follow(run);
});
