/**
 * EDI inbound end to end: one file of `sets` 850s (3 lines each) dropped on a loopback OpenSSH
 * server, read by `runInbound` as the nightly job does — SFTP download, split, validate, map,
 * check against the ERP, load orders and lines, 997 built and uploaded, file archived — against the
 * issue's target (≥ 5,000 sets/s) and, in the same run, the split + map of the same file alone.
 *
 * Run: `npx tsx benchmarks/edi.ts [sets]`
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import pgCopy from 'pg-copy-streams';
import { pino } from 'pino';
import type * as PoolModule from '../src/db/pool.js';
import type * as MigrateModule from '../src/db/migrate.js';
import type * as InboundModule from '../src/edi/inbound.js';
import type * as ProfileModule from '../src/partners/profile.js';
import type * as MappingModule from '../src/x12/mapping.js';
import type * as SplitterModule from '../src/x12/splitter.js';
import { startSshd } from '../test/helpers/sshd.js';

/**
 * The code under test comes from dist/ (what `erp` runs, built by `npm run bench`), not through
 * tsx: its esbuild transform wraps every closure in a `__name` call, which more than doubled the
 * X12 code's CPU time in a profile.
 */
async function fromDist<T>(module: string): Promise<T> {
  return (await import(pathToFileURL(path.resolve('dist', module)).href)) as T;
}
const { createPool, queryOnce } = await fromDist<typeof PoolModule>('db/pool.js');
const { migrate } = await fromDist<typeof MigrateModule>('db/migrate.js');
const { runInbound } = await fromDist<typeof InboundModule>('edi/inbound.js');
const { loadPartner } = await fromDist<typeof ProfileModule>('partners/profile.js');
const { loadInboundMapping, mapTransaction } = await fromDist<typeof MappingModule>('x12/mapping.js');
const { splitX12 } = await fromDist<typeof SplitterModule>('x12/splitter.js');

export interface EdiBenchResult {
  sets: number;
  seconds: number;
  setsPerSec: number;
  /** The same file split and mapped, nothing else (no database, no SFTP). */
  splitMapSetsPerSec: number;
  /** CPU seconds this process spent on the inbound run (the database's are not counted). */
  cpuSeconds: number;
}

const ISA = (n: number): string =>
  `ISA*00*          *00*          *ZZ*ACMEBUY        *ZZ*ERPCO          *260115*0930*U*00401*${String(n).padStart(9, '0')}*0*P*>~\n`;

