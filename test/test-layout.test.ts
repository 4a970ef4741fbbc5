/**
 * The layout of test/: test files (`*.test.ts`, the chaos suite's `*.chaos.ts`), every module they
 * share under test/helpers/, data under test/fixtures/, ambient type declarations under test/types/.
 * A helper module anywhere else is the scattering this file exists to stop: move it to test/helpers/.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const CODE = /\.(ts|mts|cts|js|mjs|cjs)$/;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : [p.split(path.sep).join('/')];
  });
}

/** Why `file` (a path under test/) is out of place, or null. */
export function misplaced(file: string): string | null {
  if (!CODE.test(file)) return null;
  if (/\.(test|chaos)\.ts$/.test(file))
    return file.startsWith('test/helpers/') ? 'a test file among the helpers' : null;
  if (file.startsWith('test/helpers/')) return null;
  if (file.startsWith('test/types/') && file.endsWith('.d.ts')) return null;
  return 'a helper module outside test/helpers/';
}

describe('test/ layout', () => {
  it('keeps every helper module under test/helpers/, and no test file there', () => {
    const wrong = files('test')
      .map((f) => ({ f, why: misplaced(f) }))
      .filter((x) => x.why)
      .map((x) => `${x.f}: ${x.why}`);
    expect(wrong).toEqual([]);
  });

  it('tells a helper from a test file and from data', () => {
    expect(misplaced('test/edi-helpers.ts')).toBe('a helper module outside test/helpers/');
    expect(misplaced('test/fixtures/jobs/runner.ts')).toBe('a helper module outside test/helpers/');
    expect(misplaced('test/chaos/stage.ts')).toBe('a helper module outside test/helpers/');
    expect(misplaced('test/x12/preload.mjs')).toBe('a helper module outside test/helpers/');
    expect(misplaced('test/helpers/db.test.ts')).toBe('a test file among the helpers');
    expect(misplaced('test/x12/splitter.test.ts')).toBeNull();
    expect(misplaced('test/chaos/faults.chaos.ts')).toBeNull();
    expect(misplaced('test/helpers/chaos/stage.ts')).toBeNull();
    expect(misplaced('test/types/parse-prometheus-text-format.d.ts')).toBeNull();
    expect(misplaced('test/fixtures/orders.csv')).toBeNull();
  });
});
