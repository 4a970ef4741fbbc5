/**
 * The `command` job step: runs an external program, without a shell.
 *
 * ```yaml
 * - command: [scripts/fetch-rates.sh, --date, '{as_of}']   # program, arguments; {name} is a job parameter
 *   env:
 *     RATES_TOKEN: { from: RATES_API_TOKEN }   # from the worker's environment: a secret, never logged
 *     MODE: live                               # a literal
 *   cwd: scripts                               # inside the project home (the default: the home)
 *   timeout: 5m
 * ```
 *
 *   spawn, in a process group of its own ──► stdout, stderr ──► lines ──► the run's logger
 *      ├─ exit 0 ───────────────────────────► succeeded
 *      ├─ exit n, or killed by a signal ─────► failed: one line with the code or signal and its last line
 *      └─ run cancelled, or `timeout` ───────► SIGTERM to the group, SIGKILL KILL_GRACE_MS later
 *
 * The program sees PATH, HOME, LANG, LC_ALL, TZ, TMPDIR and USER of the worker, ERP_HOME, ERP_RUN_ID
 * (a recorded run) and its `env` — not the rest of the worker's environment (DATABASE_URL and its
 * password stay out). An output line is logged up to MAX_LINE characters, the first MAX_LOGGED_LINES
 * lines of each stream; the values of `from` variables are masked in what is logged and recorded. A
 * non-zero exit is permanent (not retried: the program may have done part of its work); a program
 * killed by a signal from elsewhere is retried like an infrastructure failure. When the program
 * exits, what it left running in its group is stopped too. `--dry-run` runs nothing and says what
 * it would run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { durationSchema } from '../../config/duration.js';
import { CancelledError, TimeoutError, UserError } from '../../errors.js';
import type { StepKind, StepRunContext } from './types.js';

/** After SIGTERM, how long the program's group has before SIGKILL. */
export const KILL_GRACE_MS = 5000;
/** An output line longer than this is logged cut, with the number of characters left out. */
const MAX_LINE = 4096;
/** Lines of each stream logged; the rest are counted. */
const MAX_LOGGED_LINES = 1000;
/** A `from` value shorter than this is not masked (it would mask ordinary words). */
const MIN_SECRET = 4;
/** The worker's variables a program sees besides ERP_HOME, ERP_RUN_ID and its `env`. */
const INHERITED = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER'];

const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const variable = z.string().regex(VARIABLE, 'an environment variable name like RATES_TOKEN');
const word = z.union([z.string(), z.number(), z.boolean()]);

const schema = z
  .object({
    /** The program and its arguments, run without a shell; `{name}` in an argument takes a job parameter. */
    command: z.array(word).min(1),
    /** Variables the program gets: a literal, or `{ from: NAME }` taken from the worker's environment (never logged). */
    env: z.record(variable, z.union([word, z.object({ from: variable }).strict()])).optional(),
    /** Working directory, relative to the project home and inside it. @defaultValue the project home */
    cwd: z.string().optional(),
    /** The program is stopped (SIGTERM, then SIGKILL) and the step fails when it runs longer. */
    timeout: durationSchema.optional(),
  })
  .strict();

/** What a command step did (or, in a dry run, would do). */
export interface CommandStepResult {
  program: string;
  args: string[];
  /** Relative to the project home. */
  cwd: string;
  /** Names of the variables given by `env` (never their values). */
  env: string[];
  dryRun: boolean;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** Lines the program wrote, both streams. */
  outputLines: number;
  /** One line, for progress, `erp run` and the run record. */
  summary: string;
}

