import { createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { createCsvWriter } from '../src/csv/writer.js';
import { CancelledError, UserError } from '../src/errors.js';
import { bindNamedParams } from '../src/db/sql-params.js';
import { createXlsxFormat } from '../src/stages/format-xlsx.js';
import { xlsxFormatSchema } from '../src/xlsx/options.js';
import { createFileSink, fileSinkSchema } from '../src/stages/sink-file.js';
import {
  columnTypeOf,
  createPostgresSource,
  postgresSourceSchema,
  resolveParams,
  type ParamValues,
} from '../src/stages/source-postgres.js';
import type { Cell, Reject, StageContext } from '../src/stages/types.js';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

const lit = pg.escapeLiteral;

describe('bindNamedParams', () => {
  const params = { period: '2026-11', name: "O'Brien", schema: 'ledger', tbl: 'a"b', n: 42, flag: true };

  it('quotes literals and identifiers', () => {
    expect(
      bindNamedParams(
        `SELECT * FROM :"schema".entries WHERE period = :'period' AND who = :'name'`,
        params,
        lit,
      ),
    ).toBe(`SELECT * FROM "ledger".entries WHERE period = '2026-11' AND who = 'O''Brien'`);
    expect(bindNamedParams(`SELECT :'n', :'flag' FROM :"tbl"`, params, lit)).toBe(
      `SELECT '42', 'true' FROM "a""b"`,
    );
    // pg's escapeLiteral writes a value with a backslash as an E'' string (with a leading space).
    expect(bindNamedParams(`SELECT :'name'`, { name: 'back\\slash' }, lit)).toBe(`SELECT  E'back\\\\slash'`);
  });

  it('leaves string literals, quoted identifiers, comments, dollar quotes and casts alone', () => {
    const sql = [
      `SELECT ':''period''' AS a, E'it\\'s :''period''' AS b, U&':''period''' AS c, "col:'period'" AS d,`,
      `  $$ :'period' $$ AS e, $fn$ it's :"schema" $fn$ AS f, x::text, y::"MyType", $1 AS g -- :'period'`,
      `/* :'period' /* nested :'period' */ still :'period' */ FROM t WHERE p = :'period'`,
    ].join('\n');
    expect(bindNamedParams(sql, params, lit)).toBe(sql.replace(/= :'period'$/, "= '2026-11'"));
  });

  it('names a missing parameter and the ones given', () => {
    expect(() => bindNamedParams(`SELECT :'perod'`, { period: 'x', company: 'y' }, lit)).toThrow(
      new UserError(
        "the query uses parameter 'perod', which was not given; parameters given: period, company",
      ),
    );
    expect(() => bindNamedParams(`SELECT :"s"`, {}, lit)).toThrow(/parameters given: \(none\)/);
  });

  it('refuses psql raw :name substitution of a given parameter, and ignores other colons', () => {
    expect(() => bindNamedParams(`SELECT * FROM t WHERE p = :period`, params, lit)).toThrow(
      /write :'period' for a value or :"period" for an identifier/,
    );
    const sql = `SELECT a[1:2], b[1:x], f(y := 1), '10:30'::time FROM t`;
    expect(bindNamedParams(sql, params, lit)).toBe(sql);
  });
});

describe('resolveParams', () => {
  const declared = {
    period: { type: 'date' as const },
    company: { type: 'int' as const, default: 1 },
    rate: { type: 'decimal' as const, default: '0.5' },
    final: { type: 'bool' as const, default: false },
    label: { type: 'string' as const, default: '' },
  };

  it('checks and normalises typed values, using defaults', () => {
    expect(resolveParams(declared, { period: '2026-11-30', final: 'yes', company: ' 7 ' })).toEqual({
      period: '2026-11-30',
      company: '7',
      rate: '0.5',
      final: 'true',
      label: '',
    });
  });

  it.each<[ParamValues, string]>([
    [{}, "parameter 'period' is required: expected a date YYYY-MM-DD, e.g. 2026-11-30"],
    [
      { period: '2026-02-30' },
      `parameter 'period': "2026-02-30" is not valid; expected a date YYYY-MM-DD, e.g. 2026-11-30`,
    ],
    [
      { period: '2026-11-30', company: '1.5' },
      `parameter 'company': "1.5" is not valid; expected an integer, e.g. 42`,
    ],
    [
      { period: '2026-11-30', company: '99999999999999999999' },
      `parameter 'company': "99999999999999999999" is not valid`,
    ],
    [
      { period: '2026-11-30', rate: '1e3' },
      `parameter 'rate': "1e3" is not valid; expected a decimal number, e.g. 1250.75`,
    ],
    [
      { period: '2026-11-30', final: 'maybe' },
      `parameter 'final': "maybe" is not valid; expected true or false`,
    ],
    [
      { period: '2026-11-30', perod: 'x' },
      `unknown parameter 'perod'; the query declares: period, company, rate, final, label`,
    ],
  ])('refuses %j', (values, message) => {
    expect(() => resolveParams(declared, values)).toThrow(UserError);
    expect(() => resolveParams(declared, values)).toThrow(message);
  });
});

let db: TestDatabase;
let home: string;
let ctx: StageContext;

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h.dir];
  await mkdir(path.join(home, 'sql', 'exports'), { recursive: true });
  await mkdir(path.join(home, 'out'));
  ctx = { home, pool: db.pool, log: pino({ level: 'silent' }), signal: new AbortController().signal };
  await db.pool.query(`
    CREATE TABLE public.ledger (
      id bigint PRIMARY KEY, period text NOT NULL, account text NOT NULL, amount numeric(12,2),
      qty integer, posted_on date, posted_at timestamp, final boolean, memo text, rate float8);
    INSERT INTO public.ledger VALUES
      (1, '2026-11', '4000', -12.50, -7, '2026-11-30', '2026-11-30 10:15:00', true, E'tab\\there, line\\nbreak, back\\\\slash', 0.1),
      (2, '2026-11', '=SUM(A1)', 1250.75, 3, '2026-11-01', NULL, false, '', 1e21),
      (3, '2026-11', '5000', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (4, '2026-10', '4000', 1, 1, '2026-10-31', '2026-10-31 23:59:59.5', true, 'older', -0.5);
    CREATE SEQUENCE public.export_seq;
  `);
  await writeFile(
    path.join(home, 'sql', 'exports', 'ledger.sql'),
    `-- ledger lines of one period\nSELECT id, account, amount, qty, posted_on, posted_at, final, memo, rate\n  FROM :"schema".ledger\n WHERE period = :'period'\n ORDER BY id;\n`,
  );
});

