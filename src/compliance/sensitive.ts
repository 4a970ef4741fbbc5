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
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadYamlFile } from '../config/yaml.js';
import { UserError } from '../errors.js';
import type { PipelineDefinition } from '../pipeline/definition.js';
import { mappingFileSchema } from '../stages/transform.js';
import type { Cell, FormatReader, Reject, RejectFn, RowStep, Sink } from '../stages/types.js';

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
  /** What `value` shows as (`whole`: it holds several fields, so no last four). */
  protect(value: string, whole?: boolean): string;
  /** `shown` is what {@link protect} made of a value already (an error redacted once, by the sink). */
  isProtected(shown: string): boolean;
}

export function createRedactor(fields: ReadonlySet<string>, key: Buffer | null): Redactor {
  return {
    fields,
    protect: (value, whole = false) => protectValue(value, key, whole),
    isProtected: (shown) => /^\[sensitive [^\]]*\]$/.test(shown),
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

/**
 * Rewrites, in place, a PostgreSQL error raised while loading a pipeline with sensitive fields, so
 * that neither its message, its DETAIL nor its context (all of which a log line or the run record
 * may show) holds a sensitive value:
 * - `Key (tax_id)=(12-3456789) already exists` (a unique or foreign key): the key's values masked
 *   when one of its columns is sensitive;
 * - `Failing row contains (…)` (a check or not-null constraint): the row withheld as a whole;
 * - COPY's context `COPY t, line 3, column pin: "98x7"` and a message quoting that value
 *   (`invalid input syntax for type integer: "98x7"`): the value masked; a context quoting the
 *   whole row (`COPY t, line 3: "…"`): withheld.
 */
export function redactDatabaseError(err: unknown, redactor: Redactor): void {
  if (!(err instanceof Error) || redactor.fields.size === 0) return;
  const e = err as Error & { detail?: unknown; where?: unknown };
  if (typeof e.where === 'string') {
    const m = /column (\w+): "(.*)"$/m.exec(e.where);
    // Without a column, COPY quotes the whole row (a check constraint that failed).
    const row = m ? null : /line \d+: "(.*)"$/m.exec(e.where);
    if (m && redactor.fields.has(m[1]!) && m[2] !== '') {
      const shown = redactor.protect(m[2]!);
      e.where = e.where.split(m[2]!).join(shown);
      e.message = e.message.split(m[2]!).join(shown);
    } else if (row && row[1] !== '') {
      e.where = e.where.split(row[1]!).join(redactor.protect(row[1]!, true));
    }
  }
  if (typeof e.detail === 'string') {
    const key = /^Key \((.+?)\)=\((.*)\)( .*)?$/s.exec(e.detail);
    if (key) {
      const columns = key[1]!.split(', ');
      if (columns.some((c) => redactor.fields.has(c)))
        e.detail = `Key (${key[1]})=(${redactor.protect(key[2]!, columns.length > 1)})${key[3] ?? ''}`;
    } else if (e.detail.startsWith('Failing row contains')) {
      e.detail = 'Failing row contains (withheld: the pipeline declares sensitive fields)';
    }
  }
}

/** The format and row steps of an import, with every reject they report redacted. */
export function redactStages<T extends { format: FormatReader; steps: RowStep[]; sink: Sink }>(
  stages: T,
  redactor: Redactor,
): T {
  const wrap =
    (reject: RejectFn): RejectFn =>
    (r) =>
      reject(redactor.reject(r));
  const format: FormatReader = {
    read: (input, fileName, reject) => stages.format.read(input, fileName, wrap(reject)),
    copyDialect: stages.format.copyDialect,
  };
  /** The collector passes the same function for every row: wrap it once. */
  const wrapOnce = <R>(
    fn: (row: Cell[], line: number, reject: RejectFn) => R,
  ): ((row: Cell[], line: number, reject: RejectFn) => R) => {
    let seen: RejectFn | null = null;
    let wrapped: RejectFn | null = null;
    return (row, line, reject) => {
      if (reject !== seen) {
        seen = reject;
        wrapped = wrap(reject);
      }
      return fn(row, line, wrapped!);
    };
  };
  const steps: RowStep[] = stages.steps.map((step) => {
    const check = step.compileCheck?.bind(step);
    return {
      columns: (input) => step.columns(input),
      compile: (input, fileName) => wrapOnce(step.compile(input, fileName)),
      ...(check && {
        compileCheck: (input, fileName, types) => wrapOnce(check(input, fileName, types)),
      }),
    };
  });
  // The sink's errors come from PostgreSQL, whose messages may quote the row (see above).
  const guard = async <R>(p: Promise<R>): Promise<R> => {
    try {
      return await p;
    } catch (err) {
      redactDatabaseError(err, redactor);
      throw err;
    }
  };
  const sink: Sink = {
    describe: () => stages.sink.describe(),
    async open(client, columns, csv, before) {
      const writer = await guard(stages.sink.open(client, columns, csv, before));
      return {
        columnTypes: writer.columnTypes,
        ...(writer.sealer && { sealer: writer.sealer }),
        write: (rows) => guard(writer.write(rows)),
        writeText: (text, rows) => guard(writer.writeText(text, rows)),
        end: () => guard(writer.end()),
        abort: (reason) => writer.abort(reason),
      };
    },
  };
  return { ...stages, format, steps, sink };
}
