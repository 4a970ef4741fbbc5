import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CsvTokenizer, type Field } from '../src/csv/tokenizer.js';
import { BatchBuffer } from '../src/stages/batch-buffer.js';
import { createCsvFormat, csvFormatSchema } from '../src/stages/format-csv.js';
import { generateCsv } from './generate.js';

/**
 * The CSV format reader alone (decode + tokenize + batch), no database: the part of a load that
 * strict decoding touches, against the same reader as it was before strict decoding (a
 * non-fatal TextDecoder straight into the tokenizer, no checks) in the same run, on a file of ASCII
 * text and on one whose descriptions hold multi-byte UTF-8. The two readers alternate `repeats`
 * times over the same file; the best pass of each counts, in CPU seconds (steadier than wall time
 * on a shared machine) and in wall time. The issue asks for a ratio (strict / before) within ±5 %.
 *
 *   npx tsx benchmarks/csv-read.ts [rows] [repeats]
 */
export interface CsvReadFigures {
  label: string;
  rows: number;
  fileMb: number;
  /** Best CPU seconds of a pass: the reader today (strict decoding). */
  strictCpu: number;
  /** Best CPU seconds of a pass: the reader before strict decoding. */
  laxCpu: number;
  strictWall: number;
  laxWall: number;
  /** strict throughput / lax throughput, by CPU time. */
  ratio: number;
}

/** The reader before strict decoding (the format-csv of commit 9306f4b, minus the header checks). */
async function* readLax(input: Readable): AsyncGenerator<number> {
  const tokenizer = new CsvTokenizer({ delimiter: ',', quote: '"', maxRecordChars: 1 << 20 });
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let columns: string[] | null = null;
  const buffer = new BatchBuffer();
  const sink = {
    record(fields: Field[], line: number): void {
      if (columns === null) {
        columns = fields.map((f) => (f ?? '').trim());
        return;
      }
      if (fields.length !== columns.length) throw new Error(`line ${line}: ${fields.length} fields`);
      buffer.push(fields, line);
    },
    error(line: number, reason: string): void {
      throw new Error(`line ${line}: ${reason}`);
    },
  };
  for await (const chunk of input) {
    tokenizer.push(decoder.decode(chunk as Buffer, { stream: true }), sink);
    const batch = buffer.take(columns);
    if (batch) yield batch.rows.length;
  }
  tokenizer.push(decoder.decode(), sink);
  tokenizer.end(sink);
  const batch = buffer.take(columns);
  if (batch) yield batch.rows.length;
}

async function pass(file: string, strict: boolean): Promise<{ rows: number; wall: number; cpu: number }> {
  const format = createCsvFormat(csvFormatSchema.parse({ kind: 'csv' }));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let rows = 0;
  const input = createReadStream(file, { highWaterMark: 1 << 18 });
  if (strict) {
    const batches = format.read(input, 'bench.csv', (r) => {
      throw new Error(`unexpected reject: ${r.reason}`);
    });
    for await (const b of batches) rows += b.rows.length;
  } else {
    for await (const n of readLax(input)) rows += n;
  }
  const c = process.cpuUsage(c0);
  return { rows, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

/** Generates both files of `rows` rows and measures both readers on each. */
export async function benchCsvRead(rows: number, repeats = 5): Promise<CsvReadFigures[]> {
  const work = await mkdtemp(path.join(tmpdir(), 'erp-csv-read-'));
  try {
    const out: CsvReadFigures[] = [];
    for (const utf8 of [false, true]) {
      const file = path.join(work, utf8 ? 'utf8.csv' : 'ascii.csv');
      await generateCsv(file, rows, { utf8 });
      const best = { strictCpu: Infinity, laxCpu: Infinity, strictWall: Infinity, laxWall: Infinity };
      for (let i = 0; i < repeats; i++) {
        // Alternate which reader goes first, so neither always gets the warmer cache.
        for (const strict of i % 2 === 0 ? [true, false] : [false, true]) {
          const r = await pass(file, strict);
          if (r.rows !== rows) throw new Error(`read ${r.rows} rows, expected ${rows}`);
          const k = strict ? 'strict' : 'lax';
          best[`${k}Cpu`] = Math.min(best[`${k}Cpu`], r.cpu);
          best[`${k}Wall`] = Math.min(best[`${k}Wall`], r.wall);
        }
      }
      out.push({
        label: utf8 ? 'multi-byte UTF-8 text' : 'ASCII text',
        rows,
        fileMb: Math.round(((await stat(file)).size / 2 ** 20) * 10) / 10,
        ...best,
        ratio: best.laxCpu / best.strictCpu,
      });
    }
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The figures as `npm run bench` prints them (labels within run.ts's 44-character column). */
export function printCsvRead(figures: CsvReadFigures[], line: (label: string, value: string) => void): void {
  for (const f of figures) {
    const k = `${f.rows.toLocaleString('en')} rows ${f.label === 'ASCII text' ? 'ASCII' : 'multi-byte'}`;
    const rate = (s: number): string => `${Math.round(f.rows / s).toLocaleString('en')} rows/CPU s`;
    const times = (cpu: number, wall: number): string =>
      `(${cpu.toFixed(3)} s CPU, ${wall.toFixed(3)} s wall)`;
    line(`${k}, strict`, `${rate(f.strictCpu)} ${times(f.strictCpu, f.strictWall)}, ${f.fileMb} MB`);
    line(`${k}, before strict`, `${rate(f.laxCpu)} ${times(f.laxCpu, f.laxWall)}`);
    line(`${k}, ratio`, `${f.ratio.toFixed(3)} (issue 11 target ≥ 0.95)`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const rows = Number(process.argv[2] ?? 1_000_000);
  const repeats = Number(process.argv[3] ?? 5);
  printCsvRead(await benchCsvRead(rows, repeats), (l, v) => console.log(`${l.padEnd(44)} ${v}`));
}