/** An argument as a plan shows it: quoted when it holds white space or quotes. */
const shownArg = (a: string): string => (/[\s"'\\]/.test(a) || a === '' ? JSON.stringify(a) : a);

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(1))} s`;

export const commandStep: StepKind<'command', typeof schema, CommandStepResult> = {
  kind: 'command',
  role: 'task',
  schema,
  summary:
    'runs a program without a shell (`env`, `cwd` inside the home, `timeout`); its output goes to the log',
  async create(entry, { home, params, fill }) {
    const argv = entry.command.map((a, i) => fill(String(a), `command[${i}]`));
    const [program, ...args] = argv as [string, ...string[]];
    const name = argv.map(shownArg).join(' ');
    const dir = path.resolve(home, entry.cwd ?? '.');
    const rel = path.relative(path.resolve(home), dir);
    if (rel.startsWith('..') || path.isAbsolute(rel))
      throw new UserError(`command step '${name}': cwd '${entry.cwd}' must be inside the project home`);
    const cwd = rel || '.';
    const literal = Object.entries(entry.env ?? {}).map(([k, v]) =>
      typeof v === 'object' ? ([k, v] as const) : ([k, fill(String(v), `env.${k}`)] as const),
    );
    /** The variables the program gets, read from `env` (the worker's) when the step runs. */
    const environment = (from: NodeJS.ProcessEnv): { vars: Record<string, string>; secrets: string[] } => {
      const vars: Record<string, string> = {};
      const secrets: string[] = [];
      for (const [k, v] of literal) {
        if (typeof v === 'string') {
          vars[k] = v;
          continue;
        }
        const value = from[v.from];
        if (value === undefined)
          throw new UserError(`command step '${name}': environment variable ${v.from} (for ${k}) is not set`);
        vars[k] = value;
        if (value.length >= MIN_SECRET) secrets.push(value);
      }
      return { vars, secrets };
    };
    const base = { program, args, cwd, env: literal.map(([k]) => k) };
    return [
      {
        name,
        params,
        plan: async () => undefined,
        async preflight(checks) {
          if (!checks.state) return;
          try {
            environment(checks.env);
          } catch (err) {
            checks.problem('', (err as Error).message);
          }
          const d = await stat(dir).catch(() => null);
          if (!d?.isDirectory()) {
            checks.problem(`command step '${name}'`, `working directory ${cwd} does not exist`);
            return;
          }
          // A program named with a path is the project's own: it must be there and executable.
          if (
            program.includes('/') &&
            !(await access(path.resolve(dir, program), constants.X_OK).then(
              () => true,
              () => false,
            ))
          )
            checks.problem(`command step '${name}'`, `${program} is not an executable file (in ${cwd})`);
        },
        async run(ctx) {
          if (ctx.dryRun) {
            const more = [
              cwd !== '.' ? `in ${cwd}` : null,
              base.env.length > 0 ? `with ${base.env.join(', ')} set` : null,
              entry.timeout ? `timeout ${seconds(entry.timeout)}` : null,
            ].filter(Boolean);
            return {
              ...base,
              dryRun: true,
              exitCode: null,
              signal: null,
              durationMs: 0,
              outputLines: 0,
              summary: `would run ${name}${more.length > 0 ? ` (${more.join('; ')})` : ''}; not run: dry run`,
            };
          }
          if (ctx.signal.aborted) throw new CancelledError();
          const { vars, secrets } = environment(process.env);
          const env: Record<string, string> = {};
          for (const k of INHERITED) if (process.env[k] !== undefined) env[k] = process.env[k];
          Object.assign(env, { ERP_HOME: path.resolve(home) });
          if (ctx.runId !== null) env.ERP_RUN_ID = String(ctx.runId);
          Object.assign(env, vars);
          return execute({ ...base, name, dir, variables: env, secrets, timeout: entry.timeout }, ctx);
        },
      },
    ];
  },
  async uses() {
    // A program is not a definition file; the step's record names it, with its arguments.
  },
  report: {
    detail: (r) => ({
      program: r.program,
      args: r.args,
      cwd: r.cwd,
      env: r.env,
      exit_code: r.exitCode,
      signal: r.signal,
      duration_ms: r.durationMs,
      output_lines: r.outputLines,
      summary: r.summary,
    }),
    progress: (r) => ({ message: r.summary }),
    shown: (step, r) => ({ lines: [`  command ${step.name}: ${r.summary}`] }),
    shownFromRecord: (r) =>
      r.detail.summary !== undefined
        ? { lines: [`  command ${r.name}: ${String(r.detail.summary)}`] }
        : { lines: [] },
    detailLines: (d) => (d.summary ? [`     ${String(d.summary)}`] : []),
  },
};

interface Launch {
  name: string;
  program: string;
  args: string[];
  cwd: string;
  dir: string;
  /** Names given by the step's `env`. */
  env: string[];
  /** Every variable the program gets. */
  variables: Record<string, string>;
  /** Values masked in what is logged and recorded. */
  secrets: string[];
  timeout: number | undefined;
}

/** Runs the program to its end, streaming its output to the step's logger. */
function execute(l: Launch, ctx: StepRunContext<CommandStepResult>): Promise<CommandStepResult> {
  const log = ctx.app.log;
  const mask = (text: string): string => l.secrets.reduce((t, s) => t.split(s).join('***'), text);
  const started = performance.now();
  log.debug({ program: l.program, args: l.args.map(mask), cwd: l.cwd, env: l.env }, 'command started');
  return new Promise<CommandStepResult>((resolve, reject) => {
    let child: ChildProcess;
    try {
      // detached: a process group of its own, so a stop reaches what the program started too.
      child = spawn(l.program, l.args, {
        cwd: l.dir,
        env: l.variables,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      reject(new UserError(`command ${l.name}: cannot run ${l.program}: ${(err as Error).message}`));
      return;
    }
    const out = new Lines(log, 'stdout', mask);
    const err = new Lines(log, 'stderr', mask);
    child.stdout!.setEncoding('utf8').on('data', (t: string) => out.push(t));
    child.stderr!.setEncoding('utf8').on('data', (t: string) => err.push(t));
    let stopping: 'cancel' | 'timeout' | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    const signalGroup = (sig: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        // ESRCH: the group is gone already.
      }
    };
    /** SIGTERM to the group now, SIGKILL to whatever is left after the grace. */
    const stopGroup = (): void => {
      signalGroup('SIGTERM');
      killTimer ??= setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    const stop = (why: 'cancel' | 'timeout'): void => {
      if (stopping) return;
      stopping = why;
      log.info(
        { pid: child.pid },
        why === 'cancel' ? 'command stopped: the run was cancelled' : 'command stopped: timed out',
      );
      stopGroup();
    };
    const onAbort = (): void => stop('cancel');
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const timer = l.timeout !== undefined ? setTimeout(() => stop('timeout'), l.timeout) : undefined;
    let settled = false;
    const settle = (): void => {
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      clearTimeout(killTimer);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      // The program did not start (no such file, not executable): nothing runs, nothing to stop.
      settle();
      const why = e.code === 'ENOENT' ? `no such program (in ${l.cwd}, or on PATH)` : e.message;
      reject(new UserError(`command ${l.name}: cannot run ${l.program}: ${why}`));
    });
    // The program is done: what it left running in its group would hold its output open.
    child.on('exit', () => stopGroup());
    child.on('close', (code: number | null, sig: NodeJS.Signals | null) => {
      if (settled) return;
      settle();
      out.flush();
      err.flush();
      const durationMs = Math.round(performance.now() - started);
      const lines = out.count + err.count;
      const result: CommandStepResult = {
        program: l.program,
        args: l.args.map(mask),
        cwd: l.cwd,
        env: l.env,
        dryRun: false,
        exitCode: code,
        signal: sig,
        durationMs,
        outputLines: lines,
        summary: `${code !== null ? `exited with code ${code}` : `killed by ${sig}`} after ${seconds(durationMs)}; ${lines} line${lines === 1 ? '' : 's'} of output`,
      };
      log.debug({ exitCode: code, signal: sig, durationMs }, 'command ended');
      if (stopping === 'cancel') return reject(new CancelledError());
      const last = err.last ?? out.last;
      const tail = last ? `: ${last.length > 200 ? `${last.slice(0, 197)}...` : last}` : '';
      if (stopping === 'timeout') {
        const message = `command ${l.name}: timed out after ${seconds(l.timeout!)}; stopped (${sig ?? `exit code ${code}`})`;
        ctx.onFailed(result, message);
        return reject(new TimeoutError(message));
      }
      if (code === 0) return resolve(result);
      const message =
        code !== null
          ? `command ${l.name}: exited with code ${code}${tail}`
          : `command ${l.name}: killed by ${sig}${tail}`;
      ctx.onFailed(result, message);
      reject(code !== null ? new UserError(message, 1) : new Error(message));
    });
  });
}

/**
 * A stream of output cut into lines and logged one by one: a line is kept up to MAX_LINE
 * characters (the rest counted), and the first MAX_LOGGED_LINES lines are logged, so neither a
 * line without end nor a chatty program grows memory or the log without bound.
 */
class Lines {
  count = 0;
  /** The last non-blank line, for the failure's message. */
  last: string | null = null;
  private partial = '';
  private dropped = 0;

  constructor(
    private readonly log: Logger,
    private readonly stream: 'stdout' | 'stderr',
    private readonly mask: (text: string) => string,
  ) {}

  push(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) {
        this.add(text.slice(start));
        return;
      }
      this.add(text.slice(start, nl));
      this.end();
      start = nl + 1;
    }
  }

  /** The last line, when the program ended without a newline. */
  flush(): void {
    if (this.partial !== '' || this.dropped > 0) this.end();
  }

  private add(part: string): void {
    const room = MAX_LINE - this.partial.length;
    if (part.length <= room) this.partial += part;
    else {
      this.partial += part.slice(0, room);
      this.dropped += part.length - room;
    }
  }

  private end(): void {
    let line = this.mask(this.partial.endsWith('\r') ? this.partial.slice(0, -1) : this.partial);
    if (this.dropped > 0) line += ` … (${this.dropped} more characters)`;
    this.partial = '';
    this.dropped = 0;
    this.count++;
    if (line.trim() !== '') this.last = line;
    if (this.count <= MAX_LOGGED_LINES) this.log.info({ stream: this.stream }, line);
    else if (this.count === MAX_LOGGED_LINES + 1)
      this.log.info({ stream: this.stream }, `(more ${this.stream} is counted, not logged)`);
  }
}
