/**
 * Job step kinds are descriptors in one explicit list (src/jobs/steps/registry.ts). The `command`
 * step is the proof that a kind is one file plus one line there: the executor, the run record, the
 * preflight and the report name no kind. The command step runs real programs (node scripts) with
 * real run records in PostgreSQL, and is cancelled through a worker on Redis.
 */
import type { Queue } from 'bullmq';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type App } from '../src/app.js';
import { formatRunDetail, formatRunView, viewOfOutcome, viewOfRecords } from '../src/commands/report.js';
import { parseYaml } from '../src/config/yaml.js';
import { requestCancel } from '../src/jobs/cancel.js';
import { jobSchema, resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { executeRun, planRun } from '../src/jobs/execute.js';
import { preflight } from '../src/jobs/preflight.js';
import { KILL_GRACE_MS } from '../src/jobs/steps/command.js';
import { STEP_KINDS } from '../src/jobs/steps/registry.js';
import { createQueuedRun, enqueueRun } from '../src/jobs/submit.js';
import type { RunOutcome } from '../src/jobs/types.js';
import type { RunJobData } from '../src/runner/queue.js';
import { startWorker, type RunningWorker } from '../src/runner/worker.js';
import { createRun, getRun } from '../src/runs/store/runs.js';
import { REDIS_URL, waitFor } from './helpers/runner.js';
import type { TestDatabase } from './helpers/db.js';
import { test, type TestHome } from './helpers/fixtures.js';

const NODE = JSON.stringify(process.execPath);
const SECRET = 'tok-3f9a-never-in-logs';

const FILES: Record<string, string> = {
  // Prints its arguments and environment, writes what it got to out/, says the token.
  'bin/hello.mjs': `
import { writeFileSync, mkdirSync } from 'node:fs';
mkdirSync('out', { recursive: true });
writeFileSync('out/hello.json', JSON.stringify({ args: process.argv.slice(2), cwd: process.cwd(), env: process.env }));
console.log('hello ' + process.argv.slice(2).join('|'));
console.log('the token is ' + process.env.TOKEN);
console.error('mode ' + process.env.MODE);
process.stdout.write('no newline at the end');
`,
  'bin/fail.mjs': `
console.log('starting');
console.error('disk quota exceeded');
process.exitCode = 3;
`,
  // Starts a grandchild in its process group, writes both pids, and waits for ever.
  'bin/sleeper.mjs': `
import { spawn } from 'node:child_process';
import { writeFileSync, mkdirSync, renameSync } from 'node:fs';
const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
if (process.argv.includes('--ignore-term')) process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
mkdirSync('out', { recursive: true });
writeFileSync('out/pids-' + process.argv[2] + '.tmp', JSON.stringify([process.pid, child.pid]));
renameSync('out/pids-' + process.argv[2] + '.tmp', 'out/pids-' + process.argv[2] + '.json');
console.log('sleeping');
setInterval(() => {}, 1000);
`,
  // One line of 100 000 characters, then 1 500 short ones.
  'bin/chatty.mjs': `
process.stdout.write('x'.repeat(100000) + '\\n');
for (let i = 1; i <= 1500; i++) process.stdout.write('line ' + i + '\\n');
`,
  'jobs/hello.yaml': `
params:
  period: { type: period }
steps:
  - command: [${NODE}, bin/hello.mjs, --period, '{period}', two words]
    env:
      MODE: live
      TOKEN: { from: JOB_STEPS_TOKEN }
`,
  'jobs/fail.yaml': `
steps:
  - command: [${NODE}, ../bin/fail.mjs]
    cwd: bin
`,
  'jobs/slow.yaml': `
steps:
  - command: [${NODE}, bin/sleeper.mjs, slow]
`,
  'jobs/stubborn.yaml': `
steps:
  - command: [${NODE}, bin/sleeper.mjs, stubborn, --ignore-term]
    timeout: 1s
`,
  'jobs/chatty.yaml': `
steps:
  - command: [${NODE}, bin/chatty.mjs]
`,
  'jobs/escape.yaml': `
steps:
  - command: [ls]
    cwd: ../..
`,
  'jobs/unset.yaml': `
steps:
  - command: [bin/nothing-here.sh]
    env: { TOKEN: { from: JOB_STEPS_NOT_SET } }
`,
};

let db: TestDatabase;
let home: TestHome;
let prefix: string;
let app: App;
let queue: Queue<RunJobData>;
let worker: RunningWorker | undefined;
/** Every line the app logged, parsed. */
const logged: Record<string, unknown>[] = [];
const logText = (): string => logged.map((l) => JSON.stringify(l)).join('\n');

test.beforeAll(async ({ db: d, home: h, queue: q }) => {
  [db, home, { prefix, queue }] = [d, h, q];
  await home.write(FILES);
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logged.push(JSON.parse(line) as never);
      done();
    },
  });
  const env = { DATABASE_URL: db.url, ERP_HOME: home.dir, ERP_QUEUE_PREFIX: prefix, REDIS_URL };
  app = createApp({ ...env, LOG_LEVEL: 'debug' }, pino({ level: 'debug' }, sink));
  process.env.JOB_STEPS_TOKEN = SECRET;
});

