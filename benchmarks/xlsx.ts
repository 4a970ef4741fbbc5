/**
 * XLSX read throughput: our reader (batches of COPY-ready text) against exceljs's own streaming
 * WorkbookReader iterating rows and doing nothing with them, on the same generated workbook.
 * The workbook is generated, and each reader run, in a child process of its own. A peak RSS is the
 * child's VmHWM from /proc/self/status: getrusage's maxRSS (process.resourceUsage().maxRSS) keeps the
 * parent's high-water mark across fork+exec on Linux, so a child spawned by a 400 MB parent reports at
 * least 400 MB whatever it does; maxRSS is reported alongside.
 *
 *   npx tsx benchmarks/xlsx.ts 200000
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ExcelJS from 'exceljs';
import { createXlsxFormat, xlsxFormatSchema } from '../src/stages/format-xlsx.js';

/** Result of one comparison. */
export interface XlsxBenchResult {
  rows: number;
  fileMb: number;
  ourRowsPerSec: number;
  exceljsRowsPerSec: number;
  /** ourRowsPerSec / exceljsRowsPerSec; issue 11 asks for ≥ 1.5. */
  ratio: number;
  /** Peak RSS (VmHWM) of the child process running our reader. */
  peakRssMb: number;
  /** Peak RSS (VmHWM) of the child process running exceljs's reader. */
  exceljsPeakRssMb: number;
  /** process.resourceUsage().maxRSS of our reader's child (includes the parent's high-water mark). */
  maxRssMb: number;
  /** process.resourceUsage().maxRSS of exceljs's reader's child. */
  exceljsMaxRssMb: number;
}

interface ChildResult {
  rows: number;
  ms: number;
  /** Peak RSS of this process image (VmHWM), or maxRSS where /proc is missing. */
  peakRssMb: number;
  /** process.resourceUsage().maxRSS, which includes the parent's high-water mark. */
  maxRssMb: number;
}

const READER_OPTIONS = {
  sharedStrings: 'cache',
  styles: 'cache',
  hyperlinks: 'ignore',
  worksheets: 'emit',
} as const;

const WORDS = ['steel', 'bolt', 'M8', 'zinc', 'plated', 'hex', 'nut', 'washer', 'bracket', 'pallet', 'resin'];
const CATEGORIES = ['RAW', 'WIP', 'FINISHED', 'SERVICE', 'SPARE'];

/**
 * Writes `rows` item rows × 10 columns the way Excel stores them: strings in the shared-string
 * table (a bounded set, as in real item masters), numbers, dates, date-times, booleans.
 */
export async function generateXlsx(file: string, rows: number): Promise<void> {
  const out = createWriteStream(file);
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useStyles: true, useSharedStrings: true });
  const ws = wb.addWorksheet('Items');
  ws.columns = [
    { key: 'id' },
    { key: 'sku' },
    { key: 'description' },
    { key: 'category' },
    { key: 'price', style: { numFmt: '#,##0.00' } },
    { key: 'qty' },
    { key: 'created_on', style: { numFmt: 'yyyy-mm-dd' } },
    { key: 'updated_at', style: { numFmt: 'yyyy-mm-dd hh:mm:ss' } },
    { key: 'active' },
    { key: 'uom' },
  ];
  ws.addRow(ws.columns.map((c) => c.key)).commit();
  let seed = 42;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 1; i <= rows; i++) {
    const day = Date.UTC(2026, rnd(12), 1 + rnd(28));
    ws.addRow([
      i,
      `SKU-${String(i % 5000).padStart(8, '0')}`,
      `${WORDS[rnd(WORDS.length)]} ${WORDS[rnd(WORDS.length)]}`,
      CATEGORIES[rnd(5)],
      rnd(100000) / 100,
      rnd(5000),
      new Date(day),
      new Date(day + rnd(86400) * 1000),
      rnd(2) === 0,
      'EA',
    ]).commit();
    if (i % 10000 === 0 && out.writableNeedDrain)
      await new Promise<void>((r) => out.once('drain', () => r()));
  }
  ws.commit();
  await wb.commit();
}

async function runChild(kind: 'ours' | 'exceljs' | 'generate', file: string, rows = 0): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url);
  const args = self.endsWith('.ts') ? ['--import', 'tsx', self] : [self];
  const child = spawn(process.execPath, [...args, '--child', kind, file, String(rows)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`${kind} reader child exited with ${code}`);
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult;
}

/** This process's peak resident set (VmHWM), in MB; null without /proc. */
async function peakRssMb(): Promise<number | null> {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(await readFile('/proc/self/status', 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** Runs the child's part over `file` and prints its result as one JSON line. */
async function child(kind: string, file: string, generateRows: number): Promise<void> {
  const t0 = performance.now();
  let rows = 0;
  if (kind === 'generate') {
    await generateXlsx(file, generateRows);
    rows = generateRows;
  } else if (kind === 'exceljs') {
    const reader = new ExcelJS.stream.xlsx.WorkbookReader(createReadStream(file), READER_OPTIONS);
    for await (const sheet of reader) {
      for await (const _row of sheet) rows++;
    }
    rows--; // the header row
  } else {
    const format = createXlsxFormat(xlsxFormatSchema.parse({ kind: 'xlsx' }));
    for await (const batch of format.read(createReadStream(file), file, () => undefined))
      rows += batch.rows.length;
  }
  const ms = performance.now() - t0;
  const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  const result: ChildResult = { rows, ms, peakRssMb: (await peakRssMb()) ?? maxRssMb, maxRssMb };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Generates a workbook of `rows` rows and reads it with both readers, each in a child process. */
export async function benchXlsx(rows: number): Promise<XlsxBenchResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'erp-bench-xlsx-'));
  try {
    const file = path.join(dir, `items-${rows}.xlsx`);
    await runChild('generate', file, rows);
    const fileMb = Math.round(((await stat(file)).size / 2 ** 20) * 10) / 10;
    // exceljs first, ours second, then once more each; the better run of each counts.
    const e1 = await runChild('exceljs', file);
    const o1 = await runChild('ours', file);
    const e2 = await runChild('exceljs', file);
    const o2 = await runChild('ours', file);
    for (const r of [e1, o1, e2, o2]) {
      if (r.rows !== rows) throw new Error(`a reader saw ${r.rows} rows, expected ${rows}`);
    }
    const ours = o1.ms < o2.ms ? o1 : o2;
    const theirs = e1.ms < e2.ms ? e1 : e2;
    const ourRowsPerSec = Math.round(rows / (ours.ms / 1000));
    const exceljsRowsPerSec = Math.round(rows / (theirs.ms / 1000));
    return {
      rows,
      fileMb,
      ourRowsPerSec,
      exceljsRowsPerSec,
      ratio: Math.round((ourRowsPerSec / exceljsRowsPerSec) * 100) / 100,
      peakRssMb: Math.max(o1.peakRssMb, o2.peakRssMb),
      exceljsPeakRssMb: Math.max(e1.peakRssMb, e2.peakRssMb),
      maxRssMb: Math.max(o1.maxRssMb, o2.maxRssMb),
      exceljsMaxRssMb: Math.max(e1.maxRssMb, e2.maxRssMb),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await child(argv[1]!, argv[2]!, Number(argv[3] ?? 0));
  } else {
    const rows = Number(argv[0] ?? 200_000);
    if (!Number.isInteger(rows) || rows < 1) throw new Error(`usage: npx tsx benchmarks/xlsx.ts <rows>`);
    console.log(JSON.stringify(await benchXlsx(rows)));
  }
}
