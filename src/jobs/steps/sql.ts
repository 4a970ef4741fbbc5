/**
 * The `sql` job step: `{ sql: FILE, params?: {...} }` runs sql/FILE in one transaction with the
 * job's parameters bound as psql-style `:'name'` (src/jobs/sql-step.ts). Its success is committed
 * with its work (role `transaction`), so a retry never runs a committed step twice.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { unboundParams } from '../../db/sql-params.js';
import { UserError } from '../../errors.js';
import { runSqlStep, sqlFilePath, type SqlStepResult } from '../sql-step.js';
import { tableOf } from './table.js';
import { stepParams, type StepKind, type StepShown } from './types.js';

const schema = z
  .object({
    /** Run a SQL file from sql/ with the job's parameters bound as psql-style `:'name'`. */
    sql: z.string(),
    params: stepParams,
  })
  .strict();

/** A SQL step's lines in `erp run`: its command tag and count, then the rows its statements returned. */
function sqlLines(s: {
  file: string;
  command: string | null;
  rowCount: number;
  dryRun: boolean;
  results: { columns: string[]; rows: Record<string, unknown>[]; rowCount: number }[];
}): StepShown {
  const lines = [
    `  sql ${s.file}: ${s.command ?? ''} ${s.rowCount}${s.dryRun ? ' (rolled back: dry run)' : ''}`,
  ];
  for (const r of s.results) {
    if (r.rows.length === 0) continue;
    lines.push(tableOf(r).replace(/^/gm, '    '));
    if (r.rowCount > r.rows.length) lines.push(`    … ${r.rowCount - r.rows.length} more rows`);
  }
  return { lines };
}

/** The results a SQL step's record keeps (as many rows as the step kept, sql-step.ts). */
type RecordedResults = { columns: string[]; rows: Record<string, unknown>[]; row_count?: number }[];

export const sqlStep: StepKind<'sql', typeof schema, SqlStepResult> = {
  kind: 'sql',
  role: 'transaction',
  schema,
  summary: "runs a SQL file from sql/ in one transaction, parameters bound as `:'name'`",
  async create(entry, { home, params }) {
    const name = entry.sql;
    return [
      {
        name,
        params,
        async plan({ jobFile }) {
          await access(sqlFilePath(home, name)).catch(() => {
            throw new UserError(`${jobFile}: step sql '${name}': no such file sql/${name}`);
          });
        },
        // The file exists under sql/, and every `:'name'` it uses is bound by the step's parameters.
        async preflight(checks) {
          let text: string;
          try {
            text = await readFile(sqlFilePath(checks.home, name), 'utf8');
          } catch (err) {
            const message = err instanceof UserError ? err.message : `no such file sql/${name}`;
            checks.problem(`${checks.jobFile}, step sql '${name}'`, message);
            return;
          }
          for (const missing of unboundParams(text, params))
            checks.problem(
              `sql/${name}`,
              `uses :'${missing}', which the job does not give (parameters: ${Object.keys(params).join(', ') || 'none'}); declare it in ${checks.jobFile} params`,
            );
        },
        run: (ctx) =>
          runSqlStep(ctx.app.pool, ctx.app.home, name, params, {
            dryRun: ctx.dryRun,
            signal: ctx.signal,
            commitWith: ctx.commitWith,
          }),
      },
    ];
  },
  async uses(entry, defs) {
    await defs.file('sql', entry.sql, path.relative(defs.home, sqlFilePath(defs.home, entry.sql)));
  },
  report: {
    detail: (s) => ({
      command: s.command,
      row_count: s.rowCount,
      // As many rows as the step kept (sql-step.ts), so erp run prints the same from the record.
      results: s.results.map((r) => ({ columns: r.columns, rows: r.rows, row_count: r.rowCount })),
    }),
    progress: () => ({}),
    shown: (_step, s) => sqlLines(s),
    shownFromRecord(r) {
      if (r.detail.row_count === undefined) return { lines: [] };
      return sqlLines({
        file: r.name,
        command: (r.detail.command as string | null | undefined) ?? null,
        rowCount: r.detail.row_count as number,
        dryRun: false,
        results: ((r.detail.results ?? []) as RecordedResults).map((x) => ({
          ...x,
          rowCount: x.row_count ?? x.rows.length,
        })),
      });
    },
    detailLines(d) {
      const out: string[] = [];
      if (d.row_count !== undefined)
        out.push(
          `     ${(d.command as string | null | undefined) ?? 'rows'} ${String(d.row_count)} (rows affected or returned)`,
        );
      for (const r of (d.results ?? []) as RecordedResults) {
        if (r.rows.length > 0) out.push(tableOf(r).replace(/^/gm, '     '));
      }
      return out;
    },
  },
};
