import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SQLSTATE } from '../src/db/sqlstate.js';

/** The project's own SQLSTATEs (class ERP) live in one map, beside the migrations that raise them. */
describe('SQLSTATE', () => {
  const migrations = readdirSync('sql')
    .filter((f) => f.endsWith('.sql'))
    .map((f) => readFileSync(`sql/${f}`, 'utf8'))
    .join('\n');
  const raised = new Set([...migrations.matchAll(/ERRCODE\s*=\s*'(ERP\w\w)'/g)].map((m) => m[1]!));
  const ours = Object.values(SQLSTATE).filter((c) => c.startsWith('ERP'));

  it('declares every code the migrations raise', () => {
    expect(raised.size).toBeGreaterThan(0);
    for (const code of raised) expect(ours).toContain(code);
  });

  it('declares only codes a migration raises', () => {
    for (const code of ours) expect(raised).toContain(code);
  });

  it('has no code twice', () => {
    expect(new Set(Object.values(SQLSTATE)).size).toBe(Object.values(SQLSTATE).length);
  });

  it('is the only place src/ spells a project SQLSTATE', () => {
    const spelled = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = `${dir}/${e.name}`;
        if (e.isDirectory()) return spelled(p);
        if (!e.name.endsWith('.ts') || p === 'src/db/sqlstate.ts') return [];
        return /'ERP\w\w'|\bERP0\d\b/.test(readFileSync(p, 'utf8')) ? [p] : [];
      });
    expect(spelled('src')).toEqual([]);
  });
});
