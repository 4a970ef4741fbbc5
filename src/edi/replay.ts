import { rm } from 'node:fs/promises';
import path from 'node:path';
import { loadYamlFile } from '../config/yaml.js';
import { UserError } from '../errors.js';
import { resolveEndpoint, type Partner } from '../partners/profile.js';
import type { AppContext } from '../pipeline/run.js';
import { makeTempIn, runTempDir } from '../runs/temp.js';
import { downloadVerified, listRemote } from '../sftp/index.js';
import { compileInboundMapping, inboundMappingSchema, type InboundMapping } from '../x12/mapping.js';
import { replayFile } from './harness.js';
import type { MappedOrder } from './inbound-file.js';
import { withPartnerSftp } from './transport.js';

/**
 * `erp edi replay <partner> --since 30d [--mapping FILE]`: the partner's inbound files of that
 * period, as archived, through the inbound path again — with a new mapping, or today's — and the
 * difference with what was loaded from them. Nothing is written: each file is read in a
 * transaction that is rolled back (the harness's replayFile), so a replay can run any number of
 * times and says the same.
 *
 *   edi.interchanges (in, since) ── file name + sha256 ──► archive/ or error/ on the partner's SFTP
 *       (the name, or the name with the suffix moveRemote adds when it was taken; the sha256 decides)
 *   ─► replayFile (split, validate, map, check; rolled back) ─► orders as they would be loaded
 *   ─► compared with edi.inbound_orders + sales.order_lines of those interchanges, per ST02
 */

/** `30d`, `12h`: a period back from now, in hours. */
export function parseSince(text: string): number {
  const m = /^(\d{1,5})([dh])$/.exec(text.trim());
  if (!m || Number(m[1]) === 0) {
    throw new UserError(`--since expects a period such as 30d (days) or 12h (hours), got '${text}'`);
  }
  return Number(m[1]) * (m[2] === 'd' ? 24 : 1);
}

/** Loads a mapping file given on the command line (`--mapping FILE`). */
export async function loadMappingFile(file: string): Promise<InboundMapping> {
  return compileInboundMapping(await loadYamlFile(file, inboundMappingSchema), file);
}

/** What one archived file gave. */
export interface ReplayedFile {
  file: string;
  /** Remote path it was read from, or null when no archived copy has its sha256. */
  from: string | null;
  /** Orders the file would load now. */
  orders: number;
  /** Orders it loaded then. */
  loaded: number;
  /** One line per difference; empty when the replay loads exactly what was loaded. */
  diff: string[];
}

/** An order as loaded: its mapped header and its sales order lines. */
interface LoadedOrder {
  st02: string;
  header: Record<string, string | null>;
  lines: MappedOrder['lines'];
}

const sameNumber = (a: string | null, b: string | null): boolean =>
  a === b || (a !== null && b !== null && a !== '' && b !== '' && Number(a) === Number(b));

/** The differences between an order as loaded and as the replay would load it. */
function orderDiff(label: string, was: LoadedOrder, now: MappedOrder): string[] {
  const out: string[] = [];
  const keys = [...new Set([...Object.keys(was.header), ...Object.keys(now.header)])].sort();
  for (const k of keys) {
    const a = was.header[k] ?? null;
    const b = now.header[k] ?? null;
    if (a !== b) out.push(`${label}: header ${k}: ${JSON.stringify(a)} → ${JSON.stringify(b)}`);
  }
  const n = Math.max(was.lines.length, now.lines.length);
  for (let i = 0; i < n; i++) {
    const a = was.lines[i];
    const b = now.lines[i];
    if (!a || !b) {
      out.push(`${label}: line ${i + 1} ${a ? 'no longer loaded' : 'now loaded'}${b ? ` (${b.sku})` : ''}`);
      continue;
    }
    for (const f of ['sku', 'uom', 'customerLineRef'] as const) {
      if (a[f] !== b[f])
        out.push(`${label}: line ${i + 1} ${f}: ${JSON.stringify(a[f])} → ${JSON.stringify(b[f])}`);
    }
    for (const f of ['quantity', 'unitPrice'] as const) {
      if (!sameNumber(a[f], b[f])) out.push(`${label}: line ${i + 1} ${f}: ${a[f]} → ${b[f]}`);
    }
  }
  return out;
}

