import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { z } from 'zod';
import { encryptedColumnsOf, sealRows, sealerFor } from '../compliance/encrypted-columns.js';
import { quoteIdent, quoteQualified, splitQualified } from '../db/pool.js';
import { UserError } from '../errors.js';
import type { Cell, CopyDialect, Sealer, Sink, SinkWriter, StageKind } from './types.js';

/**
 * `sink: { kind: postgres }` — loads rows with COPY inside the file's transaction.
 *
 *   append   COPY target (cols) FROM STDIN
 *   replace  DELETE FROM target; COPY target …            (readers see the old rows until commit)
 *   upsert   COPY pg_temp.stage (no index, no WAL) …; INSERT INTO target SELECT … ON CONFLICT (key) DO UPDATE
 *            (a key twice in the file: undone, then SELECT DISTINCT ON (key) … ORDER BY key, ctid DESC —
 *            the last row of a key in the file wins)
 *
 * Columns listed in compliance.encrypted_columns (bank account numbers, tax ids) are encrypted on
 * the way in (src/compliance/keys.ts), a batch at a time: PostgreSQL only ever receives their
 * ciphertext. `write` encrypts the rows it is given; pass-through text (`writeText`) comes with its
 * values already sealed by the writer's `sealer` (src/pipeline/run.ts splices them into the records).
 */
export const postgresSinkSchema = z
  .object({
    kind: z.literal('postgres'),
    /** Target table, `schema.table` or `table`. */
    table: z.string().min(1),
    /** How rows meet what the table already holds. */
    mode: z.enum(['append', 'upsert', 'replace']).default('append'),
    /** Conflict key for upsert: columns of a unique index or primary key. */
    key: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict()
  .refine((c) => c.mode !== 'upsert' || c.key !== undefined, {
    message: 'mode upsert needs `key`: the columns of a unique index of the table',
    path: ['key'],
  });
export type PostgresSinkConfig = z.infer<typeof postgresSinkSchema>;

const ESCAPE = /[\\\t\n\r]/;
const ESCAPE_ALL = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** Encodes rows in COPY text format. */
export function encodeCopyText(rows: Cell[][]): string {
  let out = '';
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let i = 0; i < row.length; i++) {
      const v = row[i];
      if (i > 0) out += '\t';
      if (v === null || v === undefined) out += '\\N';
      else out += ESCAPE.test(v) ? v.replace(ESCAPE_ALL, (c) => ESCAPES[c]!) : v;
    }
    out += '\n';
  }
  return out;
}

/** A string as an SQL literal. */
function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * Encodes rows as CSV in `dialect` for `COPY … (FORMAT csv)`: NULL is an empty field, and a value
 * is quoted when it is empty (to stay distinct from NULL), holds the delimiter, the quote or a line
 * break, or is `\.` (COPY's end-of-data marker).
 */
export function csvRowEncoder(dialect: CopyDialect): (rows: Cell[][]) => string {
  const { delimiter: d, quote: q } = dialect;
  const special = new RegExp(`[${escapeClass(d)}${escapeClass(q)}\r\n]`);
  const qq = q + q;
  return (rows) => {
    let out = '';
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      for (let i = 0; i < row.length; i++) {
        const v = row[i];
        if (i > 0) out += d;
        if (v === null || v === undefined) continue;
        if (v === '' || v === '\\.' || special.test(v)) out += q + v.replaceAll(q, qq) + q;
        else out += v;
      }
      out += '\n';
    }
    return out;
  };
}

function escapeClass(c: string): string {
  return c.replace(/[\\\]^-]/g, '\\$&');
}

/** Writes `chunk`, waiting for 'drain' when the stream asks for it; rejects if the stream fails. */
export async function writeWithBackpressure(stream: Writable, chunk: string): Promise<void> {
  if (stream.write(chunk)) return;
  const ac = new AbortController();
  try {
    await Promise.race([
      once(stream, 'drain', { signal: ac.signal }),
      once(stream, 'error', { signal: ac.signal }),
    ]);
  } finally {
    ac.abort();
  }
}

