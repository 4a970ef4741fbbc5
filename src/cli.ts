#!/usr/bin/env node
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cac } from 'cac';
import { z } from 'zod';
import { createApp, type App } from './app.js';
import { describeError, RejectPolicyError, UserError } from './errors.js';
import { redactUrls } from './log.js';
import { migrate } from './db/migrate.js';
import { loadPipeline, pipelineSchema } from './pipeline/definition.js';
import { runPipeline } from './pipeline/run.js';
import { formatPipelineResult, formatRunDetail, formatRuns, table } from './commands/report.js';
import { EXIT, exitCodeOf, withSigint, wouldExitLine } from './commands/exit.js';
import { stepReporter } from './commands/progress.js';
import type { EdiCommandOptions } from './commands/edi-options.js';
import type { RunCommandOptions } from './commands/run.js';
import type { UsersCommandOptions } from './commands/users.js';
import { requestCancel } from './jobs/cancel.js';
import { jobSchema } from './jobs/definition.js';
import { alertsSchema } from './alerts/definition.js';
import { retentionSchema } from './compliance/retention.js';
import { getRun, listRuns } from './runs/store/runs.js';
import { workerPoolSize } from './runner/connections.js';
import { mappingFileSchema } from './stages/transform.js';

/**
 * The `erp` command line. It parses arguments and prints; the work is done by the same functions
 * the worker calls. Exit codes are listed in src/commands/exit.ts and the README.
 */
const cli = cac('erp');

/** Runs `fn` with an app, closing it afterwards; errors become one line and an exit code. */
async function withApp(
  fn: (app: App) => Promise<number>,
  appOpts: Parameters<typeof createApp>[2] = {},
): Promise<void> {
  let app: App | null = null;
  let code: number;
  try {
    app = createApp(process.env, undefined, appOpts);
    code = await fn(app);
  } catch (err) {
    code = reportError(err, app);
  } finally {
    await app?.close().catch(() => undefined);
  }
  process.exitCode = code;
}

function reportError(err: unknown, app: App | null): number {
  if (err instanceof UserError) {
    process.stderr.write(`erp: ${redactUrls(err.message)}\n`);
    return err.exitCode;
  }
  app?.log.debug({ err }, 'command failed');
  process.stderr.write(`erp: ${describeError(err)}\n`);
  return EXIT.failed;
}

