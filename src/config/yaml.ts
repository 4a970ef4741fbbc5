import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { z } from 'zod';
import { UserError } from '../errors.js';

/**
 * Reads a YAML definition (pipeline, mapping, job, partner) and validates it with its zod schema.
 * Every error names the file, the line and the key path, and — for an unknown key or a wrong enum
 * value — lists what is allowed:
 *
 *   pipelines/items.yaml, line 14, sink.mode: expected one of "append" | "upsert" | "replace"
 */
export async function loadYamlFile<S extends z.ZodType>(
  file: string,
  schema: S,
  /** How the file is named in errors, e.g. relative to the project home. */
  display = file,
): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT' ? `${display}: no such file` : `${display}: ${(err as Error).message}`,
    );
  }
  return parseYaml(display, text, schema);
}

/** Parses and validates YAML `text` that came from `file`. */
export function parseYaml<S extends z.ZodType>(file: string, text: string, schema: S): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
    throw new UserError(`${file}, line ${line}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS() ?? {};
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.map(String);
    let message = issue.message;
    let where = path;
    if (issue.code === 'unrecognized_keys') {
      where = [...path, issue.keys[0] ?? ''];
      const allowed = allowedKeys(schema, data, issue.path);
      message = `unknown key '${issue.keys.join("', '")}'${allowed.length > 0 ? `; allowed keys are: ${allowed.join(', ')}` : ''}`;
    } else if (issue.code === 'invalid_union' && 'discriminator' in issue) {
      message = `${issue.message}`;
    }
    const node = nodeAt(doc.contents as Node | null, where);
    const line = node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
    const key = where.length > 0 ? where.join('.') : '(top level)';
    return `${file}${line !== undefined ? `, line ${line}` : ''}, ${key}: ${message}`;
  });
  const more = parsed.error.issues.length > 5 ? `\n(${parsed.error.issues.length - 5} more problems)` : '';
  throw new UserError(lines.join('\n') + more);
}

/** The YAML node at a key path, or the nearest ancestor that exists. */
function nodeAt(root: Node | null, path: readonly string[]): Node | null {
  let node: Node | null = root;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (!pair) return node;
      // Point at the key for a key's problem, at the value otherwise.
      node = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node)) {
      const item = node.items[Number(key)];
      if (item === undefined) return node;
      node = item as Node;
    } else {
      return node;
    }
  }
  return node;
}

/** Keys an object schema accepts at `path` of `data` (walks objects, unions by discriminator, arrays, records). */
function allowedKeys(schema: z.ZodType, data: unknown, path: readonly PropertyKey[]): string[] {
  let s: unknown = schema;
  let d: unknown = data;
  const unwrap = (x: unknown): unknown => {
    for (let i = 0; i < 10; i++) {
      const def = (x as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return x;
      if (
        def.type === 'optional' ||
        def.type === 'default' ||
        def.type === 'nullable' ||
        def.type === 'prefault'
      ) {
        x = def.innerType;
      } else if (def.type === 'pipe') {
        x = def.in;
      } else if (def.type === 'union') {
        const options = def.options as unknown[];
        const disc = def.discriminator as string | undefined;
        const value = disc && d && typeof d === 'object' ? (d as Record<string, unknown>)[disc] : undefined;
        const match = options.find((o) => {
          const shape = (unwrap(o) as { shape?: Record<string, unknown> }).shape;
          const lit = shape?.[disc ?? '']
            ? (shape[disc!] as { _zod?: { def?: { values?: unknown[] } } })._zod?.def?.values
            : undefined;
          return lit?.includes(value);
        });
        x = match ?? options[0];
      } else {
        return x;
      }
    }
    return x;
  };
  for (const key of path) {
    s = unwrap(s);
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return [];
    if (def.type === 'object') s = (def.shape as Record<string, unknown>)[String(key)];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return [];
    d = d && typeof d === 'object' ? (d as Record<string, unknown>)[String(key)] : undefined;
  }
  s = unwrap(s);
  const shape = (s as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

/**
 * The line of the value at `keyPath` (e.g. `['sink', 'table']`) in YAML file `file`, or of its
 * nearest ancestor; undefined when the file cannot be read. For problems found after a definition
 * parsed (an identifier, a table missing from the catalogue) that still name file, line and key.
 */
export async function yamlLineOf(file: string, keyPath: readonly string[]): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const node = nodeAt(doc.contents as Node | null, keyPath);
  return node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
}
