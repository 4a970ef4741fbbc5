import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { allocateControlNumbers } from '../../src/edi/control-numbers.js';
import { receiveInterchange } from '../../src/edi/interchanges.js';
import type { TestDatabase } from '../helpers/db.js';
import { test } from '../helpers/fixtures.js';

let db: TestDatabase;

test.beforeAll(async ({ db: d }) => {
  db = d;
});

describe('allocateControlNumbers', () => {
  it('starts at 1 and hands out consecutive ranges per partner', async () => {
    expect(await allocateControlNumbers(db.pool, 'acme', { groups: 1, sets: 3 })).toEqual({
      isa13: 1,
      gs06: [1],
      st02: [1, 2, 3],
    });
    expect(await allocateControlNumbers(db.pool, 'acme', { groups: 2, sets: 2 })).toEqual({
      isa13: 2,
      gs06: [2, 3],
      st02: [4, 5],
    });
    expect(await allocateControlNumbers(db.pool, 'globex', { groups: 1, sets: 1 })).toEqual({
      isa13: 1,
      gs06: [1],
      st02: [1],
    });
    expect(await allocateControlNumbers(db.pool, 'acme', { groups: 0, sets: 0 })).toEqual({
      isa13: 3,
      gs06: [],
      st02: [],
    });
  });

  it('never repeats under concurrent workers on separate connections', async () => {
    const workers = 8;
    const rounds = 40;
    const clients = await Promise.all(
      Array.from({ length: workers }, async () => {
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        return c;
      }),
    );
    try {
      const results = await Promise.all(
        clients.map(async (c, w) => {
          const got: Awaited<ReturnType<typeof allocateControlNumbers>>[] = [];
          for (let i = 0; i < rounds; i++)
            got.push(await allocateControlNumbers(c, 'busy', { groups: 1 + (w % 2), sets: 1 + (i % 5) }));
          return got;
        }),
      );
      const all = results.flat();
      const isa13 = all.map((r) => r.isa13);
      const gs06 = all.flatMap((r) => r.gs06);
      const st02 = all.flatMap((r) => r.st02);
      expect(new Set(isa13).size).toBe(workers * rounds);
      expect(new Set(gs06).size).toBe(gs06.length);
      expect(new Set(st02).size).toBe(st02.length);
      // No gaps either: every number from 1 to the total was handed out exactly once.
      expect(Math.max(...isa13)).toBe(workers * rounds);
      expect(Math.max(...st02)).toBe(st02.length);
      expect(Math.max(...gs06)).toBe(gs06.length);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('survives a reconnect (new pool): continues where it stopped', async () => {
    const before = await allocateControlNumbers(db.pool, 'restart', { groups: 1, sets: 2 });
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const after = await allocateControlNumbers(pool, 'restart', { groups: 1, sets: 2 });
      expect(after).toEqual({
        isa13: before.isa13 + 1,
        gs06: [before.gs06[0]! + 1],
        st02: [before.st02[1]! + 1, before.st02[1]! + 2],
      });
    } finally {
      await pool.end();
    }
  });

  it('wraps from 999999999 to 1', async () => {
    await db.pool.query(
      `INSERT INTO edi.control_numbers (partner, isa13, gs06, st02) VALUES ('wrap', 999999999, 999999998, 999999998)`,
    );
    expect(await allocateControlNumbers(db.pool, 'wrap', { groups: 2, sets: 3 })).toEqual({
      isa13: 1,
      gs06: [999999999, 1],
      st02: [999999999, 1, 2],
    });
  });

  it('refuses nonsense counts', async () => {
    await expect(allocateControlNumbers(db.pool, 'x', { groups: -1, sets: 1 })).rejects.toThrow(
      'groups must be an integer',
    );
  });
});

describe('edi.receive_interchange', () => {
  it('records a first receipt, then the same partner and ISA13 as a duplicate', async () => {
    const r = {
      partner: 'acme',
      isa13: '000000101',
      fileName: 'po.edi',
      sha256: 'ab',
      usage: 'P',
      groupCount: 1,
      setCount: 2,
    };
    const first = await receiveInterchange(db.pool, r);
    const again = await receiveInterchange(db.pool, { ...r, fileName: 'po-again.edi' });
    const other = await receiveInterchange(db.pool, { ...r, partner: 'globex' });
    expect([first.duplicate, again.duplicate, other.duplicate]).toEqual([false, true, false]);
    const { rows } = await db.pool.query(
      `SELECT partner, isa13::int, status, file_name FROM edi.interchanges WHERE direction = 'in' ORDER BY id`,
    );
    expect(rows).toEqual([
      { partner: 'acme', isa13: 101, status: 'received', file_name: 'po.edi' },
      { partner: 'acme', isa13: 101, status: 'duplicate', file_name: 'po-again.edi' },
      { partner: 'globex', isa13: 101, status: 'received', file_name: 'po.edi' },
    ]);
    // The constraint itself: a second received row for the same ISA13 is refused.
    await expect(
      db.pool.query(
        `INSERT INTO edi.interchanges (direction, partner, isa13, status, file_name) VALUES ('in', 'acme', 101, 'loaded', 'x')`,
      ),
    ).rejects.toThrow(/interchanges_partner_direction_isa13/);
    // A rejected interchange may be re-sent with the same ISA13.
    await db.pool.query(`UPDATE edi.interchanges SET status = 'rejected' WHERE id = $1`, [first.id]);
    expect((await receiveInterchange(db.pool, { ...r, fileName: 'po-fixed.edi' })).duplicate).toBe(false);
  });
});
