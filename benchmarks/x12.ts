import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { X12Parser } from 'node-x12';
import { loadInboundMapping, mapTransaction } from '../src/x12/mapping.js';
import { parseSetWithNodeX12 } from '../test/helpers/node-x12.js';
import { splitX12 } from '../src/x12/splitter.js';

/**
 * Inbound 850 benchmark: the same file through
 *
 *   ours:    createReadStream ──splitX12──► per set: node-x12 strict parse of the set + 850 mapping
 *   node-x12: readFile ──X12Parser(true).parse(whole file)
 *
 * each in its own child process, so peak RSS (getrusage maxrss) is measured separately.
 * Run: `npx tsx benchmarks/x12.ts [transactions]`.
 */

const HOME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);

/** Results of {@link benchX12}. */
export interface X12BenchResult {
  transactions: number;
  fileMb: number;
  /** Transaction sets per second: splitter + per-set node-x12 parse + mapping. */
  ourTps: number;
  /** Transaction sets per second: splitter + mapping only (the production path needs no node-x12). */
  ourSplitMapTps: number;
  /** Transaction sets per second: node-x12's whole-file parse(). */
  nodeX12Tps: number;
  ourPeakRssMb: number;
  ourSplitMapPeakRssMb: number;
  nodeX12PeakRssMb: number;
}

const ISA = (n: number): string =>
  `ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260115*0930*U*00401*${String(n).padStart(9, '0')}*0*P*>~\n`;

/** Writes `transactions` 850s (3 lines each) in 4 interchanges of 2 groups; returns the file size. */
export async function generate850File(file: string, transactions: number): Promise<number> {
  await mkdir(path.dirname(file), { recursive: true });
  const out = createWriteStream(file);
  const interchanges = 4;
  const groupsPer = 2;
  const perGroup = Math.ceil(transactions / (interchanges * groupsPer));
  let written = 0;
  let buf = '';
  const flush = async (force = false): Promise<void> => {
    if (buf.length > 1 << 16 || force) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  };
  for (let x = 1; x <= interchanges; x++) {
    buf += ISA(x);
    let groups = 0;
    for (let g = 1; g <= groupsPer && written < transactions; g++) {
      groups++;
      const gs06 = x * 10 + g;
      buf += `GS*PO*ACMEBUY*ERPCO*20260115*0930*${gs06}*X*004010~\n`;
      let sets = 0;
      for (let i = 0; i < perGroup && written < transactions; i++) {
        written++;
        sets++;
        const st02 = String(sets).padStart(5, '0');
        buf +=
          `ST*850*${st02}~\nBEG*00*SA*PO-${written}**20260115~\nCUR*BY*USD~\nREF*DP*042~\nDTM*002*20260201~\n` +
          `N1*ST*ACME DISTRIBUTION CENTER*92*DC01~\nN3*100 WAREHOUSE WAY~\nN4*SPRINGFIELD*IL*62701*US~\n` +
          `PO1*1*10*EA*12.50**BP*SKU-${written % 9973}*VP*V-9001~\nPID*F****STEEL BOLT M8~\n` +
          `PO1*2*5.5*CA*3.2**BP*SKU-1002~\nPID*F****HEX NUT ZINC~\n` +
          `PO1*3*100*EA*0.15**BP*SKU-1003*VP*V-9003~\nPID*F****WASHER~\nCTT*3*115.5~\nSE*16*${st02}~\n`;
        await flush();
      }
      buf += `GE*${sets}*${gs06}~\n`;
    }
    buf += `IEA*${groups}*${String(x).padStart(9, '0')}~\n`;
  }
  await flush(true);
  out.end();
  await once(out, 'finish');
  return (await stat(file)).size;
}

interface ChildResult {
  seconds: number;
  sets: number;
  lines: number;
  peakRssMb: number;
}

