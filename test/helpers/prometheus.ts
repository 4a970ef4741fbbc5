import parsePrometheusTextFormat, { type Family } from 'parse-prometheus-text-format';

/**
 * A scrape of /metrics. The whole text goes through parse-prometheus-text-format (it throws on a
 * line that is not valid exposition format, and gives each family's type and help); samples are
 * looked up from the sample lines themselves, because that parser folds a labelled histogram's
 * series into one and drops their labels.
 */
export interface Scrape {
  families: Family[];
  /** Every sample line: its full name (`x_count`, `x_bucket` included), labels and value. */
  samples: { name: string; labels: Record<string, string>; value: number }[];
  /** The value of the sample `name` whose labels include `labels`, or 0 when there is none. */
  value(name: string, labels?: Record<string, string>): number;
  /** Whether a sample `name` with `labels` exists. */
  has(name: string, labels?: Record<string, string>): boolean;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;

export function parseScrape(text: string): Scrape {
  const families = parsePrometheusTextFormat(text);
  const samples: Scrape['samples'] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL))
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    families,
    samples,
    value: (name, labels) => find(name, labels)?.value ?? 0,
    has: (name, labels) => find(name, labels) !== undefined,
  };
}

/** GETs `url` and parses it. */
export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return parseScrape(await res.text());
}
