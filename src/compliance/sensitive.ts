import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadYamlFile } from '../config/yaml.js';
import { UserError } from '../errors.js';
import type { PipelineDefinition } from '../pipeline/definition.js';
import { mappingFileSchema } from '../stages/transform.js';
import type { FormatReader, Reject, RejectFn, RowStep } from '../stages/types.js';

/**
 * Sensitive fields (`sensitive: true` on a validate field or a mapping column): their values never
 * reach a reject report, runner.rejects, the console, a log line or an error message. Every reject
 * passes through {@link Redactor.reject} before anything sees it:
 *
 *   format ──reject──┐
 *   validate ─reject─┼─► redact ─► reject collector ─► report CSV, runner.rejects, CLI output
 *   transform reject─┘
 *
 * A sensitive value shows as `[sensitive ****6789 hmac:…]`: its last four characters when it is
 * long enough for them not to give it away, and a keyed hash (HMAC-SHA-256 with ERP_REDACT_KEY),
 * so an operator holding the source file can tell which value was rejected without erp keeping
 * it. A structural reject (a row the format could not split) carries the raw line, which holds
 * the sensitive columns too: its value is withheld the same way as a whole.
 */

/** Where the redaction key comes from: ERP_REDACT_KEY, or the file named by ERP_REDACT_KEY_FILE. */
export function loadRedactKey(env: NodeJS.ProcessEnv = process.env): Buffer | null {
  const direct = env.ERP_REDACT_KEY;
  if (direct) return Buffer.from(direct, 'utf8');
  const file = env.ERP_REDACT_KEY_FILE;
  if (!file) return null;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UserError(
      `environment variable ERP_REDACT_KEY_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

/** What a sensitive value shows as; `whole` for a raw line, whose last characters may be any field's. */
export function protectValue(value: string, key: Buffer | null, whole = false): string {
  // Four characters of a short value would give most of it away.
  const tail = whole
    ? 'line withheld'
    : value.length >= 10
      ? `****${value.slice(-4)}`
      : `${value.length} chars`;
  const mac = key
    ? ` hmac:${createHmac('sha256', key).update(value, 'utf8').digest('hex').slice(0, 16)}`
    : '';
  return `[sensitive ${tail}${mac}]`;
}

/** Rewrites rejects so that no sensitive value is left in them. */
export interface Redactor {
  /** The names (validate fields, mapping columns and their source fields) declared sensitive. */
  fields: ReadonlySet<string>;
  reject(r: Reject): Reject;
}

export function createRedactor(fields: ReadonlySet<string>, key: Buffer | null): Redactor {
  return {
    fields,
    reject(r) {
      if (r.value === null || r.value === '') return r;
      // A structural reject's value is the whole raw line, sensitive columns included.
      if (r.field !== null && !fields.has(r.field)) return r;
      const shown = protectValue(r.value, key, r.field === null);
      return { ...r, value: shown, reason: r.reason.split(r.value).join(shown) };
    },
  };
}

/** The fields a pipeline declares sensitive, in its validate stage and its mapping. */
export async function sensitiveFieldsOf(home: string, def: PipelineDefinition): Promise<Set<string>> {
  const out = new Set<string>();
  for (const [name, spec] of Object.entries(def.config.validate?.fields ?? {})) {
    if (spec.sensitive) out.add(name);
  }
  const mapping = def.config.transform?.mapping;
  if (mapping) {
    const file = path.join(home, 'mappings', `${mapping}.yaml`);
    const m = await loadYamlFile(file, mappingFileSchema, path.relative(home, file));
    for (const [target, col] of Object.entries(m.columns)) {
      const from = col.from ?? target;
      // A field sensitive on the way in stays sensitive under the name the mapping gives it.
      if (col.sensitive || out.has(from)) {
        out.add(target);
        out.add(from);
      }
    }
  }
  return out;
}

/** The format and row steps of an import, with every reject they report redacted. */
export function redactStages<T extends { format: FormatReader; steps: RowStep[] }>(
  stages: T,
  redactor: Redactor,
): T {
  const wrap =
    (reject: RejectFn): RejectFn =>
    (r) =>
      reject(redactor.reject(r));
  const format: FormatReader = {
    read: (input, fileName, reject) => stages.format.read(input, fileName, wrap(reject)),
  };
  const steps: RowStep[] = stages.steps.map((step) => ({
    columns: (input) => step.columns(input),
    compile(input, fileName) {
      const fn = step.compile(input, fileName);
      // The collector passes the same function for every row: wrap it once.
      let seen: RejectFn | null = null;
      let wrapped: RejectFn | null = null;
      return (row, line, reject) => {
        if (reject !== seen) {
          seen = reject;
          wrapped = wrap(reject);
        }
        return fn(row, line, wrapped!);
      };
    },
  }));
  return { ...stages, format, steps };
}
