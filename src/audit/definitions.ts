import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadJob, type JobDefinition, type Runnable } from '../jobs/definition.js';
import { stepKindOfEntry } from '../jobs/steps/registry.js';
import type { DefinitionVisitor } from '../jobs/steps/types.js';
import { loadPipeline } from '../pipeline/definition.js';
import { loadAnyPartner } from '../partners/profile.js';

/** One definition file a run used, and its SHA-256 when the run was requested. */
export interface DefinitionHash {
  kind: 'job' | 'pipeline' | 'mapping' | 'partner' | 'sql' | 'retention';
  name: string;
  /** Relative to the project home. */
  path: string;
  sha256: string;
}

/**
 * The SHA-256 of every definition a run uses: its job (and the jobs it calls), each pipeline with
 * its mapping, export query and partner, each partner of an EDI step with its X12 mappings, and
 * each SQL file. Recorded with the run (runner.runs.definitions) so an auditor can tell which
 * version of a mapping loaded which rows.
 */
export async function definitionHashes(home: string, runnable: Runnable): Promise<DefinitionHash[]> {
  const out = new Map<string, DefinitionHash>();
  const add = async (kind: DefinitionHash['kind'], name: string, file: string): Promise<void> => {
    const rel = path.relative(home, path.resolve(home, file));
    if (out.has(rel)) return;
    const sha256 = createHash('sha256')
      .update(await readFile(path.resolve(home, rel)))
      .digest('hex');
    out.set(rel, { kind, name, path: rel, sha256 });
  };
  const partner = async (name: string): Promise<void> => {
    const p = await loadAnyPartner(home, name);
    await add('partner', name, p.file);
    for (const m of Object.values(p.x12?.mappings ?? {})) {
      if (m) await add('mapping', m, path.join('mappings', `${m}.yaml`));
    }
  };
  const job = async (def: JobDefinition, seen: string[]): Promise<void> => {
    if (seen.includes(def.name)) return;
    if (runnable.kind === 'job' || seen.length > 0) await add('job', def.name, def.file);
    // Each step's kind tells the definitions it uses (src/jobs/steps/).
    const defs: DefinitionVisitor = {
      home,
      pipeline: async (name) => {
        const p = await loadPipeline(home, name);
        await add('pipeline', p.name, p.file);
        const c = p.config;
        if (c.transform?.mapping) {
          await add('mapping', c.transform.mapping, path.join('mappings', `${c.transform.mapping}.yaml`));
        }
        if (c.source.kind === 'postgres' && c.source.query) {
          // An export's query is named relative to the home (sql/exports/…).
          await add('sql', c.source.query, c.source.query);
        }
        for (const stage of [c.source, c.sink] as { partner?: unknown }[]) {
          if (typeof stage.partner === 'string') await partner(stage.partner);
        }
      },
      partner,
      job: async (name) => job(await loadJob(home, name), [...seen, def.name]),
      file: (kind, name, file) => add(kind, name, file),
    };
    for (const step of def.config.steps) await stepKindOfEntry(step).uses(step, defs);
  };
  await job(runnable.job, []);
  return [...out.values()];
}
