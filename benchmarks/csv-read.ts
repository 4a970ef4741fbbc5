import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCsvFormat } from '../src/stages/format-csv.js';
import { csvFormatSchema } from '../src/stages/format-csv.js';
import { generateCsv } from './generate.js';

/**
 * The CSV format reader alone (decode + tokenize + batch), no database: the part of a load that
 * strict decoding touches. `npx tsx benchmarks/csv-read.ts [rows] [repeats]` prints the best of
 * `repeats` passes over the same generated file, in wall and in CPU seconds (the CPU figure holds
 * up better on a shared machine), so figures from two commits compare directly.
 */
async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 1_000_000);
  const repeats = Number(process.argv[3] ?? 5);
  const work = await mkdtemp(path.join(tmpdir(), 'erp-csv-read-'));
  try {
    const file = path.join(work, 'bench.csv');
    await generateCsv(file, rows);
    const format = createCsvFormat(csvFormatSchema.parse({ kind: 'csv' }));
    let best = Infinity;
    let bestCpu = Infinity;
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      let n = 0;
      const input = createReadStream(file, { highWaterMark: 1 << 18 });
      for await (const batch of format.read(input, 'bench.csv', () => undefined)) n += batch.rows.length;
      const s = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
      if (n !== rows) throw new Error(`read ${n} rows, expected ${rows}`);
      best = Math.min(best, s);
    }
    console.log(
      `csv format read, ${rows.toLocaleString('en')} rows: best of ${repeats} ${best.toFixed(3)} s, ${Math.round(rows / best).toLocaleString('en')} rows/s; CPU ${bestCpu.toFixed(3)} s, ${Math.round(rows / bestCpu).toLocaleString('en')} rows per CPU second`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