afterAll(async () => {
  delete process.env.JOB_STEPS_TOKEN;
  await worker?.close();
  await app?.close();
});

/** Runs job `name` recorded, in this process. */
async function runRecorded(
  name: string,
  given: Record<string, string> = {},
  signal = new AbortController().signal,
): Promise<{ runId: number; outcome: RunOutcome }> {
  const runnable = await resolveRunnable(home.dir, name);
  const params = resolveParams(runnable.job, given);
  const runId = await createRun(db.pool, { kind: 'job', name, status: 'queued', params });
  const outcome = await executeRun(app, { runId, runnable, params, dryRun: false, signal });
  return { runId, outcome };
}

/** True while `pid` is a live process (a zombie waiting for its parent counts as gone). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

async function pidsOf(name: string): Promise<[number, number]> {
  const file = path.join(home.dir, 'out', `pids-${name}.json`);
  return waitFor(
    // Not there yet, or caught half-written: read again.
    () =>
      readFile(file, 'utf8')
        .then((t) => JSON.parse(t) as [number, number])
        .catch(() => null),
    10_000,
    `${file} to be written`,
  );
}

/**
 * Step-kind names where a chain over kinds would put them: compared (`=== 'sql'`, `case 'sql':`),
 * tested with `in` (`'sql' in step`), given as a `kind:`, or asserted present (`step.edi!`).
 */
function kindChains(file: string, text: string, kinds: readonly string[]): string[] {
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const isKind = (n: ts.Node): boolean =>
    (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) && kinds.includes(n.text);
  const at = (n: ts.Node): string =>
    `${file}:${src.getLineAndCharacterOfPosition(n.getStart()).line + 1}: ${n.getText()}`;
  const compare = [
    ts.SyntaxKind.EqualsEqualsEqualsToken,
    ts.SyntaxKind.ExclamationEqualsEqualsToken,
    ts.SyntaxKind.EqualsEqualsToken,
    ts.SyntaxKind.ExclamationEqualsToken,
    ts.SyntaxKind.InKeyword,
  ];
  const visit = (n: ts.Node): void => {
    if (
      ts.isBinaryExpression(n) &&
      compare.includes(n.operatorToken.kind) &&
      (isKind(n.left) || isKind(n.right))
    )
      found.push(at(n));
    else if (ts.isCaseClause(n) && isKind(n.expression)) found.push(at(n));
    else if (ts.isPropertyAssignment(n) && n.name.getText() === 'kind' && isKind(n.initializer))
      found.push(at(n));
    else if (
      ts.isNonNullExpression(n) &&
      ts.isPropertyAccessExpression(n.expression) &&
      kinds.includes(n.expression.name.text)
    )
      found.push(at(n));
    ts.forEachChild(n, visit);
  };
  visit(src);
  return found;
}

