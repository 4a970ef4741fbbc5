import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { X12Interchange, X12Parser, type X12Segment } from 'node-x12';
import pgCopy from 'pg-copy-streams';
import { pino } from 'pino';
import { expect } from 'vitest';
import { loadPartner, type Partner } from '../../src/partners/profile.js';
import type { AppContext } from '../../src/app.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { startSshd, type TestSshd } from './sshd.js';

/**
 * What the EDI tests share: a migrated database with the fixture customers and items, a real
 * loopback sshd, the shipped partners (partners/*.yaml) pointed at it through their environment
 * variables, and node-x12's strict parser for reading back what we wrote.
 */

export const HOME = path.resolve('.');
export const FIXTURES = path.join(HOME, 'fixtures/edi');
export const PARTNERS = ['PARTNERA', 'PARTNERB'] as const;

export interface EdiWorld {
  db: TestDatabase;
  sshd: TestSshd;
  app: AppContext;
  /** The environment the shipped partners read their SFTP settings from. */
  env: NodeJS.ProcessEnv;
  /** The shipped partner, with a short readiness interval. */
  partner(name: (typeof PARTNERS)[number]): Promise<Partner>;
  /** Local path of a partner's remote directory. */
  dir(partner: string, which: 'inbox' | 'outbox' | 'archive' | 'error'): string;
  /** Puts a fixture into the partner's inbox under `as` (default: its own name). */
  drop(partner: string, fixture: string, as?: string): Promise<void>;
  /** Sorted names in a partner's directory. */
  list(partner: string, which: 'inbox' | 'outbox' | 'archive' | 'error'): Promise<string[]>;
  close(): Promise<void>;
}

async function copyCsv(db: TestDatabase, table: string, file: string): Promise<void> {
  const header = (await readFile(file, 'utf8')).split('\n', 1)[0]!;
  const client = await db.pool.connect();
  try {
    await pipeline(
      createReadStream(file),
      client.query(pgCopy.from(`COPY ${table} (${header}) FROM STDIN WITH (FORMAT csv, HEADER true)`)),
    );
  } finally {
    client.release();
  }
}

export async function startEdiWorld(label: string): Promise<EdiWorld> {
  const db = await createTestDatabase(label);
  const sshd = await startSshd();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'erp-edi-test-'));
  try {
    await copyCsv(db, 'sales.customers', path.join(HOME, 'fixtures/company/customers.csv'));
    await copyCsv(db, 'sales.items', path.join(HOME, 'fixtures/company/items.csv'));
    for (const p of PARTNERS) {
      for (const d of ['inbox', 'outbox', 'archive', 'error']) {
        await mkdir(path.join(sshd.root, p, d), { recursive: true });
      }
    }
  } catch (err) {
    await sshd.stop();
    await db.drop();
    throw err;
  }
  const env: NodeJS.ProcessEnv = {
    ERP_SFTP_PORT: String(sshd.port),
    ERP_SFTP_USER: sshd.user,
    ERP_SFTP_KEY_FILE: sshd.privateKeyPath,
    ERP_SFTP_HOST_KEY_SHA256: sshd.hostKeyFingerprint,
    ERP_SFTP_ROOT: sshd.root,
  };
  const dir = (partner: string, which: string): string => path.join(sshd.root, partner, which);
  return {
    db,
    sshd,
    env,
    app: { pool: db.pool, log: pino({ level: 'silent' }), home: HOME, dataDir, rejectsInTable: 1000 },
    async partner(name) {
      const p = await loadPartner(HOME, name);
      return { ...p, sftp: { ...p.sftp, ready: { mode: 'stable', interval_ms: 50 } } };
    },
    dir,
    async drop(partner, fixture, as) {
      await copyFile(path.join(FIXTURES, fixture), path.join(dir(partner, 'inbox'), as ?? fixture));
    },
    async list(partner, which) {
      return (await readdir(dir(partner, which))).sort();
    },
    async close() {
      await sshd.stop();
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Parses X12 with node-x12 in strict mode; every segment as [tag, ...values], per interchange. */
export function parseStrict(text: string): { interchanges: X12Interchange[]; segments: string[][][] } {
  const parsed = new X12Parser(true).parse(text);
  // A fat interchange is an Array subclass whose constructor breaks .map(): copy it to a plain array.
  const list: unknown[] = Array.isArray(parsed) ? [...(parsed as unknown[])] : [parsed];
  for (const x of list) expect(x).toBeInstanceOf(X12Interchange);
  const row = (s: X12Segment): string[] => [s.tag, ...s.elements.map((e) => e.value)];
  const segments = (list as X12Interchange[]).map((x) => {
    const out = [row(x.header)];
    for (const g of x.functionalGroups) {
      out.push(row(g.header));
      for (const t of g.transactions) out.push(row(t.header), ...t.segments.map(row), row(t.trailer));
      out.push(row(g.trailer));
    }
    out.push(row(x.trailer));
    return out;
  });
  return { interchanges: list as X12Interchange[], segments };
}

/** The segments with tag `tag`. */
export function segs(segments: string[][], tag: string): string[][] {
  return segments.filter((s) => s[0] === tag);
}
