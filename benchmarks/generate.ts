import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

/** Columns of the benchmark table, in file order. */
export const BENCH_COLUMNS = [
  'id',
  'sku',
  'description',
  'category',
  'price',
  'qty',
  'weight_kg',
  'created_on',
  'updated_at',
  'active',
  'notes',
  'uom',
] as const;

export const BENCH_DDL = `(
  id bigint NOT NULL, sku text NOT NULL, description text, category text NOT NULL,
  price numeric(12,2) NOT NULL, qty integer NOT NULL, weight_kg numeric(10,3), created_on date NOT NULL,
  updated_at timestamptz, active boolean NOT NULL, notes text, uom text NOT NULL)`;

const CATEGORIES = ['RAW', 'WIP', 'FINISHED', 'SERVICE', 'SPARE'];
const WORDS = ['steel', 'bolt', 'M8', 'zinc', 'plated', 'hex', 'nut', 'washer', 'bracket', 'pallet', 'resin'];
/** The same vocabulary with multi-byte UTF-8 (2, 3 and 4 bytes) in most words. */
const WORDS_UTF8 = [
  'Stahl',
  'Schraube',
  'M8',
  'Zink',
  'verzinkt',
  'Sechskant',
  'Mutter',
  'Unterlegscheibe',
  'Halterung',
  'Palette',
  'Harz',
].map((w, i) => (i % 4 === 0 ? w : i % 4 === 1 ? `${w}ü` : i % 4 === 2 ? `${w}€` : `${w}😀`));

/**
 * Writes `rows` rows of deterministic item data with quoted fields and NULLs, ids from `firstId`
 * on (other values do not depend on it). `utf8`: descriptions hold multi-byte characters (ü, €, an
 * emoji) instead of ASCII only.
 */
export async function generateCsv(
  file: string,
  rows: number,
  opts: { utf8?: boolean; firstId?: number } = {},
): Promise<void> {
  const words = opts.utf8 ? WORDS_UTF8 : WORDS;
  const firstId = opts.firstId ?? 1;
  const out = createWriteStream(file);
  out.write(BENCH_COLUMNS.join(',') + '\n');
  let seed = 42;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  let buf = '';
  for (let i = firstId; i < firstId + rows; i++) {
    const w1 = words[rnd(words.length)]!;
    const w2 = words[rnd(words.length)]!;
    const desc = rnd(4) === 0 ? `"${w1}, ${w2} ""grade ${rnd(9)}"""` : `${w1} ${w2}`;
    const weight = rnd(5) === 0 ? '' : `${rnd(1000)}.${String(rnd(1000)).padStart(3, '0')}`;
    const month = String(1 + rnd(12)).padStart(2, '0');
    const day = String(1 + rnd(28)).padStart(2, '0');
    const notes = rnd(3) === 0 ? `"note ${i}, checked"` : '';
    buf +=
      `${i},SKU-${String(i).padStart(8, '0')},${desc},${CATEGORIES[rnd(5)]},${rnd(100000)}.${String(rnd(100)).padStart(2, '0')},` +
      `${rnd(5000)},${weight},2026-${month}-${day},2026-${month}-${day}T${String(rnd(24)).padStart(2, '0')}:15:00Z,` +
      `${rnd(2) === 0 ? 'true' : 'false'},${notes},EA\n`;
    if (buf.length > 1 << 16) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await generateCsv(process.argv[2] ?? 'var/bench.csv', Number(process.argv[3] ?? 1_000_000));
}
