/**
 * Text tables for operators: a SQL step's result rows in `erp run` and `erp runs show`, and the
 * listings of the commands (re-exported by commands/report.ts).
 */

/** Pads columns of a text table. */
export function table(header: string[], rows: (string | number | null)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Rows with named columns as a text table. */
export function tableOf(r: { columns: string[]; rows: Record<string, unknown>[] }): string {
  return table(
    r.columns,
    r.rows.map((row) => r.columns.map((c) => cellText(row[c]))),
  );
}

function cellText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