/** `sets` 850s for PARTNERA in one interchange and group, items from fixtures/company/items.csv. */
async function write850s(file: string, sets: number): Promise<void> {
  const out = createWriteStream(file);
  let buf = `${ISA(1)}GS*PO*ACMEBUY*ERPCO*20260115*0930*1*X*004010~\n`;
  for (let i = 1; i <= sets; i++) {
    const st02 = String(i).padStart(5, '0');
    buf +=
      `ST*850*${st02}~\nBEG*00*SA*BENCH-${i}**20260115~\nCUR*BY*USD~\nREF*DP*042~\nDTM*002*20260201~\n` +
      `N1*ST*ACME DISTRIBUTION CENTER*92*DC01~\nN3*100 WAREHOUSE WAY~\nN4*SPRINGFIELD*IL*62701*US~\n` +
      `PO1*1*10*EA*12.50**BP*SKU-1001*VP*V-9001~\nPID*F****STEEL BOLT M8~\n` +
      `PO1*2*5.5*CA*3.2**BP*SKU-1002~\nPID*F****HEX NUT ZINC~\n` +
      `PO1*3*100*EA*0.15**BP*SKU-1003*VP*V-9003~\nPID*F****WASHER~\nCTT*3*115.5~\nSE*16*${st02}~\n`;
    if (buf.length > 1 << 16) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(`${buf}GE*${sets}*1~\nIEA*1*000000001~\n`);
  await once(out, 'finish');
}

async function copyCsv(url: string, table: string, file: string): Promise<void> {
  const header = (await readFile(file, 'utf8')).split('\n', 1)[0]!;
  const pool = createPool(url, 1);
  const client = await pool.connect();
  try {
    await pipeline(
      createReadStream(file),
      client.query(pgCopy.from(`COPY ${table} (${header}) FROM STDIN WITH (FORMAT csv, HEADER true)`)),
    );
  } finally {
    client.release();
    await pool.end();
  }
}

export async function benchEdiInbound(adminUrl: string, sets = 10_000): Promise<EdiBenchResult> {
  const repo = path.resolve('.');
  const dbName = `erp_bench_edi_${randomBytes(4).toString('hex')}`;
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  await queryOnce(adminUrl, `CREATE DATABASE ${dbName}`);
  const home = await mkdtemp(path.join(os.tmpdir(), 'erp-bench-edi-'));
  const sshd = await startSshd();
  const pool = createPool(url.toString(), 4);
  try {
    await migrate(pool, path.join(repo, 'sql'));
    await copyCsv(url.toString(), 'sales.customers', path.join(repo, 'fixtures/company/customers.csv'));
    await copyCsv(url.toString(), 'sales.items', path.join(repo, 'fixtures/company/items.csv'));
    await symlink(path.join(repo, 'mappings'), path.join(home, 'mappings'));
    await symlink(path.join(repo, 'sql'), path.join(home, 'sql'));
    await mkdir(path.join(home, 'partners'));
    // The shipped partner, allowed a file of this many sets and polled without the demo's delay.
    const profile = (await readFile(path.join(repo, 'partners/PARTNERA.yaml'), 'utf8'))
      .replace(/^max_documents_per_file: \d+$/m, `max_documents_per_file: ${sets}`)
      .replace(/ready: \{ mode: stable, interval_ms: \d+ \}/, 'ready: { mode: stable, interval_ms: 50 }');
    await writeFile(path.join(home, 'partners/PARTNERA.yaml'), profile);
    for (const d of ['inbox', 'outbox', 'archive', 'error']) {
      await mkdir(path.join(sshd.root, 'PARTNERA', d), { recursive: true });
    }
    const local = path.join(home, 'bench-850.edi');
    await write850s(local, sets);

    const mapping = await loadInboundMapping(home, 'x12/850-in');
    const t0 = performance.now();
    let mapped = 0;
    for await (const ev of splitX12(createReadStream(local), { file: local })) {
      if (ev.kind !== 'transaction') continue;
      if (mapTransaction(mapping, ev.set).problems.length === 0) mapped++;
    }
    const splitMapSeconds = (performance.now() - t0) / 1000;
    if (mapped !== sets) throw new Error(`split + map: ${mapped} of ${sets} sets mapped cleanly`);

    await pipeline(
      createReadStream(local),
      createWriteStream(path.join(sshd.root, 'PARTNERA/inbox/bench-850.edi')),
    );
    const env: NodeJS.ProcessEnv = {
      ERP_SFTP_PORT: String(sshd.port),
      ERP_SFTP_USER: sshd.user,
      ERP_SFTP_KEY_FILE: sshd.privateKeyPath,
      ERP_SFTP_HOST_KEY_SHA256: sshd.hostKeyFingerprint,
      ERP_SFTP_ROOT: sshd.root,
    };
    const app = {
      pool,
      log: pino({ level: 'silent' }),
      home,
      dataDir: path.join(home, 'var'),
      rejectsInTable: 1000,
    };
    const partner = await loadPartner(home, 'PARTNERA');
    const t1 = performance.now();
    const cpu0 = process.cpuUsage();
    const r = await runInbound(app, partner, { dryRun: false, env });
    const cpu = process.cpuUsage(cpu0);
    const seconds = (performance.now() - t1) / 1000;
    const f = r.files[0];
    if (!f || f.setsAccepted !== sets || f.ordersLoaded !== sets) {
      throw new Error(
        `the inbound run accepted ${f?.setsAccepted} and loaded ${f?.ordersLoaded} of ${sets} sets: ${f?.problems.slice(0, 3).join('; ')}`,
      );
    }
    const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sales.order_lines');
    if (rows[0]!.n !== sets * 3) throw new Error(`${rows[0]!.n} order lines, expected ${sets * 3}`);
    return {
      sets,
      seconds,
      setsPerSec: Math.round(sets / seconds),
      splitMapSetsPerSec: Math.round(sets / splitMapSeconds),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  } finally {
    await pool.end();
    await sshd.stop();
    await queryOnce(adminUrl, `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await rm(home, { recursive: true, force: true });
  }
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const admin = process.env.BENCH_ADMIN_URL ?? 'postgres://root@127.0.0.1:5432/postgres';
  console.log(JSON.stringify(await benchEdiInbound(admin, Number(process.argv[2] ?? 10_000))));
}
