import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The run store (src/runs/store/) is the only code that reads or writes the `runner` schema
 * (docs/architecture.md). Every string and template literal of src/ that holds SQL is scanned —
 * comments and messages may name runner.* tables — so SQL against runner.* added anywhere else
 * fails here.
 * The one other owner is src/db/migrate.ts, which creates and reads runner.migrations before any
 * migration (and so the store's tables) exists.
 */

const OWNERS: Record<string, RegExp> = {
  'src/runs/store/': /.*/,
  'src/db/migrate.ts': /^runner\.migrations$/,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** SQL as the project writes it: upper-case keywords. */
const SQL = /\b(SELECT|INSERT|UPDATE|DELETE|FROM|JOIN|INTO)\b/;

/** The runner.* names in the SQL literals of a file (not in its comments or messages). */
function runnerNamesIn(file: string): string[] {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const names: string[] = [];
  const scan = (text: string): void => {
    if (!SQL.test(text)) return;
    for (const m of text.matchAll(/\brunner\.[a-z_]+/g)) names.push(m[0]);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) scan(node.text);
    else if (ts.isTemplateExpression(node)) {
      // One statement, whatever is interpolated into it.
      scan([node.head.text, ...node.templateSpans.map((s) => s.literal.text)].join(' '));
      for (const span of node.templateSpans) visit(span.expression);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  return names;
}

describe('the run store', () => {
  const found = sourceFiles('src').map((f) => ({
    file: f.split(path.sep).join('/'),
    names: runnerNamesIn(f),
  }));

  it('is the only code with SQL against runner.*', () => {
    const outside = found.flatMap(({ file, names }) => {
      const owner = Object.entries(OWNERS).find(([prefix]) => file.startsWith(prefix));
      return names.filter((n) => !owner || !owner[1].test(n)).map((n) => `${file}: ${n}`);
    });
    expect(outside).toEqual([]);
  });

  it('finds the SQL it guards (the scan reads template literals)', () => {
    const store = found.filter((f) => f.file.startsWith('src/runs/store/')).flatMap((f) => f.names);
    for (const table of [
      'runs',
      'run_steps',
      'run_files',
      'rejects',
      'ingested_files',
      'approvals',
      'alerts',
    ])
      expect(store).toContain(`runner.${table}`);
    expect(store).toContain('runner.claim_run');
    expect(store).toContain('runner.step_succeeded');
  });
});
