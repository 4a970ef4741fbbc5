import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Partner } from '../partners/profile.js';
import type { AppContext } from '../pipeline/run.js';
import type { InboundMapping } from '../x12/mapping.js';
import {
  prepareInbound,
  processInboundFile,
  type InboundFileResult,
  type MappedOrder,
} from './inbound-file.js';
import { ControlNumberSource } from './transport.js';

/**
 * The partner test harness: `erp edi test <partner> [--update]`.
 *
 *   partners/<NAME>/samples/po-amt-in-line.edi            a sample the partner sends
 *                          /po-amt-in-line.orders.json    what erp makes of it: each order and its outcome
 *                          /po-amt-in-line.ack.edi        what erp sends back: 997/999, TA1, 855
 *
 * Each sample goes through the inbound path itself — split, validate, map, check — in a
 * transaction that is rolled back, as if it were the first time it was received, with control
 * numbers counted from 1 and a fixed date; nothing is written, uploaded or moved. The result is
 * compared with the expected files; `--update` writes them instead.
 */

/** The fixed date of the harness's acks. */
export const HARNESS_NOW = new Date('2026-01-01T00:00:00Z');

/** What one sample gave, and how it compared. */
export interface SampleResult {
  sample: string;
  /** ok: as expected; differs: see `diff`; written: --update wrote the expected files; missing: no expected files yet. */
  outcome: 'ok' | 'differs' | 'written' | 'missing';
  /** The first differing lines, `- expected` / `+ actual`. */
  diff: string[];
  orders: MappedOrder[];
  result: InboundFileResult;
}

/** The sample folder of a partner: `partners/<NAME>/samples`, beside `partners/<NAME>.yaml`. */
export function samplesDir(home: string, partner: string): string {
  return path.join(home, 'partners', partner, 'samples');
}

/** Runs one file through the inbound path without writing; returns the orders and everything sent back. */
export async function replayFile(
  app: AppContext,
  partner: Partner,
  file: string,
  opts: { mapping?: InboundMapping; name?: string; storeOrders?: boolean } = {},
): Promise<{ orders: MappedOrder[]; acks: string; result: InboundFileResult }> {
  const { mapping, name = path.basename(file), storeOrders = true } = opts;
  const ctx = await prepareInbound(app, partner, { dryRun: true });
  ctx.control = new ControlNumberSource(app.pool, partner.name, true, { isa13: 0, gs06: 0, st02: 0 });
  if (mapping) ctx.mapping = mapping;
  const data = await readFile(file);
  const orders: MappedOrder[] = [];
  const result = await processInboundFile(
    ctx,
    {
      path: file,
      name,
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
    },
    { dryRun: true, fresh: true, now: HARNESS_NOW, storeOrders, onOrder: (o) => orders.push(o) },
  );
  const acks = [result.ack?.text, result.ta1?.text, result.poAck?.text].filter(Boolean).join('');
  return { orders, acks, result };
}

function diffLines(expected: string, actual: string, max = 10): string[] {
  const e = expected.split('\n');
  const a = actual.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(e.length, a.length) && out.length < max; i++) {
    if (e[i] === a[i]) continue;
    if (e[i] !== undefined) out.push(`- ${e[i]}`);
    if (a[i] !== undefined) out.push(`+ ${a[i]}`);
  }
  return out;
}

/** The X12 we send back, one segment per line, so expected files read and diff line by line. */
function segmentLines(text: string): string {
  if (text.length < 106) return text;
  const terminator = text[105]!;
  return text
    .split(terminator)
    .map((s) => s.replace(/^\s+/, ''))
    .filter((s) => s !== '')
    .map((s) => `${s}${terminator}`)
    .join('\n')
    .concat('\n');
}

/** Runs every sample of `partner`; see the module comment. */
export async function testPartner(
  app: AppContext,
  partner: Partner,
  opts: { update?: boolean } = {},
): Promise<SampleResult[]> {
  const dir = samplesDir(app.home, partner.name);
  const samples = (await readdir(dir).catch(() => [] as string[]))
    .filter((f) => f.endsWith('.edi') && !f.endsWith('.ack.edi'))
    .sort();
  const out: SampleResult[] = [];
  for (const sample of samples) {
    const { orders, acks, result } = await replayFile(app, partner, path.join(dir, sample));
    const base = path.join(dir, sample.slice(0, -4));
    const actualOrders = `${JSON.stringify({ orders, problems: result.problems, notices: result.notices }, null, 2)}\n`;
    const actualAck = segmentLines(acks);
    if (opts.update) {
      await writeFile(`${base}.orders.json`, actualOrders);
      await writeFile(`${base}.ack.edi`, actualAck);
      out.push({ sample, outcome: 'written', diff: [], orders, result });
      continue;
    }
    const expectedOrders = await readFile(`${base}.orders.json`, 'utf8').catch(() => null);
    const expectedAck = await readFile(`${base}.ack.edi`, 'utf8').catch(() => null);
    if (expectedOrders === null || expectedAck === null) {
      out.push({ sample, outcome: 'missing', diff: [], orders, result });
      continue;
    }
    const diff = [
      ...diffLines(expectedOrders, actualOrders).map((l) => `orders.json ${l}`),
      ...diffLines(expectedAck, actualAck).map((l) => `ack.edi ${l}`),
    ];
    out.push({ sample, outcome: diff.length === 0 ? 'ok' : 'differs', diff, orders, result });
  }
  return out;
}
