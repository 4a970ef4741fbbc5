import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInbound } from '../src/edi/inbound.js';
import { loadMappingFile, parseSince, replayPartner } from '../src/edi/replay.js';
import { HOME, startEdiWorld, type EdiWorld } from './helpers/edi.js';

/** `erp edi replay`: archived inbound files through a mapping, compared with what was loaded; nothing written. */

let w: EdiWorld;
let tmp: string;
beforeAll(async () => {
  w = await startEdiWorld('edi_replay');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'erp-replay-'));
});
afterAll(async () => {
  await w?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** What replay must not change: every row count it could touch, and the partner's directories. */
async function footprint(): Promise<unknown> {
  const { rows } = await w.db.pool.query(
    `SELECT (SELECT count(*)::int FROM sales.orders) AS orders,
            (SELECT count(*)::int FROM edi.interchanges) AS interchanges,
            (SELECT count(*)::int FROM edi.groups) AS groups,
            (SELECT count(*)::int FROM edi.unused_segments) AS unused,
            (SELECT max(updated_at) FROM edi.control_numbers) AS control`,
  );
  const dirs = await Promise.all(
    (['archive', 'error', 'outbox', 'inbox'] as const).map((d) => w.list('PARTNERA', d)),
  );
  return { rows, dirs };
}

describe('erp edi replay', () => {
  beforeAll(async () => {
    await w.drop('PARTNERA', 'partner-a-850.edi');
    const [r] = (await runInbound(w.app, await w.partner('PARTNERA'), { dryRun: false, env: w.env })).files;
    expect([r!.status, r!.ordersLoaded]).toEqual(['loaded', 2]);
    // The same name again (a new ISA13): archived under a suffixed name; replay finds it by sha256.
    const text = (await readFile(path.join(HOME, 'fixtures/edi/partner-a-850.edi'), 'utf8'))
      .replaceAll('000000101', '000000131')
      .replaceAll('PO-1000', 'PO-3000');
    await writeFile(path.join(w.dir('PARTNERA', 'inbox'), 'partner-a-850.edi'), text);
    const [again] = (await runInbound(w.app, await w.partner('PARTNERA'), { dryRun: false, env: w.env }))
      .files;
    expect([again!.status, again!.ordersLoaded]).toEqual(['loaded', 2]);
    expect((await w.list('PARTNERA', 'archive')).length).toBe(2);
  });

  it("through today's mapping: every archived file loads what it loaded", async () => {
    const files = await replayPartner(w.app, await w.partner('PARTNERA'), { sinceHours: 24, env: w.env });
    expect(files.map((f) => [f.file, f.from !== null, f.loaded, f.orders, f.diff])).toEqual([
      ['partner-a-850.edi', true, 2, 2, []],
      ['partner-a-850.edi', true, 2, 2, []],
    ]);
    expect(files[0]!.from).not.toBe(files[1]!.from);
  });

  it('through a new mapping: the differences, per order and field; twice the same, nothing written', async () => {
    const mappingFile = path.join(tmp, 'new-850.yaml');
    await writeFile(
      mappingFile,
      (await readFile(path.join(HOME, 'mappings/x12/850-in.yaml'), 'utf8'))
        .replace("ship_to_name: 'N1[N101=ST].N102'", "ship_to_name: 'N1[N101=ST].N104'")
        .replace(
          'quantity: { path: PO102, type: R, required: true }',
          'quantity: { path: PO104, type: R, required: true }',
        ),
    );
    const mapping = await loadMappingFile(mappingFile);
    const before = await footprint();
    const partner = await w.partner('PARTNERA');
    const first = await replayPartner(w.app, partner, { sinceHours: 24, mapping, env: w.env });
    const second = await replayPartner(w.app, partner, { sinceHours: 24, mapping, env: w.env });
    expect(second).toEqual(first);
    expect(await footprint()).toEqual(before);
    const diff = first[0]!.diff;
    expect(diff).toContain(
      'ST02 0001 (PO PO-10001): header ship_to_name: "ACME DISTRIBUTION CENTER" → "DC01"',
    );
    expect(diff.some((d) => /^ST02 0001 \(PO PO-10001\): line 1 quantity: 10(\.0+)? → 12\.50$/.test(d))).toBe(
      true,
    );
    expect(diff.every((d) => /^ST02 000[12] \(PO PO-1000[12]\): /.test(d))).toBe(true);
    expect(first[1]!.diff[0]).toMatch(/^ST02 0001 \(PO PO-30001\): header ship_to_name: /);
  });

  it('erp edi replay as operators run it: one line per file and difference, exit 0, nothing written', async () => {
    const mappingFile = path.join(tmp, 'cli-850.yaml');
    await writeFile(
      mappingFile,
      (await readFile(path.join(HOME, 'mappings/x12/850-in.yaml'), 'utf8')).replace(
        "ship_to_name: 'N1[N101=ST].N102'",
        "ship_to_name: 'N1[N101=ST].N104'",
      ),
    );
    const before = await footprint();
    const child = spawn(
      process.execPath,
      [
        path.join(HOME, 'dist/cli.js'),
        'edi',
        'replay',
        'PARTNERA',
        '--since',
        '30d',
        '--mapping',
        mappingFile,
      ],
      {
        cwd: HOME,
        env: {
          ...process.env,
          ...w.env,
          DATABASE_URL: w.db.url,
          ERP_HOME: HOME,
          ERP_DATA_DIR: tmp,
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect([code, stderr]).toEqual([0, '']);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe(
      `edi replay PARTNERA, files received in the last 30d through ${mappingFile} (nothing written):`,
    );
    expect(lines).toContain('partner-a-850.edi: differs (2 order(s) loaded then, 2 now)');
    expect(lines).toContain(
      '  ST02 0001 (PO PO-10001): header ship_to_name: "ACME DISTRIBUTION CENTER" → "DC01"',
    );
    expect(lines[lines.length - 1]).toBe('2 of 2 file(s) differ');
    expect(await footprint()).toEqual(before);
  });

  it('files of the period only; --since is a number of days or hours', async () => {
    await w.db.pool.query(
      `UPDATE edi.interchanges SET created_at = now() - interval '3 days' WHERE direction = 'in' AND isa13 = 101`,
    );
    const files = await replayPartner(w.app, await w.partner('PARTNERA'), { sinceHours: 48, env: w.env });
    expect(files.map((f) => f.file)).toEqual(['partner-a-850.edi']);
    expect(files[0]!.diff).toEqual([]);
    expect(parseSince('30d')).toBe(720);
    expect(parseSince('12h')).toBe(12);
    expect(() => parseSince('30')).toThrow(
      "--since expects a period such as 30d (days) or 12h (hours), got '30'",
    );
  });

  it('an archived file that is gone is said, not skipped in silence', async () => {
    for (const name of await w.list('PARTNERA', 'archive'))
      await rm(path.join(w.dir('PARTNERA', 'archive'), name));
    const files = await replayPartner(w.app, await w.partner('PARTNERA'), {
      sinceHours: 24 * 30,
      env: w.env,
    });
    expect(files.map((f) => f.from)).toEqual([null, null]);
    for (const f of files) {
      expect(f.diff).toHaveLength(1);
      expect(f.diff[0]).toMatch(
        /^no archived copy with sha256 [0-9a-f]{64} in \S*archive or \S*error; not replayed$/,
      );
    }
  });
});
