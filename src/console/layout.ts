/**
 * The page frame every console page shares, and the static assets it links: a stylesheet and one
 * small script, read once from `assets/` beside this module (copied to dist/ by `npm run build`)
 * and served by the console itself with a content hash in the URL. No CDN, no inline script.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyRequest } from 'fastify';
import { html, type Part, type Safe } from './html.js';
import { ROLE_RANK, type Role } from './users.js';

/** An asset served at /assets/NAME. */
export interface Asset {
  body: Buffer;
  type: string;
  hash: string;
}

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** Reads the console's assets from the directory beside this module. */
export function loadAssets(): Map<string, Asset> {
  const dir = fileURLToPath(new URL('./assets/', import.meta.url));
  const out = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const ext = name.slice(name.lastIndexOf('.'));
    const type = TYPES[ext];
    if (!type) continue;
    const body = readFileSync(`${dir}/${name}`);
    out.set(name, { body, type, hash: createHash('sha256').update(body).digest('hex').slice(0, 12) });
  }
  return out;
}

/** True when the request's user has at least `role`. */
export function can(req: FastifyRequest, role: Role): boolean {
  return req.session !== null && ROLE_RANK[req.session.role] >= ROLE_RANK[role];
}

/** A POST form with the session's CSRF token: the only way the console's pages change anything. */
export function postForm(req: FastifyRequest, action: string, label: string, extra: Part = null): Safe {
  return html`<form method="post" action="${action}" class="inline">
    <input type="hidden" name="_csrf" value="${req.session?.csrf ?? ''}" />${extra}
    <button type="submit">${label}</button>
  </form>`;
}

const NAV: { href: string; label: string; role?: Role }[] = [
  { href: '/', label: 'Overview' },
  { href: '/runs', label: 'Runs' },
  { href: '/schedules', label: 'Schedules' },
  { href: '/partners', label: 'Partners & EDI' },
  { href: '/files', label: 'Files' },
  { href: '/approvals', label: 'Approvals', role: 'approver' },
  { href: '/queue', label: 'Queue', role: 'admin' },
];

/** A whole page: head with the hashed asset URLs, the navigation, the signed-in user, `body`. */
export function page(req: FastifyRequest, assets: Map<string, Asset>, title: string, body: Safe): string {
  const asset = (n: string): string => `/assets/${n}?v=${assets.get(n)?.hash ?? '0'}`;
  const s = req.session;
  const path = req.url.split('?')[0];
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · erp console</title>
        <link rel="stylesheet" href="${asset('console.css')}" />
        <script src="${asset('console.js')}" defer></script>
      </head>
      <body>
        <header>
          <a class="brand" href="/">erp console</a>
          ${
            s
              ? html`<nav>
                    ${NAV.filter((n) => !n.role || can(req, n.role)).map(
                      (n) =>
                        html`<a href="${n.href}" class="${n.href === path ? 'current' : ''}">${n.label}</a>`,
                    )}
                  </nav>
                  <span class="who">${s.user} <span class="role">${s.role}</span></span>
                  ${postForm(req, '/logout', 'Log out')}`
              : null
          }
        </header>
        <main>
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html>`.value;
}
