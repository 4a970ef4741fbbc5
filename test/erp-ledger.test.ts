import { beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../src/db/pool.js';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

let db: TestDatabase;
test.beforeAll(async ({ db: d }) => {
  db = d;
  await db.pool.query(
    `SELECT gl.open_period('2026-09'), gl.open_period('2026-10'), gl.open_period('2026-11')`,
  );
});

/** Posts a balanced entry with gl.post_entry; returns its id. */
async function post(date: string, description: string, lines: object[]): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(`SELECT gl.post_entry($1, $2, $3::jsonb) AS id`, [
    date,
    description,
    JSON.stringify(lines),
  ]);
  return rows[0]!.id;
}

async function countEntries(description: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM gl.journal_entries WHERE description = $1',
    [description],
  );
  return rows[0]!.n;
}

describe('gl: a journal entry must balance', () => {
  it('refuses an unbalanced entry at commit, after accepting its lines one by one', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO gl.journal_entries (entry_date, description) VALUES ('2026-10-05', 'unbalanced') RETURNING id`,
      );
      const id = rows[0]!.id;
      // Each line is accepted on its own: the check is deferred to the commit.
      await client.query(
        `INSERT INTO gl.journal_lines (entry_id, line_no, account_code, debit) VALUES ($1, 1, '6200', 100.00)`,
        [id],
      );
      await client.query(
        `INSERT INTO gl.journal_lines (entry_id, line_no, account_code, credit) VALUES ($1, 2, '1000', 90.00)`,
        [id],
      );
      await expect(client.query('COMMIT')).rejects.toMatchObject({
        code: 'ERP01',
        message: `journal entry ${id} does not balance: debits 100.00, credits 90.00 (difference 10.00)`,
      });
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
    expect(await countEntries('unbalanced')).toBe(0);
  });

  it('accepts a balanced entry built line by line in one transaction', async () => {
    await withTransaction(db.pool, async (client) => {
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO gl.journal_entries (entry_date, description) VALUES ('2026-10-06', 'rent october') RETURNING id`,
      );
      await client.query(
        `INSERT INTO gl.journal_lines (entry_id, line_no, account_code, debit) VALUES ($1, 1, '6200', 2500.00)`,
        [rows[0]!.id],
      );
      await client.query(
        `INSERT INTO gl.journal_lines (entry_id, line_no, account_code, credit) VALUES ($1, 2, '1000', 2500.00)`,
        [rows[0]!.id],
      );
    });
    expect(await countEntries('rent october')).toBe(1);
  });

  it('refuses an entry without lines at commit', async () => {
    await expect(
      withTransaction(db.pool, (c) =>
        c.query(`INSERT INTO gl.journal_entries (entry_date, description) VALUES ('2026-10-07', 'empty')`),
      ),
    ).rejects.toThrow(/journal entry \d+ has no lines/);
    expect(await countEntries('empty')).toBe(0);
  });

  it('refuses a line that is both debit and credit, or neither', async () => {
    const lines = [
      { account: '6200', debit: 10, credit: 10 },
      { account: '1000', credit: 0 },
    ];
    await expect(post('2026-10-08', 'two-sided', lines)).rejects.toThrow(/journal_lines_one_side/);
  });

  it('post_entry checks the balance at once, naming the difference', async () => {
    await expect(
      post('2026-10-09', 'off by a cent', [
        { account: '6300', debit: 120.01 },
        { account: '1000', credit: 120.0 },
      ]),
    ).rejects.toMatchObject({
      code: 'ERP01',
      message: expect.stringMatching(/does not balance: debits 120.01, credits 120.00 \(difference 0.01\)$/),
    });
  });
});

