/**
 * Server-side HTML with escaping by default: every value interpolated into {@link html} is escaped
 * unless it is itself the output of `html` (a {@link Safe}). There is no other way to put text in
 * a page, so a value from a file (`<script>…</script>` in a reject) always shows as text.
 */

/** Markup that is already safe: produced by {@link html} from escaped parts. */
export class Safe {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for an HTML element or a quoted attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

/** A value an `html` template accepts: text (escaped), markup, lists of either, or nothing. */
export type Part = Safe | string | number | bigint | boolean | null | undefined | Date | readonly Part[];

function render(v: Part): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Safe) return v.value;
  if (Array.isArray(v)) return (v as readonly Part[]).map(render).join('');
  if (v instanceof Date) return escapeHtml(v.toISOString());
  return escapeHtml(String(v));
}

/** The tagged template: `html\`<td>${value}</td>\`` escapes `value`. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Safe {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Safe(out);
}

/** A timestamp as `2026-11-30 22:05:13` (UTC), or a dash. */
export function when(d: Date | null | undefined): string {
  return d ? d.toISOString().slice(0, 19).replace('T', ' ') : '—';
}

/** A duration between two times, as `1.2 s` / `3 min 4 s`, or a dash. */
export function duration(from: Date | null | undefined, to: Date | null | undefined): string {
  if (!from || !to) return '—';
  const ms = to.getTime() - from.getTime();
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The first line of an error, shortened: what a list shows. */
export function oneLine(s: string | null | undefined, max = 160): string {
  if (!s) return '';
  const first = s.split('\n')[0]!;
  return first.length > max ? first.slice(0, max - 1) + '…' : first;
}

/** A query string from the set values of `params`. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