const ledgerSource = (values: ParamValues, c: StageContext = ctx) =>
  createPostgresSource(
    postgresSourceSchema.parse({
      kind: 'postgres',
      query: 'sql/exports/ledger.sql',
      params: { period: { type: 'string' }, schema: { type: 'string', default: 'public' } },
    }),
    c,
    values,
  );

async function collect(
  values: ParamValues,
): Promise<{ columns: readonly string[]; types: readonly string[]; rows: Cell[][]; lines: number[] }> {
  const { columns, types, batches } = await ledgerSource(values).open();
  const rows: Cell[][] = [];
  const lines: number[] = [];
  for await (const b of batches) {
    expect(b.columns).toBe(columns);
    rows.push(...b.rows);
    lines.push(...b.lines);
  }
  return { columns, types, rows, lines };
}

describe('postgres source', () => {
  it('streams a query from sql/ with its parameters, typed and COPY-decoded', async () => {
    const r = await collect({ period: '2026-11' });
    expect(r.columns).toEqual([
      'id',
      'account',
      'amount',
      'qty',
      'posted_on',
      'posted_at',
      'final',
      'memo',
      'rate',
    ]);
    expect(r.types).toEqual([
      'int',
      'text',
      'decimal',
      'int',
      'date',
      'timestamp',
      'bool',
      'text',
      'decimal',
    ]);
    expect(r.rows).toEqual([
      [
        '1',
        '4000',
        '-12.50',
        '-7',
        '2026-11-30',
        '2026-11-30 10:15:00',
        'true',
        'tab\there, line\nbreak, back\\slash',
        '0.1',
      ],
      ['2', '=SUM(A1)', '1250.75', '3', '2026-11-01', null, 'false', '', '1e+21'],
      ['3', '5000', null, null, null, null, null, null, null],
    ]);
    expect(r.lines).toEqual([1, 2, 3]);
  });

  it('writes ISO dates whatever the session DateStyle', async () => {
    await db.pool.query(`ALTER DATABASE ${db.name} SET datestyle = 'SQL, DMY'`);
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      const { batches } = await ledgerSource({ period: '2026-10' }, { ...ctx, pool }).open();
      const rows: Cell[][] = [];
      for await (const b of batches) rows.push(...b.rows);
      expect(rows[0]!.slice(4, 6)).toEqual(['2026-10-31', '2026-10-31 23:59:59.5']);
    } finally {
      await pool.end();
      await db.pool.query(`ALTER DATABASE ${db.name} RESET datestyle`);
    }
  });

  it('refuses bad parameters before running anything', async () => {
    const src = createPostgresSource(
      postgresSourceSchema.parse({
        kind: 'postgres',
        sql: `SELECT 1/0 AS boom WHERE :'d' > '2000-01-01'`,
        params: { d: { type: 'date' } },
      }),
      ctx,
      { d: '30/11/2026' },
    );
    await expect(src.open()).rejects.toThrow(
      new UserError(`parameter 'd': "30/11/2026" is not valid; expected a date YYYY-MM-DD, e.g. 2026-11-30`),
    );
    await expect(ledgerSource({}).open()).rejects.toThrow(
      "parameter 'period' is required: expected any text",
    );
  });

  it('keeps query files under sql/ and explains query errors with their line', async () => {
    const outside = createPostgresSource(
      postgresSourceSchema.parse({ kind: 'postgres', query: 'sql/../secrets.sql' }),
      ctx,
    );
    await expect(outside.open()).rejects.toThrow(/must be a file under sql\//);
    const missing = createPostgresSource(
      postgresSourceSchema.parse({ kind: 'postgres', query: 'sql/exports/nope.sql' }),
      ctx,
    );
    await expect(missing.open()).rejects.toThrow(new UserError('sql/exports/nope.sql: no such file'));
    const broken = createPostgresSource(
      postgresSourceSchema.parse({ kind: 'postgres', sql: 'SELECT id\nFROM ledger\nWHERE nope = 1' }),
      ctx,
    );
    await expect(broken.open()).rejects.toThrow(
      new UserError('the inline query, line 3: column "nope" does not exist'),
    );
    const dup = createPostgresSource(
      postgresSourceSchema.parse({ kind: 'postgres', sql: 'SELECT id, id FROM ledger' }),
      ctx,
    );
    await expect(dup.open()).rejects.toThrow(/returns column 'id' twice; rename one with AS/);
    const unnamed = createPostgresSource(
      postgresSourceSchema.parse({ kind: 'postgres', sql: 'SELECT 1 + 1' }),
      ctx,
    );
    await expect(unnamed.open()).rejects.toThrow(/give every expression a name with AS/);
    // The export runs read-only: a query with side effects fails instead of changing data.
    const writes = createPostgresSource(
      postgresSourceSchema.parse({ kind: 'postgres', sql: `SELECT nextval('public.export_seq') AS n` }),
      ctx,
    );
    const consume = async (): Promise<void> => {
      for await (const _ of (await writes.open()).batches) {
        // nothing
      }
    };
    await expect(consume()).rejects.toThrow(
      new UserError('the inline query: cannot execute nextval() in a read-only transaction'),
    );
    expect(
      (await db.pool.query(`SELECT last_value::int AS n, is_called FROM public.export_seq`)).rows[0],
    ).toEqual({ n: 1, is_called: false });
    expect(postgresSourceSchema.safeParse({ kind: 'postgres' }).success).toBe(false);
    expect(postgresSourceSchema.safeParse({ kind: 'postgres', sql: 'x', query: 'sql/x.sql' }).success).toBe(
      false,
    );
  });

  it('streams a large result in batches and releases its connection when stopped early or cancelled', async () => {
    const sql = `SELECT i AS id, 'item ' || i AS name, i * 1.5 AS amount FROM generate_series(1, 200000) i`;
    const src = createPostgresSource(postgresSourceSchema.parse({ kind: 'postgres', sql }), ctx);
    let n = 0;
    let batches = 0;
    for await (const b of (await src.open()).batches) {
      n += b.rows.length;
      batches++;
    }
    expect(n).toBe(200000);
    expect(batches).toBeGreaterThan(50);

    const early = (await src.open()).batches;
    for await (const _ of early) break;
    const ac = new AbortController();
    const cancelled = (
      await createPostgresSource(postgresSourceSchema.parse({ kind: 'postgres', sql }), {
        ...ctx,
        signal: ac.signal,
      }).open()
    ).batches;
    const consume = async (): Promise<void> => {
      for await (const _ of cancelled) ac.abort();
    };
    await expect(consume()).rejects.toBeInstanceOf(CancelledError);
    // Both connections were closed rather than returned mid-COPY; no COPY is left running in this
    // file's database (other test files run COPYs of their own on the shared server). A backend
    // whose client went away ends at its next write, so it is given a moment to notice.
    const running = async (): Promise<number> =>
      (
        await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE query LIKE 'COPY (%' AND state = 'active' AND pid <> pg_backend_pid() AND datname = current_database()`,
        )
      ).rows[0]!.n;
    let left = await running();
    for (let i = 0; i < 50 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await running();
    }
    expect(left).toBe(0);
    expect(db.pool.totalCount).toBeLessThanOrEqual(5);
  });

  it('maps type OIDs to column types', () => {
    expect([20, 21, 23, 1700, 701, 16, 1082, 1114, 1184, 25, 1043, 2950, 790].map(columnTypeOf)).toEqual([
      'int',
      'int',
      'int',
      'decimal',
      'decimal',
      'bool',
      'date',
      'timestamp',
      'timestamp',
      'text',
      'text',
      'text',
      'text',
    ]);
  });
});

describe('export: postgres → xlsx / csv → file, read back', () => {
  const sink = () =>
    createFileSink(fileSinkSchema.parse({ kind: 'file', dir: 'out', name: 'ledger-{period}.{ext}' }), ctx);

  it('writes an xlsx that our reader returns as the query’s rows', async () => {
    const { columns, types, batches } = await ledgerSource({ period: '2026-11' }).open();
    const format = createXlsxFormat(xlsxFormatSchema.parse({ kind: 'xlsx', sheet_name: 'Ledger' }));
    const s = sink();
    const out = await s.open(s.outputName({ period: '2026-11', ext: format.extension }));
    expect(await format.write(columns, types, batches, out.stream)).toBe(3);
    const file = await out.commit();
    expect(path.basename(file)).toBe('ledger-2026-11.xlsx');

    const rejects: Reject[] = [];
    const rows: Cell[][] = [];
    for await (const b of format.read(createReadStream(file), 'ledger.xlsx', (r) => rejects.push(r)))
      rows.push(...b.rows);
    expect(rejects).toEqual([]);
    expect(rows).toEqual([
      [
        '1',
        '4000',
        '-12.5',
        '-7',
        '2026-11-30',
        '2026-11-30T10:15:00',
        'true',
        'tab\there, line\nbreak, back\\slash',
        '0.1',
      ],
      // XLSX text is exact: an inline string is never evaluated, so no leading quote (CSV has one).
      ['2', '=SUM(A1)', '1250.75', '3', '2026-11-01', null, 'false', null, '1000000000000000000000'],
      ['3', '5000', null, null, null, null, null, null, null],
    ]);
  });

  it('writes a csv that parses back to the query’s rows, formulas neutralised', async () => {
    const { columns, types, batches } = await ledgerSource({ period: '2026-11' }).open();
    const format = createCsvWriter();
    const s = sink();
    const out = await s.open(s.outputName({ period: '2026-11', ext: format.extension }));
    expect(await format.write(columns, types, batches, out.stream)).toBe(3);
    const file = await out.commit();
    const text = await readFile(file, 'utf8');
    const back = parse(text, { cast: (v, c) => (v === '' && !c.quoting ? null : v) }) as Cell[][];
    expect(back[0]).toEqual(columns);
    expect(back.slice(1)).toEqual([
      [
        '1',
        '4000',
        '-12.50',
        '-7',
        '2026-11-30',
        '2026-11-30 10:15:00',
        'true',
        'tab\there, line\nbreak, back\\slash',
        '0.1',
      ],
      ['2', "'=SUM(A1)", '1250.75', '3', '2026-11-01', null, 'false', '', '1e+21'],
      ['3', '5000', null, null, null, null, null, null, null],
    ]);
    // Same name again: refused, the first export stays.
    const again = sink();
    await expect(again.open('ledger-2026-11.csv')).rejects.toThrow(/already exists/);
  });
});