describe('the step list', () => {
  const kinds = STEP_KINDS.map((k) => k.kind);

  it('is the only place step kinds are named: the executor, run record, preflight and report ask the kind', () => {
    expect(kinds).toEqual(['pipeline', 'sql', 'job', 'edi', 'compliance', 'command']);
    // The detector finds each shape of a chain over kinds (so an empty answer below means something).
    const chained = `
      if (step.kind === 'sql') a(); else if ('pipeline' in step) b();
      switch (step.kind) { case 'edi': c(step.edi!); }
      push({ kind: 'command', name });`;
    expect(kindChains('chain.ts', chained, kinds)).toHaveLength(5);
    for (const file of [
      'src/jobs/execute.ts',
      'src/jobs/run-record.ts',
      'src/jobs/preflight.ts',
      'src/commands/report.ts',
      'src/jobs/types.ts',
    ])
      expect(kindChains(file, readFileSync(file, 'utf8'), kinds)).toEqual([]);
    // And the command step is named in its own file and in the list only.
    const mentions = (dir: string): string[] =>
      ts.sys
        .readDirectory(dir, ['.ts'])
        .filter((f) => /\bcommandStep\b|command\.js'/.test(readFileSync(f, 'utf8')))
        .map((f) => path.relative(process.cwd(), f));
    expect(mentions(path.resolve('src')).sort()).toEqual([
      'src/jobs/steps/command.ts',
      'src/jobs/steps/registry.ts',
    ]);
  });

  it('makes the job schema and its JSON Schema, which accepts a command step and refuses a bad one', () => {
    const json = z.toJSONSchema(jobSchema, { io: 'input' });
    // One branch of `steps.items.anyOf` per kind, which needs the kind's key.
    const branches = (
      json as unknown as {
        properties: { steps: { items: { anyOf: { required: string[]; properties: object }[] } } };
      }
    ).properties.steps.items.anyOf;
    expect(branches.map((b) => kinds.find((k) => b.required.includes(k) && k in b.properties))).toEqual(
      kinds,
    );
    // The JSON Schema read back by another route than the zod schema it came from.
    const fromJson = z.fromJSONSchema(json);
    const job = (step: unknown): boolean => fromJson.safeParse({ steps: [step] }).success;
    expect(job({ command: ['bin/x.sh', '--period', '{period}', 3] })).toBe(true);
    expect(
      job({ command: ['x'], env: { A: 'literal', B: { from: 'B_SECRET' } }, cwd: 'bin', timeout: '5m' }),
    ).toBe(true);
    expect(job({ command: [] })).toBe(false);
    expect(job({ command: ['x'], shell: true })).toBe(false);
    expect(job({ command: ['x'], timeout: 'soon' })).toBe(false);
    expect(job({ command: ['x'], env: { B: { from: 'B', default: 'x' } } })).toBe(false);
    expect(job({ command: 'x y' })).toBe(false);
    // The zod schema agrees, with the file, line and key of the problem.
    expect(() => parseYaml('jobs/x.yaml', 'steps:\n  - command: []\n', jobSchema)).toThrow(
      'jobs/x.yaml, line 2, steps.0.command: Too small: expected array to have >=1 items',
    );
  });

  it("match the README's step table, kind for kind", () => {
    const readme = readFileSync('README.md', 'utf8');
    const table = readme.slice(readme.indexOf('| step | does |'));
    const rows = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `(\w+):/gm)].map((m) => m[1]);
    expect(rows).toEqual(kinds);
  });
});

describe('the command step', () => {
  it('runs the program without a shell, with its env and parameters, its output logged line by line', async () => {
    const { runId, outcome } = await runRecorded('hello', { period: '2026-11' });
    expect([outcome.status, outcome.error]).toEqual(['succeeded', null]);
    const got = JSON.parse(await readFile(path.join(home.dir, 'out/hello.json'), 'utf8')) as {
      args: string[];
      cwd: string;
      env: Record<string, string>;
    };
    // No shell: "two words" is one argument, {period} the job's parameter.
    expect(got.args).toEqual(['--period', '2026-11', 'two words']);
    expect(got.cwd).toBe(path.resolve(home.dir));
    expect(got.env).toMatchObject({ MODE: 'live', TOKEN: SECRET, ERP_HOME: path.resolve(home.dir) });
    expect(got.env.ERP_RUN_ID).toBe(String(runId));
    // The worker's own settings (its database password) are not the program's.
    expect(Object.keys(got.env)).not.toContain('DATABASE_URL');
    const lines = logged.filter((l) => l.runId === runId && typeof l.stream === 'string');
    // Each stream in its order (the two are read side by side).
    const of = (stream: string): unknown[] => lines.filter((l) => l.stream === stream).map((l) => l.msg);
    expect(of('stdout')).toEqual([
      'hello --period|2026-11|two words',
      'the token is ***',
      'no newline at the end',
    ]);
    expect(of('stderr')).toEqual(['mode live']);
    expect(lines.every((l) => l.job === 'hello' && typeof l.step === 'string')).toBe(true);
    const { rows } = await db.pool.query<{ kind: string; status: string; detail: Record<string, unknown> }>(
      'SELECT kind, status, detail FROM runner.run_steps WHERE run_id = $1',
      [runId],
    );
    expect(rows).toEqual([
      {
        kind: 'command',
        status: 'succeeded',
        detail: expect.objectContaining({
          program: process.execPath,
          args: ['bin/hello.mjs', '--period', '2026-11', 'two words'],
          cwd: '.',
          env: ['MODE', 'TOKEN'],
          exit_code: 0,
          signal: null,
          output_lines: 4,
          summary: expect.stringMatching(/^exited with code 0 after [\d.]+ s; 4 lines of output$/),
        }),
      },
    ]);
    const view = formatRunView(viewOfRecords((await getRun(db.pool, runId))!));
    expect(view).toMatch(
      /\n {2}command .*bin\/hello\.mjs --period 2026-11 "two words": exited with code 0 after/,
    );
    expect(formatRunDetail((await getRun(db.pool, runId))!)).toMatch(
      /1\. command .*: succeeded\n {5}exited with code 0 after [\d.]+ s; 4 lines of output/,
    );
  });

  it('never logs or records the values of variables taken from the environment', async () => {
    const { runId } = await runRecorded('hello', { period: '2026-12' });
    const got = JSON.parse(await readFile(path.join(home.dir, 'out/hello.json'), 'utf8')) as {
      env: Record<string, string>;
    };
    // The program had the secret, and printed it; the log and the record have neither.
    expect(got.env.TOKEN).toBe(SECRET);
    expect(logText()).toContain('the token is ***');
    expect(logText()).not.toContain(SECRET);
    const record = await getRun(db.pool, runId);
    expect(JSON.stringify(record)).not.toContain(SECRET);
  });

  it('fails the step with the exit code and the last line of output, in one line, not retried', async () => {
    const { runId, outcome } = await runRecorded('fail');
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(
      /^command .*\.\.\/bin\/fail\.mjs: exited with code 3: disk quota exceeded$/,
    );
    expect([outcome.permanent, outcome.errorKind]).toEqual([true, 'user']);
    expect(outcome.steps[0]?.command?.exitCode).toBe(3);
    const { rows } = await db.pool.query<{ status: string; error: string }>(
      'SELECT status, error FROM runner.run_steps WHERE run_id = $1',
      [runId],
    );
    expect(rows).toEqual([{ status: 'failed', error: outcome.error }]);
  });

  it('is stopped at its timeout: SIGTERM, then SIGKILL for a program that ignores it; its whole group is gone', async () => {
    const started = Date.now();
    const running = runRecorded('stubborn');
    const [pid, grandchild] = await pidsOf('stubborn');
    const { runId, outcome } = await running;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000 + KILL_GRACE_MS - 200);
    expect(outcome.status).toBe('failed');
    expect(outcome.error).toMatch(/^command .*: timed out after 1 s; stopped \(SIGKILL\)$/);
    expect(outcome.errorKind).toBe('timeout');
    expect(logged.some((l) => l.runId === runId && l.msg === 'ignoring SIGTERM')).toBe(true);
    expect(alive(pid)).toBe(false);
    await waitFor(() => !alive(grandchild), 5000, `grandchild ${grandchild} to end`);
  });

  it('is killed with its process group when the run is cancelled in a worker', async () => {
    worker = await startWorker(app, { concurrency: 1, graceMs: 2000 });
    const runnable = await resolveRunnable(home.dir, 'slow');
    const runId = (await createQueuedRun(db.pool, runnable, {}, { requestedBy: 'job-steps-test' }))!;
    await enqueueRun(queue, runId, runnable, {});
    const [pid, grandchild] = await pidsOf('slow');
    expect([alive(pid), alive(grandchild)]).toEqual([true, true]);
    expect(await requestCancel(db.pool, runId)).toBe('cancelling');
    const run = await waitFor(
      async () => {
        const r = await getRun(db.pool, runId);
        return r?.run.status === 'cancelled' ? r : null;
      },
      15_000,
      `run ${runId} to be cancelled`,
    );
    expect(run.steps.map((s) => [s.kind, s.status])).toEqual([['command', 'cancelled']]);
    // SIGTERM ended both; nothing of the program is left running.
    expect(alive(pid)).toBe(false);
    await waitFor(() => !alive(grandchild), 5000, `grandchild ${grandchild} to end`);
  });

  it('logs a bounded amount: long lines cut, lines past the first thousand counted, not logged', async () => {
    const { runId, outcome } = await runRecorded('chatty');
    expect(outcome.status).toBe('succeeded');
    const lines = logged.filter((l) => l.runId === runId && l.stream === 'stdout');
    expect(lines).toHaveLength(1001);
    expect(String(lines[0]!.msg)).toBe(`${'x'.repeat(4096)} … (95904 more characters)`);
    expect(lines[999]!.msg).toBe('line 999');
    expect(lines[1000]!.msg).toBe('(more stdout is counted, not logged)');
    expect(outcome.steps[0]?.command?.outputLines).toBe(1501);
  });

  it('--dry-run runs nothing and says what it would run', async () => {
    const runnable = await resolveRunnable(home.dir, 'slow');
    const outcome = await executeRun(app, {
      runId: null,
      runnable,
      params: {},
      dryRun: true,
      signal: new AbortController().signal,
    });
    expect(outcome.status).toBe('succeeded');
    const text = formatRunView(viewOfOutcome('slow', {}, outcome));
    expect(text).toMatch(
      /\n {2}command .*bin\/sleeper\.mjs slow: would run .*bin\/sleeper\.mjs slow; not run: dry run\n/,
    );
    // Nothing was started: the sleeper of the earlier test wrote its pids; a dry run wrote none anew.
    expect(logged.some((l) => l.runId === null && l.msg === 'sleeping')).toBe(false);
    expect(logged.some((l) => l.runId === null && l.msg === 'command started')).toBe(false);
  });

  it('is refused before it runs: a cwd outside the home, a variable not set, a program not there', async () => {
    const escape = await resolveRunnable(home.dir, 'escape');
    await expect(planRun(home.dir, escape, {})).rejects.toThrow(
      "command step 'ls': cwd '../..' must be inside the project home",
    );
    const unset = await resolveRunnable(home.dir, 'unset');
    const problems = await preflight(app, unset, {});
    expect(problems.map((p) => `${p.where ? `${p.where}: ` : ''}${p.message}`)).toEqual([
      "command step 'bin/nothing-here.sh': environment variable JOB_STEPS_NOT_SET (for TOKEN) is not set",
      "command step 'bin/nothing-here.sh': bin/nothing-here.sh is not an executable file (in .)",
    ]);
    const { outcome } = await runRecorded('unset');
    expect(outcome.error).toBe(
      "command step 'bin/nothing-here.sh': environment variable JOB_STEPS_NOT_SET (for TOKEN) is not set",
    );
  });
});
