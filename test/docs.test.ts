import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseYaml } from '../src/config/yaml.js';
import { jobSchema, resolveParams, resolveRunnable } from '../src/jobs/definition.js';
import { parseParams } from '../src/commands/run.js';
import { pipelineSchema } from '../src/pipeline/definition.js';
import { mappingFileSchema } from '../src/stages/transform.js';
import { partnerSchema } from '../src/partners/profile.js';
import { retentionSchema } from '../src/compliance/retention.js';
import { inboundMappingSchema } from '../src/x12/mapping.js';
import type { TestDatabase } from './helpers/db.js';
import { test } from './helpers/fixtures.js';

/**
 * The docs' examples against the product: every fenced YAML snippet of README.md and docs/*.md is
 * schema-checked as the pipeline, mapping, job or retention policy it is (and a pipeline's table must exist in the
 * migrated database); every `erp …` command in a fenced block must name a real command, and a
 * `run`/`validate` a real job or pipeline of this repository with parameters it accepts.
 *
 * A snippet that is illustrative only is preceded by the line `<!-- docs-test: illustrative -->`.
 */

const ILLUSTRATIVE = '<!-- docs-test: illustrative -->';
/** The commands `src/cli.ts` declares, read from its source so a new command needs no list here. */
const COMMANDS = [...readFileSync('src/cli.ts', 'utf8').matchAll(/\.command\(\s*['"]([a-z][a-z-]*)/g)].map(
  (m) => m[1]!,
);

interface Block {
  file: string;
  line: number;
  lang: string;
  text: string;
}

async function blocks(): Promise<Block[]> {
  const files = [
    'README.md',
    ...(await readdir('docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  ];
  const out: Block[] = [];
  for (const file of files) {
    const lines = (await readFile(file, 'utf8')).split('\n');
    for (let i = 0; i < lines.length; i++) {
      const open = /^```(\w*)/.exec(lines[i]!);
      if (!open) continue;
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!);
      if (lines[start - 1]?.trim() === ILLUSTRATIVE) continue;
      out.push({ file, line: start + 1, lang: open[1]!, text: body.join('\n') });
    }
  }
  return out;
}

let db: TestDatabase;
test.beforeAll(async ({ db: d }) => {
  db = d;
});

describe('docs examples', () => {
  it('every YAML snippet is a valid pipeline, mapping or job, on tables that exist', async () => {
    const problems: string[] = [];
    for (const b of (await blocks()).filter((x) => x.lang === 'yaml')) {
      const where = `${b.file}:${b.line}`;
      try {
        if (/^steps:/m.test(b.text)) parseYaml(where, b.text, jobSchema);
        else if (/^name: [A-Z]/m.test(b.text)) parseYaml(where, b.text, partnerSchema);
        else if (/^transaction_set: '850'/m.test(b.text)) parseYaml(where, b.text, inboundMappingSchema);
        else if (/^columns:/m.test(b.text)) parseYaml(where, b.text, mappingFileSchema);
        else if (/^periods:/m.test(b.text)) parseYaml(where, b.text, retentionSchema);
        else if (/^source:/m.test(b.text)) {
          const p = parseYaml(where, b.text, pipelineSchema);
          if (p.sink.kind === 'postgres') {
            const { rows } = await db.pool.query('SELECT to_regclass($1) AS t', [p.sink.table]);
            if (!rows[0].t) problems.push(`${where}: table ${p.sink.table} does not exist`);
          }
          if (p.source.kind === 'postgres' && p.source.query) {
            await readFile(p.source.query).catch(() =>
              problems.push(`${where}: no query file ${p.source.kind === 'postgres' ? p.source.query : ''}`),
            );
          }
        } else
          problems.push(
            `${where}: a YAML snippet that is no pipeline, mapping or job (mark it ${ILLUSTRATIVE})`,
          );
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every erp command names a real command, job or pipeline, with parameters it accepts', async () => {
    const problems: string[] = [];
    for (const b of await blocks()) {
      for (const [k, raw] of b.text.split('\n').entries()) {
        const m = /^\s*(?:\$ )?erp (.*)$/.exec(raw);
        if (!m) continue;
        const where = `${b.file}:${b.line + k + 1}`;
        const args = m[1]!
          .replace(/\s+#.*$/, '')
          .trim()
          .split(/\s+/);
        const [cmd, name] = args;
        if (!COMMANDS.includes(cmd!)) {
          problems.push(`${where}: unknown command '${cmd}'`);
          continue;
        }
        if ((cmd !== 'run' && cmd !== 'validate') || !name || !/^[a-z0-9][a-z0-9_-]*$/.test(name)) continue;
        try {
          const runnable = await resolveRunnable('.', name);
          const opt = (flag: string): string[] =>
            args.flatMap((a, i) => (a === flag && args[i + 1] ? [args[i + 1]!] : []));
          resolveParams(runnable.job, parseParams(opt('--param'), opt('--period')));
        } catch (err) {
          problems.push(`${where}: ${(err as Error).message}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("README's command table lists every erp edi action the command accepts", async () => {
    // The actions, from the usage message src/commands/edi.ts gives for an unknown one.
    const source = await readFile('src/commands/edi.ts', 'utf8');
    const usage = /unknown action '\$\{action\}'; use: ([^`]+)`/.exec(source)?.[1] ?? '';
    const actions = [...new Set([...usage.matchAll(/erp edi (\w+)/g)].map((m) => m[1]!))];
    expect(actions).toEqual(
      expect.arrayContaining(['status', 'preview', 'test', 'replay', 'exceptions', 'reprocess']),
    );
    const readme = await readFile('README.md', 'utf8');
    const rows = readme.split('\n').filter((l) => l.startsWith('| `erp edi '));
    expect(actions.filter((a) => !rows.some((r) => r.startsWith(`| \`erp edi ${a}`)))).toEqual([]);
  });
});
