import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { z } from 'zod';
import { encryptorFor } from '../compliance/encrypted-columns.js';
import { quoteIdent, quoteQualified, splitQualified } from '../db/pool.js';
import { UserError } from '../errors.js';
import type { Cell, Sink, SinkWriter } from './types.js';

/**
 * `sink: { kind: postgres }` — loads rows with COPY inside the file's transaction.
 *
 *   append   COPY target (cols) FROM STDIN
 *   replace  DELETE FROM target; COPY target …            (readers see the old rows until commit)
 *   upsert   COPY pg_temp.stage …; INSERT INTO target SELECT DISTINCT ON (key) … ON CONFLICT (key) DO UPDATE
 *            (the last row of a key in the file wins)
 *
 * Columns listed in compliance.encrypted_columns (bank account numbers, tax ids) are encrypted on
 * the way in (src/compliance/keys.ts): PostgreSQL only ever receives their ciphertext.
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
  return {
    describe: () =>
      `postgres ${config.table} (${config.mode}${config.key ? ` on ${config.key.join(', ')}` : ''})`,
    async open(client, columns): Promise<SinkWriter> {
      await checkColumns(client, config.table, columns);
      const encrypt = await encryptorFor(client, config.table, columns);
      const cols = columns.map(quoteIdent).join(', ');
      let copyTarget = target;
      if (config.mode === 'replace') await client.query(`DELETE FROM ${target}`);
      if (config.mode === 'upsert') {
        const missingKey = config.key!.filter((k) => !columns.includes(k));
        if (missingKey.length > 0) {
          throw new UserError(
            `upsert key ${missingKey.join(', ')} is not among the loaded columns (${columns.join(', ')})`,
          );
        }
        await client.query(
          `CREATE TEMP TABLE erp_stage ON COMMIT DROP AS SELECT ${cols} FROM ${target} WITH NO DATA`,
        );
        await client.query(`ALTER TABLE erp_stage ADD COLUMN erp_seq bigserial`);
        copyTarget = 'erp_stage';
      }
      const stream = client.query(copyFrom(`COPY ${copyTarget} (${cols}) FROM STDIN`));
      // A COPY that fails (bad value, constraint) emits 'error'; keep it so end() reports it.
      let failure: Error | null = null;
      stream.on('error', (err: Error) => {
        failure ??= err;
      });
      let written = 0;
      return {
        async write(rows) {
          if (failure) throw failure;
          written += rows.length;
          encrypt?.(rows);
          await writeWithBackpressure(stream, encodeCopyText(rows));
          if (failure) throw failure;
        },
        async abort(reason) {
          if (stream.closed) return;
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
          const res = await client.query(
            `INSERT INTO ${target} (${cols}) SELECT DISTINCT ON (${key}) ${cols} FROM erp_stage ORDER BY ${key}, erp_seq DESC ` +
              `ON CONFLICT (${key}) DO ${updates.length > 0 ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`,
          );
          await client.query('DROP TABLE erp_stage');
          return res.rowCount ?? 0;
        },
      };
    },
  };
}

/** Refuses a load whose columns the table lacks, listing the table's columns. */
async function checkColumns(client: pg.PoolClient, table: string, columns: readonly string[]): Promise<void> {
  const { schema, table: name } = splitQualified(table);
  // The catalog itself, not information_schema: its views cost milliseconds per file.
  const { rows } = await client.query<{ column_name: string }>(
    `SELECT attname AS column_name FROM pg_attribute
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
}