/** Compares the orders of one file, matched by ST02 in order of appearance. */
export function compareOrders(loaded: readonly LoadedOrder[], replayed: readonly MappedOrder[]): string[] {
  const out: string[] = [];
  const pending = new Map<string, LoadedOrder[]>();
  for (const o of loaded) pending.set(o.st02, [...(pending.get(o.st02) ?? []), o]);
  for (const now of replayed) {
    const label = `ST02 ${now.st02} (PO ${now.header.po_number ?? '?'})`;
    const was = pending.get(now.st02)?.shift();
    if (now.outcome !== 'loaded') {
      if (was) out.push(`${label}: was loaded, would now be ${now.outcome}`);
      continue;
    }
    if (!was) {
      out.push(`${label}: would now be loaded (${now.lines.length} lines); it was not`);
      continue;
    }
    out.push(...orderDiff(label, was, now));
  }
  for (const rest of pending.values()) {
    for (const was of rest)
      out.push(`ST02 ${was.st02} (PO ${was.header.po_number ?? '?'}): was loaded, is no longer read`);
  }
  return out;
}

/** Runs the partner's archived inbound files of the last `sinceHours` through `mapping`; see the module comment. */
export async function replayPartner(
  app: AppContext,
  partner: Partner,
  opts: { sinceHours: number; mapping?: InboundMapping; env?: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<ReplayedFile[]> {
  const { rows: files } = await app.pool.query<{ file_name: string; sha256: string; ids: string[] }>(
    `SELECT file_name, sha256, array_agg(id ORDER BY id)::text[] AS ids
       FROM edi.interchanges
      WHERE partner = $1 AND direction = 'in' AND sha256 IS NOT NULL
        AND created_at >= now() - make_interval(hours => $2)
      GROUP BY file_name, sha256
      ORDER BY min(id)`,
    [partner.name, opts.sinceHours],
  );
  if (files.length === 0) return [];
  const endpoint = resolveEndpoint(partner, opts.env);
  const tmp = await makeTempIn(runTempDir(app.dataDir, null), 'edi-replay-');
  const out: ReplayedFile[] = [];
  try {
    await withPartnerSftp(
      partner,
      endpoint,
      {
        log: app.log,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.env ? { env: opts.env } : {}),
      },
      async (sftp) => {
        const dirs = [endpoint.archive, endpoint.error];
        const listed = await Promise.all(
          dirs.map(async (d) => ({ dir: d, entries: await listRemote(sftp, d) })),
        );
        for (const f of files) {
          const candidates = listed.flatMap(({ dir, entries }) =>
            entries
              .filter(
                (e) =>
                  e.isFile &&
                  (e.name === f.file_name || e.name.startsWith(`${f.file_name}.`)) &&
                  !e.name.endsWith('.error.txt'),
              )
              .map((e) => ({ path: path.posix.join(dir, e.name), size: e.size })),
          );
          let local: string | null = null;
          let from: string | null = null;
          for (const c of candidates) {
            const got = await downloadVerified(
              sftp,
              c.path,
              tmp,
              c.size,
              opts.signal ? { signal: opts.signal } : {},
            );
            if (got.sha256 === f.sha256) {
              local = got.localPath;
              from = c.path;
              break;
            }
            await rm(got.localPath, { force: true });
          }
          const loaded = await loadedOrders(app, f.ids);
          if (local === null) {
            out.push({
              file: f.file_name,
              from: null,
              orders: 0,
              loaded: loaded.length,
              diff: [`no archived copy with sha256 ${f.sha256} in ${dirs.join(' or ')}; not replayed`],
            });
            continue;
          }
          try {
            const { orders } = await replayFile(app, partner, local, {
              ...(opts.mapping ? { mapping: opts.mapping } : {}),
              name: path.basename(f.file_name),
              // Its orders exist already: judged as the first time, stored nowhere.
              storeOrders: false,
            });
            out.push({
              file: f.file_name,
              from,
              orders: orders.filter((o) => o.outcome === 'loaded').length,
              loaded: loaded.length,
              diff: compareOrders(loaded, orders),
            });
          } finally {
            await rm(local, { force: true });
          }
        }
      },
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return out;
}

/** The orders loaded from these inbound interchanges: mapped header and sales order lines. */
async function loadedOrders(app: AppContext, interchangeIds: readonly string[]): Promise<LoadedOrder[]> {
  const { rows } = await app.pool.query<{
    st02: string;
    header: Record<string, string | null>;
    lines: LoadedOrder['lines'];
  }>(
    `SELECT io.st02, io.header,
            coalesce((SELECT json_agg(json_build_object('sku', l.sku, 'quantity', l.quantity::text, 'uom', l.uom,
                                                      'unitPrice', l.unit_price::text, 'customerLineRef', l.customer_line_ref)
                                      ORDER BY l.line_no)
                        FROM sales.order_lines l WHERE l.order_id = io.order_id), '[]') AS lines
       FROM edi.inbound_orders io
      WHERE io.interchange_id = ANY ($1::bigint[])
      ORDER BY io.order_id`,
    [interchangeIds],
  );
  return rows;
}