export function createPostgresSink(config: PostgresSinkConfig): Sink {
  const target = quoteQualified(config.table);
  for (const k of config.key ?? []) quoteIdent(k);
  // The table's shape is read once per run (the sink is built per run), not per file: a run over a
  // glob of small files pays it once. Which columns are encrypted is part of that shape
  // (compliance.encrypted_columns changes by migration, as the columns do), and so is the sealer
  // (its keyring is loaded at the run's first value to encrypt).
  let checked: { key: string; types: string[]; sealer: Sealer | null } | null = null;
  return {
    describe: () =>
      `postgres ${config.table} (${config.mode}${config.key ? ` on ${config.key.join(', ')}` : ''})`,
    async open(client, columns, csv, before): Promise<SinkWriter> {
      const key = columns.join('\0');
      if (checked?.key !== key) {
        checked = {
          key,
          types: await checkColumns(client, config.table, columns),
          sealer: sealerFor(config.table, columns, await encryptedColumnsOf(client, config.table)),
        };
      }
      const columnTypes = checked.types;
      const sealer = checked.sealer;
      const cols = columns.map(quoteIdent).join(', ');
      let copyTarget = target;
      // `before` goes with the first statement of the load, in the same message.
      const first = (sql: string): string => (before ? `${before};\n${sql}` : sql);
      if (config.mode === 'replace') await client.query(first(`DELETE FROM ${target}`));
      if (config.mode === 'upsert') {
        const missingKey = config.key!.filter((k) => !columns.includes(k));
        if (missingKey.length > 0) {
          throw new UserError(
            `upsert key ${missingKey.join(', ')} is not among the loaded columns (${columns.join(', ')})`,
          );
        }
        await client.query(
          first(`CREATE TEMP TABLE erp_stage ON COMMIT DROP AS SELECT ${cols} FROM ${target} WITH NO DATA`),
        );
        copyTarget = 'erp_stage';
      }
      const options = csv
        ? ` (FORMAT csv, DELIMITER ${literal(csv.delimiter)}, QUOTE ${literal(csv.quote)})`
        : '';
      const encode = csv ? csvRowEncoder(csv) : encodeCopyText;
      const copy = `COPY ${copyTarget} (${cols}) FROM STDIN${options}`;
      const stream = client.query(copyFrom(config.mode === 'append' ? first(copy) : copy));
      // A COPY that fails (bad value, constraint) emits 'error'; keep it so end() reports it.
      let failure: Error | null = null;
      stream.on('error', (err: Error) => {
        failure ??= err;
      });
      let written = 0;
      const send = async (text: string, rows: number): Promise<void> => {
        if (failure) throw failure;
        written += rows;
        await writeWithBackpressure(stream, text);
        if (failure) throw failure;
      };
      return {
        columnTypes,
        ...(sealer && { sealer }),
        write: (rows) => {
          if (sealer) sealRows(sealer, rows);
          return send(encode(rows), rows.length);
        },
        async writeText(text, rows) {
          if (!csv) throw new Error('writeText needs a sink opened with a CSV dialect');
          await send(text, rows);
        },
        async abort(reason) {
          // After an error PostgreSQL has ended the COPY (or never began it, when a statement
          // ahead of it failed): nothing is left to cancel, and the stream would wait for ever
          // for a CopyInResponse to send its CopyFail on.
          if (stream.closed || failure) return;
          const closed = once(stream, 'close').catch(() => undefined);
          stream.destroy(reason);
          await closed;
        },
        async end() {
          if (failure) throw failure;
          stream.end();
          await Promise.race([
            once(stream, 'finish'),
            once(stream, 'error').then(([e]) => Promise.reject(e)),
          ]);
          if (config.mode !== 'upsert') return written;
          const key = config.key!.map(quoteIdent).join(', ');
          const updates = columns
            .filter((c) => !config.key!.includes(c))
            .map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`);
          const onConflict = `ON CONFLICT (${key}) DO ${updates.length > 0 ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`;
          // Most files hold each key once: the stage goes in as it is, unsorted. A key twice makes
          // DO UPDATE fail (21000, "cannot affect row a second time"); then the statement is undone
          // and the stage deduplicated, the last row of a key in the file winning (the stage's
          // physical order is the file's: one COPY into a new table).
          await client.query('SAVEPOINT erp_upsert');
          let res: pg.QueryResult;
          try {
            res = await client.query(
              `INSERT INTO ${target} (${cols}) SELECT ${cols} FROM erp_stage ${onConflict}`,
            );
            await client.query('RELEASE SAVEPOINT erp_upsert');
          } catch (err) {
            if ((err as { code?: string }).code !== '21000') throw err;
            await client.query('ROLLBACK TO SAVEPOINT erp_upsert');
            res = await client.query(
              `INSERT INTO ${target} (${cols}) SELECT DISTINCT ON (${key}) ${cols} FROM erp_stage ORDER BY ${key}, ctid DESC ${onConflict}`,
            );
          }
          await client.query('DROP TABLE erp_stage');
          return res.rowCount ?? 0;
        },
      };
    },
  };
}

/**
 * Refuses a load whose columns the table lacks, listing the table's columns; returns the type
 * name (`pg_type.typname`) of each of `columns`.
 */
async function checkColumns(
  client: pg.PoolClient,
  table: string,
  columns: readonly string[],
): Promise<string[]> {
  const { schema, table: name } = splitQualified(table);
  // The catalog itself, not information_schema: its views cost milliseconds per file.
  const { rows } = await client.query<{ column_name: string; type: string }>(
    `SELECT attname AS column_name, (SELECT typname FROM pg_type WHERE oid = atttypid) AS type FROM pg_attribute
     WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [`${quoteIdent(schema)}.${quoteIdent(name)}`],
  );
  if (rows.length === 0) throw new UserError(`table ${table} does not exist (run erp migrate?)`);
  const have = new Set(rows.map((r) => r.column_name));
  const missing = columns.filter((c) => !have.has(c));
  if (missing.length > 0) {
    throw new UserError(
      `table ${table} has no column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; its columns are: ${rows.map((r) => r.column_name).join(', ')}`,
    );
  }
  const types = new Map(rows.map((r) => [r.column_name, r.type]));
  return columns.map((c) => types.get(c)!);
}

/** `sink: { kind: postgres }`, for src/stages/registry.ts. */
export const postgresSink: StageKind<'table sink', typeof postgresSinkSchema, Sink> = {
  kind: 'postgres',
  role: 'table sink',
  schema: postgresSinkSchema,
  create: (config) => createPostgresSink(config),
  summary: 'COPY into a table: append, upsert or replace',
};