function asList(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** `erp validate`: a dry run of a pipeline, with a progress bar of the file on a TTY. */
async function validateAndReport(app: App, name: string, files: string[] | undefined): Promise<number> {
  const { checkPipelineCommand } = await import('./commands/list.js');
  await checkPipelineCommand(app, name, files);
  const def = await loadPipeline(app.home, name);
  // The same progress as a one-step run's: a bar on a terminal, a line every ERP_PROGRESS_MS elsewhere.
  const progress = stepReporter({ every: app.config.ERP_PROGRESS_MS });
  const step = { runId: null, step: 1, steps: 1, kind: 'pipeline', name, state: 'running' } as const;
  try {
    const result = await withSigint((signal) =>
      runPipeline(app, def, {
        files,
        dryRun: true,
        signal,
        onProgress: (p) =>
          progress.update({
            ...step,
            rows: p.rowsRead,
            file: path.basename(p.file),
            bytes: p.bytesRead,
            bytesTotal: p.bytesTotal,
          }),
      }),
    );
    progress.stop();
    const policy = result.files.some((f) => f.policyExceeded);
    const code = exitCodeOf(result.status, policy ? 'policy' : null);
    process.stdout.write(formatPipelineResult(result) + '\n' + wouldExitLine(code) + '\n');
    return code;
  } finally {
    progress.stop();
  }
}

cli.command('migrate', 'Apply the numbered migrations in sql/ (each in its own transaction)').action(() =>
  withApp(async (app) => {
    const r = await migrate(app.pool, path.join(app.home, 'sql'));
    process.stdout.write(
      r.applied.length > 0
        ? `applied ${r.applied.join(', ')}; schema at migration ${r.current}\n`
        : `up to date at migration ${r.current}\n`,
    );
    return EXIT.ok;
  }),
);

cli.command('list', 'List the jobs and pipelines, each checked as a run would check it').action(() =>
  withApp(async (app) => {
    process.stdout.write((await (await import('./commands/list.js')).listCommand(app)) + '\n');
    return EXIT.ok;
  }),
);

cli
  .command('schema', 'Print the JSON Schema of pipeline definitions (or write all schemas with --out)')
  .option(
    '--out <dir>',
    'Write the pipeline, job, mapping, alerts and retention schemas (*.schema.json) into this directory',
    {
      type: [String],
    },
  )
  .action(async (opts: { out?: string[] }) => {
    const schemas = {
      'pipeline.schema.json': z.toJSONSchema(pipelineSchema, { io: 'input' }),
      'mapping.schema.json': z.toJSONSchema(mappingFileSchema, { io: 'input' }),
      'job.schema.json': z.toJSONSchema(jobSchema, { io: 'input' }),
      'alerts.schema.json': z.toJSONSchema(alertsSchema, { io: 'input' }),
      'retention.schema.json': z.toJSONSchema(retentionSchema, { io: 'input' }),
    };
    const out = opts.out?.[0];
    if (out) {
      await mkdir(out, { recursive: true });
      for (const [file, schema] of Object.entries(schemas)) {
        await writeFile(path.join(out, file), JSON.stringify(schema, null, 2) + '\n');
      }
      process.stdout.write(`wrote ${Object.keys(schemas).join(', ')} to ${out}\n`);
    } else {
      process.stdout.write(JSON.stringify(schemas['pipeline.schema.json'], null, 2) + '\n');
    }
  });

cli
  .command('validate <pipeline>', 'Parse and validate input files without writing anything (a dry run)')
  .option('--file <file>', 'Input file (repeatable); defaults to the pipeline source', { type: [String] })
  .action((name: string, opts: { file?: string[] }) =>
    withApp((app) => validateAndReport(app, name, asList(opts.file))),
  );

cli
  .command('run [name]', 'Run a job or a pipeline: queue it for the workers and follow it to the end')
  .option('--param <name=value>', 'A job parameter (repeatable)', { type: [String] })
  .option('--period <YYYY-MM>', 'Shorthand for --param period=YYYY-MM', { type: [String] })
  .option('--file <file>', 'Input file (repeatable); replaces the pipeline source', { type: [String] })
  .option('--dry-run', 'Show what would happen (parse and validate, run SQL and roll back); write nothing')
  .option('--force', 'Load files even if their content was loaded before')
  .option('--inline', 'Run in this process, without Redis or a worker')
  .option('--detach', 'Print the run id and return at once')
  .option('--cancel', 'On Ctrl-C while following, cancel the run instead of leaving it running')
  .option('--resume <run>', 'Finish a failed run from its failed step, with its own parameters', {
    type: [String],
  })
  .action((name: string | undefined, opts: RunCommandOptions) =>
    withApp(async (app) => (await import('./commands/run.js')).runCommand(app, name, opts)),
  );

cli
  .command('worker', 'Execute queued runs (start several, on several machines)')
  .option('--concurrency <n>', 'Runs executed at once by this process', { default: '1', type: [String] })
  .action((opts: { concurrency: string[] | string }) => {
    const concurrency = Number(Array.isArray(opts.concurrency) ? opts.concurrency[0] : opts.concurrency);
    return withApp(
      async (app) => {
        if (!Number.isInteger(concurrency) || concurrency < 1) {
          throw new UserError('--concurrency expects a positive whole number');
        }
        // Listen before starting, so a SIGTERM during start-up stops the worker cleanly too.
        const stopping = untilSignal();
        // BullMQ and the EDI stack load only for the commands that use them, so `erp validate` starts fast.
        const { startWorker } = await import('./runner/worker.js');
        const { serveHealthIfConfigured } = await import('./http/serve.js');
        const stopHttp = await serveHealthIfConfigured(app, 'worker');
        const worker = await startWorker(app, {
          concurrency,
          graceMs: app.config.ERP_SHUTDOWN_GRACE_MS,
        }).catch(async (err: unknown) => {
          await stopHttp();
          throw err;
        });
        const { installLastResort } = await import('./runner/last-resort.js');
        installLastResort({
          log: app.log,
          databaseUrl: app.config.DATABASE_URL,
          runsInHand: worker.runsInHand,
          claims: worker.claims,
          exitCode: EXIT.failed,
        });
        app.log.info({ concurrency, prefix: app.config.ERP_QUEUE_PREFIX }, 'worker started');
        const signal = await stopping;
        app.log.info({ signal }, 'worker stopping: no new runs; finishing the runs in hand');
        await worker.close();
        await stopHttp();
        return EXIT.ok;
      },
      // One pool for the whole process, sized for the runs in hand within ERP_PG_MAX_CONNECTIONS.
      {
        poolMax: (config) =>
          Number.isInteger(concurrency) && concurrency >= 1
            ? workerPoolSize(concurrency, config.ERP_PG_MAX_CONNECTIONS)
            : 1,
      },
    );
  });

cli
  .command('scheduler', 'Fire the schedules declared in jobs/ (several schedulers still fire each tick once)')
  .action(() =>
    withApp(async (app) => {
      const stopping = untilSignal();
      const { checkEvictionPolicy, connectRedis, createQueue, redisConnection } =
        await import('./runner/queue.js');
      const { startScheduler } = await import('./runner/scheduler.js');
      const redis = redisConnection(app.config.REDIS_URL, 'service');
      await connectRedis(redis, app.config.REDIS_URL).catch((err: unknown) => {
        redis.disconnect();
        throw err;
      });
      await checkEvictionPolicy(redis, app.log);
      const queue = createQueue(redis, app.config.ERP_QUEUE_PREFIX);
      const { serveHealthIfConfigured } = await import('./http/serve.js');
      const stopHttp = await serveHealthIfConfigured(app, 'scheduler');
      const scheduler = await startScheduler({
        pool: app.pool,
        log: app.log,
        home: app.home,
        queue,
        reconcile: { redis, intervalMs: app.config.ERP_RECONCILE_MS },
        approvalExpiryMs: app.config.ERP_APPROVAL_EXPIRY_MS,
      }).catch(async (err: unknown) => {
        await stopHttp();
        throw err;
      });
      // The built-in alerts (alerts.yaml) are evaluated by the schedulers, once a minute.
      const { startAlertRounds } = await import('./alerts/engine.js');
      const stopAlerts = startAlertRounds({ pool: app.pool, home: app.home, log: app.log, queue });
      app.log.info({ schedules: scheduler.entries.length }, 'scheduler started');
      await stopping;
      await stopAlerts();
      await scheduler.stop();
      await stopHttp();
      await queue.close();
      redis.disconnect();
      return EXIT.ok;
    }),
  );

cli.command('schedules', 'List the schedules with their next fire times and last run').action(() =>
  withApp(async (app) => {
    const { describeSchedules } = await import('./runner/scheduler.js');
    const rows = await describeSchedules(app.pool, app.home);
    const when = (d: Date): string => d.toISOString().slice(0, 16).replace('T', ' ');
    process.stdout.write(
      (rows.length === 0
        ? 'no schedules'
        : table(
            ['SCHEDULE', 'CRON', 'TIME ZONE', 'NEXT (UTC)', 'LAST RUN'],
            rows.map((r) => [
              `${r.job}#${r.index}`,
              r.cron,
              r.timezone,
              r.next.map(when).join(', '),
              r.lastRun ? `${r.lastRun.id} ${r.lastRun.status} ${when(r.lastRun.at)}` : 'never',
            ]),
          )) + '\n',
    );
    return EXIT.ok;
  }),
);

cli
  .command('cancel <id>', 'Cancel a queued or running run (its open transaction is rolled back)')
  .action((id: string) =>
    withApp(async (app) => {
      if (!/^\d+$/.test(id)) throw new UserError('usage: erp cancel <id> (a run number)');
      const result = await requestCancel(app.pool, Number(id));
      process.stdout.write(
        `run ${id}: ${result === 'cancelled' ? 'cancelled' : 'cancel requested; its worker stops it and rolls back'}\n`,
      );
      return EXIT.ok;
    }),
  );

cli
  .command('runs [action] [id]', 'Recent runs as a table; `erp runs show <id>` for one run in detail')
  .option('--job <name>', 'Only runs of this pipeline or job', { type: [String] })
  .option('--status <status>', 'Only runs with this status (queued, running, succeeded, failed, cancelled)', {
    type: [String],
  })
  .option('--limit <n>', 'How many runs to show', { default: '20', type: [String] })
  .action(
    (
      action: string | undefined,
      id: string | undefined,
      opts: { job?: string[]; status?: string[]; limit: string[] | string },
    ) =>
      withApp(async (app) => {
        if (action === undefined) {
          const limit = Number(Array.isArray(opts.limit) ? opts.limit[0] : opts.limit);
          if (!Number.isInteger(limit) || limit < 1)
            throw new UserError('--limit expects a positive whole number');
          const status = opts.status?.[0];
          const statuses = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
          if ((opts.status?.length ?? 0) > 1 || (status !== undefined && !statuses.includes(status)))
            throw new UserError(
              `--status expects one of ${statuses.join(', ')}; got ${opts.status!.join(', ')}`,
            );
          const rows = await listRuns(app.pool, { name: opts.job?.[0], status, limit });
          process.stdout.write(formatRuns(rows) + '\n');
          return EXIT.ok;
        }
        if (action !== 'show')
          throw new UserError(`unknown action '${action}'; use: erp runs, or erp runs show <id>`);
        if (id === undefined || !/^\d+$/.test(id))
          throw new UserError('usage: erp runs show <id> (a run number)');
        const detail = await getRun(app.pool, Number(id));
        if (!detail) throw new UserError(`no run ${id}`);
        process.stdout.write(formatRunDetail(detail) + '\n');
        const { formatRunCompliance } = await import('./audit/run-compliance.js');
        const compliance = await formatRunCompliance(app.pool, Number(id));
        if (compliance) process.stdout.write(compliance + '\n');
        return EXIT.ok;
      }),
  );

cli
  .command(
    'edi [action] [partner]',
    "EDI: `erp edi status` lists overdue acknowledgments and recent interchanges; `erp edi preview <partner>` shows what a run would do; `erp edi test <partner>` replays the partner's samples; `erp edi replay <partner> --since 30d [--mapping FILE]` runs archived inbound files through a mapping and shows what would change; `erp edi exceptions` / `erp edi reprocess <partner>` handle held orders",
  )
  .option('--partner <name>', 'Only this trading partner (partners/<name>.yaml)', { type: [String] })
  .option('--limit <n>', 'How many recent interchanges to show', { default: '20', type: [String] })
  .option('--direction <dir>', 'preview: inbound, outbound (default) or acks', { type: [String] })
  .option('--transaction-set <id>', 'preview outbound: 810 or 856 only', { type: [String] })
  .option('--update', 'test: write the expected files beside the samples')
  .option('--since <period>', 'replay: inbound files received in this period, e.g. 30d or 12h', {
    type: [String],
  })
  .option('--mapping <file>', "replay: this inbound mapping instead of the partner's", { type: [String] })
  .action((action: string | undefined, partner: string | undefined, opts: EdiCommandOptions) =>
    withApp(async (app) => (await import('./commands/edi.js')).ediCommand(app, action, partner, opts)),
  );

cli
  .command(
    'approve <run>',
    'Approve a run awaiting approval: it is queued for the workers (another person than its requester)',
  )
  .option('--reason <text>', 'Why, for the audit trail', { type: [String] })
  .action((id: string, opts: { reason?: string[] }) =>
    withApp(async (app) =>
      (await import('./commands/compliance.js')).approveCommand(app, id, opts.reason?.[0]),
    ),
  );

cli
  .command('reject <run>', 'Reject a run awaiting approval: it ends without running')
  .option('--reason <text>', 'Why, for the audit trail', { type: [String] })
  .action((id: string, opts: { reason?: string[] }) =>
    withApp(async (app) =>
      (await import('./commands/compliance.js')).rejectCommand(app, id, opts.reason?.[0]),
    ),
  );

cli
  .command('approvals', 'Runs awaiting approval (expired ones are ended first)')
  .option('--show', 'Print the dry run attached to each')
  .action((opts: { show?: boolean }) =>
    withApp(async (app) =>
      (await import('./commands/compliance.js')).approvalsCommand(app, opts.show ?? false),
    ),
  );

cli
  .command(
    'console',
    "The operators' web console on ERP_HTTP_PORT (runs, rejects, schedules, partners, queue)",
  )
  .action(() =>
    withApp(async (app) => {
      const stopping = untilSignal();
      return (await import('./commands/console.js')).consoleCommand(app, stopping);
    }),
  );

cli
  .command(
    'audit [action]',
    '`erp audit verify` checks the hash chain; `erp audit export --from D --to D` writes it',
  )
  .option('--from <date>', 'export: first day (YYYY-MM-DD, UTC) or timestamp', { type: [String] })
  .option('--to <date>', 'export: last day, included (YYYY-MM-DD, UTC) or timestamp', { type: [String] })
  .option('--format <csv|jsonl>', 'export: csv (default) or jsonl', { type: [String] })
  .option('--out <file>', 'export: write to this new file instead of stdout', { type: [String] })
  .action((action: string | undefined, opts: Record<string, string[] | undefined>) =>
    withApp(async (app) =>
      (await import('./commands/compliance.js')).auditCommand(app, action, {
        from: opts.from?.[0],
        to: opts.to?.[0],
        format: opts.format?.[0],
        out: opts.out?.[0],
      }),
    ),
  );

cli
  .command(
    'erase [what] [who]',
    '`erp erase person <employee or customer>` pseudonymises their personal data wherever erp keeps it; postings stay',
  )
  .action((what: string | undefined, who: string | undefined) =>
    withApp(async (app) => (await import('./commands/compliance.js')).eraseCommand(app, what, who)),
  );

cli
  .command('purge', 'Apply retention.yaml: remove what is past its period, except what a legal hold covers')
  .option('--dry-run', 'List what would go, and what the holds keep; remove nothing')
  .action((opts: { dryRun?: boolean }) =>
    withApp(async (app) =>
      (await import('./commands/compliance.js')).purgeCommand(app, opts.dryRun ?? false),
    ),
  );

cli
  .command(
    'keys [action] [id]',
    '`erp keys status` counts encrypted values per key; `erp keys rotate` re-encrypts them under the current key; `erp keys new <id>` prints a key line',
  )
  .option('--batch <n>', 'rotate: values per transaction', { default: '1000', type: [String] })
  .action((action: string | undefined, id: string | undefined, opts: { batch: string[] | string }) =>
    withApp(async (app) =>
      (await import('./commands/compliance.js')).keysCommand(app, action, id, {
        batch: Array.isArray(opts.batch) ? opts.batch[0] : opts.batch,
      }),
    ),
  );

cli
  .command(
    'users [action] [name] [role]',
    'Console users: list, add <name> --role R, remove, passwd, role <name> <role>',
  )
  .option(
    '--role <role>',
    'viewer (read), operator (cancel, rerun, reload, trigger), approver (also sees runs awaiting approval) or admin (also users, queue)',
    {
      type: [String],
    },
  )
  .option('--password-stdin', 'Read the password from standard input (else ERP_USER_PASSWORD, else a prompt)')
  .action(
    (
      action: string | undefined,
      name: string | undefined,
      role: string | undefined,
      opts: UsersCommandOptions,
    ) =>
      withApp(async (app) =>
        (await import('./commands/users.js')).usersCommand(app, action, name, role, opts),
      ),
  );

cli
  .command(
    'alerts [action] [channel]',
    'Open and recent alerts; `erp alerts test <channel>` sends a test notice; `erp alerts check` evaluates the rules now',
  )
  .action((action: string | undefined, channel: string | undefined) =>
    withApp(async (app) => (await import('./commands/alerts.js')).alertsCommand(app, action, channel)),
  );

/** Resolves with the name of the first SIGTERM or SIGINT. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}

cli.help();
cli.version('0.1.0');

try {
  cli.parse(process.argv, { run: false });
  if (!cli.matchedCommand && cli.args.length > 0) {
    // cac does not reject unknown commands by itself.
    const known = cli.commands.map((c) => c.name.split(' ')[0]).filter(Boolean);
    process.stderr.write(`erp: unknown command '${cli.args[0]}'; commands are: ${known.join(', ')}\n`);
    process.exitCode = EXIT.usage;
  } else if (!cli.matchedCommand && !cli.options.help && !cli.options.version) {
    cli.outputHelp();
  } else {
    await cli.runMatchedCommand();
  }
} catch (err) {
  // cac throws CACError for missing arguments and unknown options.
  process.stderr.write(`erp: ${(err as Error).message}\n`);
  process.exitCode = err instanceof RejectPolicyError ? EXIT.rejects : EXIT.usage;
}