describe('gl: a closed period refuses postings', () => {
  let entryId: string;
  beforeAll(async () => {
    entryId = await post('2026-09-30', 'september utilities', [
      { account: '6300', debit: 410.55 },
      { account: '1000', credit: 410.55 },
    ]);
    const { rows } = await db.pool.query(`SELECT gl.close_period('2026-09', 'controller') AS status`);
    expect(rows[0].status).toBe('closed');
  });

  it('refuses a new entry dated in the closed period, naming the period', async () => {
    await expect(
      post('2026-09-15', 'late invoice', [
        { account: '6900', debit: 50 },
        { account: '2000', credit: 50 },
      ]),
    ).rejects.toMatchObject({
      code: 'ERP01',
      message: `fiscal period 2026-09 is closed: posting journal entry 'late invoice' refused; post into an open period instead`,
    });
  });

  it('refuses changing, extending, moving or deleting an entry of the closed period', async () => {
    await expect(
      db.pool.query(`UPDATE gl.journal_lines SET debit = 1 WHERE entry_id = $1 AND line_no = 1`, [entryId]),
    ).rejects.toThrow(`fiscal period 2026-09 is closed: changing journal entry ${entryId} refused`);
    await expect(
      db.pool.query(
        `INSERT INTO gl.journal_lines (entry_id, line_no, account_code, debit) VALUES ($1, 3, '6300', 1)`,
        [entryId],
      ),
    ).rejects.toThrow(`fiscal period 2026-09 is closed: posting to journal entry ${entryId} refused`);
    await expect(
      db.pool.query(`UPDATE gl.journal_entries SET entry_date = '2026-10-01' WHERE id = $1`, [entryId]),
    ).rejects.toThrow(/fiscal period 2026-09 is closed: changing journal entry/);
    await expect(db.pool.query(`DELETE FROM gl.journal_entries WHERE id = $1`, [entryId])).rejects.toThrow(
      `fiscal period 2026-09 is closed: deleting journal entry ${entryId} refused`,
    );
    const { rows } = await db.pool.query(
      `SELECT sum(debit) AS d, sum(credit) AS c FROM gl.journal_lines WHERE entry_id = $1`,
      [entryId],
    );
    expect(rows[0]).toEqual({ d: '410.55', c: '410.55' });
  });

  it('refuses a period that does not exist, and reopening a closed one', async () => {
    await expect(
      post('2030-01-02', 'far future', [
        { account: '6900', debit: 1 },
        { account: '1000', credit: 1 },
      ]),
    ).rejects.toThrow(/^fiscal period 2030-01 does not exist: posting journal entry 'far future' refused/);
    await expect(db.pool.query(`SELECT gl.open_period('2026-09')`)).rejects.toThrow(
      'fiscal period 2026-09 is closed; it cannot be opened again by a job',
    );
    const { rows } = await db.pool.query(
      `SELECT gl.open_period('2026-10') AS a, gl.close_period('2026-09') AS b`,
    );
    expect(rows[0]).toEqual({ a: 'already open', b: 'already closed' });
    await expect(db.pool.query(`SELECT gl.open_period('2026-13')`)).rejects.toThrow(
      `a period is written YYYY-MM (for example 2026-11), not '2026-13'`,
    );
  });

  it('makes a close wait for a posting in flight, so nothing lands after the close', async () => {
    const poster = await db.pool.connect();
    const closer = await db.pool.connect();
    try {
      await poster.query('BEGIN');
      await poster.query(
        `SELECT gl.post_entry('2026-11-02', 'in flight', '[{"account":"6900","debit":5},{"account":"1000","credit":5}]')`,
      );
      await closer.query(`SET lock_timeout = '300ms'`);
      await expect(closer.query(`SELECT gl.close_period('2026-11')`)).rejects.toThrow(/lock timeout/);
      await poster.query('ROLLBACK');
    } finally {
      await poster.query('ROLLBACK').catch(() => undefined);
      poster.release();
      closer.release(true);
    }
  });
});

describe('gl.trial_balance', () => {
  it('shows brought-forward, movement and closing balance per account, and balances', async () => {
    // October (besides the rent of 2500.00 above): sales 1200.00 on account, 800.00 collected.
    await post('2026-10-20', 'october sales', [
      { account: '1200', debit: 1200 },
      { account: '4000', credit: 1200 },
    ]);
    await post('2026-10-25', 'october collection', [
      { account: '1000', debit: 800 },
      { account: '1200', credit: 800 },
    ]);
    // November: more sales 300.00, and 150.00 of it collected.
    await post('2026-11-10', 'november sales', [
      { account: '1200', debit: 300 },
      { account: '4000', credit: 300 },
    ]);
    await post('2026-11-12', 'november collection', [
      { account: '1000', debit: 150 },
      { account: '1200', credit: 150 },
    ]);
    const { rows } = await db.pool.query(
      `SELECT account_code, opening_balance, debit, credit, balance FROM gl.trial_balance WHERE period = '2026-11' ORDER BY account_code`,
    );
    // Cash 1000: −410.55 (Sep) − 2500.00 + 800.00 (Oct) = −2110.55 brought forward; +150.00 → −1960.55.
    // AR 1200: 1200.00 − 800.00 = 400.00; +300.00 − 150.00 → 550.00. Revenue 4000: −1200.00; −300.00 → −1500.00.
    // Rent 6200 and utilities 6300 have no November movement but carry their balances.
    expect(rows).toEqual([
      {
        account_code: '1000',
        opening_balance: '-2110.55',
        debit: '150.00',
        credit: '0.00',
        balance: '-1960.55',
      },
      {
        account_code: '1200',
        opening_balance: '400.00',
        debit: '300.00',
        credit: '150.00',
        balance: '550.00',
      },
      {
        account_code: '4000',
        opening_balance: '-1200.00',
        debit: '0.00',
        credit: '300.00',
        balance: '-1500.00',
      },
      { account_code: '6200', opening_balance: '2500.00', debit: '0.00', credit: '0.00', balance: '2500.00' },
      { account_code: '6300', opening_balance: '410.55', debit: '0.00', credit: '0.00', balance: '410.55' },
    ]);
    const totals = await db.pool.query(
      `SELECT period, sum(debit) AS debit, sum(credit) AS credit, sum(balance) AS balance FROM gl.trial_balance GROUP BY period ORDER BY period`,
    );
    expect(totals.rows).toEqual([
      { period: '2026-09', debit: '410.55', credit: '410.55', balance: '0.00' },
      { period: '2026-10', debit: '4500.00', credit: '4500.00', balance: '0.00' },
      { period: '2026-11', debit: '450.00', credit: '450.00', balance: '0.00' },
    ]);
  });
});