/** Child process body: one of the three measured runs. */
async function child(mode: string, file: string): Promise<ChildResult> {
  const started = process.hrtime.bigint();
  let sets = 0;
  let lines = 0;
  if (mode === 'node-x12') {
    const parsed = new X12Parser(true).parse(await readFile(file, 'utf8'));
    const interchanges = 'interchanges' in parsed ? parsed.interchanges : [parsed];
    for (const x of interchanges) for (const g of x.functionalGroups) sets += g.transactions.length;
  } else {
    const mapping = await loadInboundMapping(HOME, 'x12/850-in');
    for await (const ev of splitX12(createReadStream(file, { highWaterMark: 1 << 16 }), { file })) {
      if (ev.kind !== 'transaction') continue;
      if (mode === 'ours') parseSetWithNodeX12(ev.set);
      const m = mapTransaction(mapping, ev.set);
      if (m.problems.length > 0) throw new Error(m.problems[0]!.message);
      sets++;
      lines += m.lines.length;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { seconds, sets, lines, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

async function runChild(mode: string, file: string): Promise<ChildResult> {
  const proc = spawn(
    process.execPath,
    [...process.execArgv, '--max-old-space-size=16384', SELF, '--child', mode, file],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const [code] = (await once(proc, 'close')) as [number | null];
  if (code !== 0) throw new Error(`benchmark child ${mode} exited with code ${code}`);
  return JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
}

/**
 * Generates a file of `transactions` 850s and measures our streaming path against node-x12's
 * whole-file parse() of the same file, each in a child process.
 */
export async function benchX12(transactions = 100_000): Promise<X12BenchResult> {
  const file = path.join(HOME, 'var', `bench-x12-${transactions}.edi`);
  const bytes = await generate850File(file, transactions);
  let ours: ChildResult, splitMap: ChildResult, nodeX12: ChildResult;
  try {
    ours = await runChild('ours', file);
    splitMap = await runChild('split-map', file);
    nodeX12 = await runChild('node-x12', file);
  } finally {
    await rm(file, { force: true });
  }
  for (const r of [ours, splitMap, nodeX12]) {
    if (r.sets !== transactions)
      throw new Error(`benchmark: read ${r.sets} transaction sets, expected ${transactions}`);
  }
  const round = (n: number): number => Math.round(n * 10) / 10;
  return {
    transactions,
    fileMb: round(bytes / 1024 / 1024),
    ourTps: Math.round(ours.sets / ours.seconds),
    ourSplitMapTps: Math.round(splitMap.sets / splitMap.seconds),
    nodeX12Tps: Math.round(nodeX12.sets / nodeX12.seconds),
    ourPeakRssMb: round(ours.peakRssMb),
    ourSplitMapPeakRssMb: round(splitMap.peakRssMb),
    nodeX12PeakRssMb: round(nodeX12.peakRssMb),
  };
}

/**
 * Entry point for `npm run bench` (benchmarks/run.ts): prints the figures. The size comes from
 * BENCH_X12_TRANSACTIONS (default 100,000); the database URL is not needed.
 */
export async function runX12Bench(_databaseUrl?: string): Promise<void> {
  const n = Number(process.env.BENCH_X12_TRANSACTIONS ?? 100_000);
  const r = await benchX12(n);
  const line = (label: string, value: string): void => console.log(`${label.padEnd(44)} ${value}`);
  console.log('## X12 inbound 850s: streaming splitter vs node-x12 whole-file parse()');
  const k = `${n.toLocaleString('en')} sets (${r.fileMb} MB)`;
  line(
    `${k}, ours + node-x12 per set`,
    `${r.ourTps.toLocaleString('en')} sets/s, peak RSS ${r.ourPeakRssMb} MB`,
  );
  line(
    `${k}, ours split + map`,
    `${r.ourSplitMapTps.toLocaleString('en')} sets/s, peak RSS ${r.ourSplitMapPeakRssMb} MB`,
  );
  line(
    `${k}, node-x12 parse()`,
    `${r.nodeX12Tps.toLocaleString('en')} sets/s, peak RSS ${r.nodeX12PeakRssMb} MB`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    const result = await child(process.argv[i + 1]!, process.argv[i + 2]!);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    const n = Number(process.argv[2] ?? 100_000);
    console.table(await benchX12(n));
  }
}
