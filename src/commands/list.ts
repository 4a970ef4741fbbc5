import type { App } from '../app.js';
import { UserError } from '../errors.js';
import { listJobNames, loadJob, resolveParams, resolveRunnable, type Runnable } from '../jobs/definition.js';
import { assertPreflight, formatProblem, preflight, type Problem } from '../jobs/preflight.js';
import { listPipelineNames, loadPipeline } from '../pipeline/definition.js';
import { table } from './report.js';

/**
 * `erp list`: every job and pipeline, each checked by the preflight a run makes (definitions,
 * mapping files, date formats, identifiers, the catalogue, parameters), without the checks of
 * what a run meets at its start (export files present, partner variables). An invalid definition
 * is listed as INVALID with its first problem; every problem follows the table.
 */
export async function listCommand(app: App): Promise<string> {
  const rows: string[][] = [];
  const details: string[] = [];
  const check = async (runnable: Runnable): Promise<Problem[]> => {
    let params: Record<string, string>;
    try {
      params = resolveParams(runnable.job, {});
    } catch {
      // A parameter without a default: its name is enough to check what uses it.
      params = Object.fromEntries(Object.keys(runnable.job.config.params).map((k) => [k, '']));
    }
    return preflight(app, runnable, params, { state: false });
  };
  const add = async (
    name: string,
    kind: 'job' | 'pipeline',
    describe: () => Promise<string>,
  ): Promise<void> => {
    let problems: Problem[];
    let description = '';
    try {
      description = await describe();
      problems = await check(await resolveRunnable(app.home, name));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      problems = [{ where: '', message: err.message }];
    }
    if (problems.length === 0) return void rows.push([name, kind, description]);
    const first = formatProblem(problems[0]!).split('\n')[0]!;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    rows.push([name, kind, `INVALID: ${first}${more}`]);
    details.push(`${name}:`, ...problems.map((p) => `  ${formatProblem(p)}`));
  };
  for (const n of await listJobNames(app.home)) {
    await add(n, 'job', async () => {
      const job = await loadJob(app.home, n);
      const params = Object.keys(job.config.params).map((p) => `--param ${p}=…`);
      return [job.config.description ?? '', ...params].filter(Boolean).join(' ');
    });
  }
  for (const n of await listPipelineNames(app.home)) {
    await add(n, 'pipeline', async () => (await loadPipeline(app.home, n)).config.description ?? '');
  }
  if (rows.length === 0) throw new UserError(noDefinitions(app.home));
  return [table(['NAME', 'KIND', 'DESCRIPTION'], rows), ...(details.length > 0 ? ['', ...details] : [])].join(
    '\n',
  );
}

function noDefinitions(home: string): string {
  return `no jobs or pipelines under ${home} (jobs/*.yaml, pipelines/*.yaml); run erp from the project directory, or set ERP_HOME to it`;
}

/** `erp validate`'s preflight: the pipeline checked as `erp run` would check it; exit 2 listing every problem. */
export async function checkPipelineCommand(
  app: App,
  name: string,
  files: string[] | undefined,
): Promise<void> {
  const runnable = await resolveRunnable(app.home, name);
  const params = resolveParams(runnable.job, {});
  await assertPreflight(app, runnable, params, files ? { files } : {});
}
