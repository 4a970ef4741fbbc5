import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_DDL, generateCsv } from '../benchmarks/generate.js';
import { stepReporter } from '../src/commands/progress.js';
import type { RunProgress } from '../src/jobs/types.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';
import { erp, killChildren } from './helpers/runner.js';

/**
 * The progress of `erp run`: on a terminal a bar with the share of the file read, rows per second,
 * the time left and the step of how many; in a pipe the same figures as plain lines, now and then.
 */

const ROWS = 1_000_000;
let db: TestDatabase;
let home: TestHome;
let env: Record<string, string>;

/** A stream that says it is (or is not) a terminal, and keeps what was written. */
function capture(tty: boolean): { stream: NodeJS.WriteStream; text(): string } {
  const s = new PassThrough();
  let out = '';
  s.on('data', (d: Buffer) => (out += d.toString()));
  Object.assign(s, {
    isTTY: tty,
    columns: 120,
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
  });
  return { stream: s as unknown as NodeJS.WriteStream, text: () => out };
}

const step = (over: Partial<RunProgress>): RunProgress => ({
  runId: 1,
  step: 2,
  steps: 3,
  kind: 'pipeline',
  name: 'items',
  state: 'running',
  ...over,
});

// ANSI escapes a terminal bar is drawn with.
// eslint-disable-next-line no-control-regex
const plain = (s: string): string => s.replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '');

test.beforeAll(async ({ db: d, home: h }) => {
  [db, home] = [d, h];
  await db.pool.query(`CREATE TABLE bench ${BENCH_DDL}`);
  await home.write({
    'pipelines/bench.yaml': `
source: { kind: file, path: in/bench.csv }
format: { kind: csv }
validate:
  fields:
    id: { type: int, required: true }
sink: { kind: postgres, table: public.bench }
`,
  });
  await mkdir(path.join(home.dir, 'in'));
  await generateCsv(path.join(home.dir, 'in/bench.csv'), ROWS);
  env = { DATABASE_URL: db.url, ERP_HOME: home.dir };
});
afterAll(killChildren);

describe('step reporter', () => {
  it('off a terminal: the step lines, and the figures of a running step as a plain line', () => {
    const out = capture(false);
    const r = stepReporter({ stream: out.stream, every: 0 });
    r.update(step({}));
    r.update(step({ rows: 500, file: 'items.csv', bytes: 3 << 20, bytesTotal: 4 << 20 }));
    r.update(step({ state: 'succeeded', rows: 700 }));
    r.update(step({ step: 3, kind: 'sql', name: 'post.sql' }));
    r.update(step({ step: 3, kind: 'sql', name: 'post.sql', rows: 12 }));
    r.stop();
    const lines = out.text().split('\n');
    expect(lines[0]).toBe('step 2/3 pipeline items: running');
    expect(lines[1]).toMatch(
      /^step 2\/3 pipeline items: items\.csv 75% of 4\.0 MB, 500 rows, [\d,]+ rows\/s, \d+s left$/,
    );
    expect(lines[2]).toBe('step 2/3 pipeline items: succeeded');
    expect(lines[3]).toBe('step 3/3 sql post.sql: running');
    // No size known: rows and the time so far instead of a share and the time left.
    expect(lines[4]).toMatch(/^step 3\/3 sql post\.sql: 12 rows, [\d,]+ rows\/s, \d+s so far$/);
    expect(lines.length).toBe(6);
  });

  it('on a terminal: a bar with the share, rows, rows/s, time left and the step of how many', () => {
    const out = capture(true);
    const r = stepReporter({ stream: out.stream, every: 0 });
    r.update(step({}));
    r.update(step({ rows: 500, file: 'items.csv', bytes: 1 << 20, bytesTotal: 4 << 20 }));
    r.update(step({ state: 'succeeded' }));
    r.stop();
    const text = plain(out.text());
    expect(text).toContain('step 2/3 pipeline items: running\n');
    expect(text).toMatch(
      / step 2\/3 items\.csv \|[█░]{10,}\| 25% \| 500 rows \| [\d,]+ rows\/s \| \d+s left/,
    );
    expect(text).toContain('step 2/3 pipeline items: succeeded\n');
  });
});

describe('erp run progress', () => {
  it('in a pipe: plain progress lines every ERP_PROGRESS_MS, then the outcome', async () => {
    const r = await erp(['run', 'bench', '--inline'], { ...env, ERP_PROGRESS_MS: '100' });
    expect(r.code, r.stderr).toBe(0);
    const progress = r.stderr.split('\n').filter((l) => / rows\/s/.test(l));
    expect(progress.length).toBeGreaterThan(0);
    for (const line of progress)
      expect(line).toMatch(
        /^step 1\/1 pipeline bench: bench\.csv \d+% of [\d.]+ MB, [\d,]+ rows, [\d,]+ rows\/s, \d+(s|m\d\ds) left$/,
      );
    // No escape codes, no carriage returns: a log file reads cleanly.
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stdout).toContain(`succeeded: read ${ROWS}, loaded ${ROWS}, rejected 0`);
  });

  it('on a terminal (a pty through script): a progress bar', async () => {
    await db.pool.query('TRUNCATE bench; TRUNCATE runner.ingested_files CASCADE');
    const cli = path.resolve('dist/cli.js');
    const child = spawn(
      'script',
      ['-q', '-e', '-c', `${process.execPath} ${cli} run bench --inline`, '/dev/null'],
      {
        cwd: home.dir,
        env: { ...process.env, ...env, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, out).toBe(0);
    const text = plain(out);
    expect(text).toMatch(
      / step 1\/1 bench\.csv \|[█░]+\| \d+% \| [\d,]+ rows \| [\d,]+ rows\/s \| \d+(s|m\d\ds) left/,
    );
    expect(text).toContain(`succeeded: read ${ROWS}, loaded ${ROWS}, rejected 0`);
  });
});
