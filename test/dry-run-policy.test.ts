import { afterAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { erp as runErp, killChildren, type Result } from './helpers/runner.js';

/** `erp validate` and `erp run --dry-run` apply the whole reject policy and say what a real run would exit with. */

let db: TestDatabase;
let home: TestHome;
const erp = (args: string[]): Promise<Result> => runErp(args, { DATABASE_URL: db.url, ERP_HOME: home.dir });

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query('CREATE TABLE prices (sku text PRIMARY KEY, price numeric(10,2))');
  await home.link(['sql']);
  await home.write({
    'pipelines/prices.yaml': `
source: { kind: file, path: in/prices.csv }
format: { kind: csv }
validate:
  fields:
    sku: { type: string, required: true }
    price: { type: decimal, precision: 10, scale: 2, required: true }
sink: { kind: postgres, table: public.prices, mode: upsert, key: [sku] }
rejects: { max_reject_rate: 0.8 }
`,
    // 5 of 6 rows rejected: 83 % against a limit of 80 %.
    'in/prices.csv': 'sku,price\nA,1.00\nB,x\nC,y\nD,z\nE,w\nF,v\n',
  });
});
afterAll(killChildren);

describe('a dry run predicts the reject policy', () => {
  it('erp validate exits 3 on max_reject_rate, as the real run does, and says so', async () => {
    const v = await erp(['validate', 'prices']);
    expect(v.stdout).toContain('5 of 6 rows rejected (83.3%), above max_reject_rate 0.8');
    expect(v.stdout).toContain(
      'a real run would exit 3 (a file would break its reject policy and be rolled back)',
    );
    expect(v.code).toBe(3);
  });

  it('erp run --dry-run exits 3 too, and the real run agrees', async () => {
    const dry = await erp(['run', 'prices', '--dry-run']);
    expect(dry.stdout).toContain('a real run would exit 3');
    expect(dry.code).toBe(3);
    const real = await erp(['run', 'prices', '--inline']);
    expect(real.code).toBe(3);
    const { rows } = await db.pool.query('SELECT * FROM prices');
    expect(rows).toEqual([]);
  });
});
