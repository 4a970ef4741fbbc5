import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml.js';
import { quoteIdent, quoteQualified } from '../db/pool.js';
import { UserError } from '../errors.js';
import type { Cell, RejectFn, RowStep, StageContext } from './types.js';

/**
 * `transform: { mapping: items }` — maps source fields to target columns through a mapping file
 * in `mappings/` (reusable across pipelines and partners).
 *
 * Per column, in this order: `from` (or `const`) → `trim` → `case` → `map` → `default` → `lookup`.
 */
export const transformSchema = z
  .object({
    /** Name of a file in mappings/ (without .yaml). */
    mapping: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_/-]*$/, 'a mapping name like items or x12/850-in'),
  })
  .strict();
export type TransformConfig = z.infer<typeof transformSchema>;

const lookupSchema = z
  .object({
    /** Table to look the value up in (schema.table). */
    table: z.string(),
    /** Column holding the value from the file. */
    key: z.string(),
    /** Column whose value replaces it (usually the id). */
    value: z.string(),
  })
  .strict();

export const columnMappingSchema = z
  .object({
    /** Source field name. Defaults to the target column's own name unless `const` is given. */
    from: z.string().optional(),
    /** A constant value instead of a source field. */
    const: z.union([z.string(), z.number(), z.boolean()]).optional(),
    /** Strip leading and trailing white space. */
    trim: z.boolean().default(false),
    /** Change letter case. */
    case: z.enum(['upper', 'lower']).optional(),
    /** Value map: source value → target value. */
    map: z.record(z.string(), z.union([z.string(), z.number(), z.null()])).optional(),
    /** What to do with a value the map does not list. */
    unmapped: z.enum(['reject', 'keep', 'null']).default('reject'),
    /** Value used when the field is empty or NULL. */
    default: z.union([z.string(), z.number(), z.boolean()]).optional(),
    /** Replace the value by the id found in a PostgreSQL table; a value not found is a reject. */
    lookup: lookupSchema.optional(),
    /** Personal or secret data: its values are masked in rejects, reports and messages (src/compliance/sensitive.ts). */
    sensitive: z.boolean().optional(),
  })
  .strict()
  .refine((c) => !(c.from !== undefined && c.const !== undefined), {
    message: 'give either from or const, not both',
  });

export const mappingFileSchema = z
  .object({
    description: z.string().optional(),
    /** Target columns, in order, and where each comes from. */
    columns: z.record(z.string(), columnMappingSchema),
  })
  .strict();
export type MappingFile = z.infer<typeof mappingFileSchema>;

/** Most rows a lookup table may have; larger tables belong in a join after the load. */
const MAX_LOOKUP_ROWS = 2_000_000;

/** Loads the mapping file and the lookup tables it names, and returns the transform step. */
export async function createTransform(config: TransformConfig, ctx: StageContext): Promise<RowStep> {
  const file = path.join(ctx.home, 'mappings', `${config.mapping}.yaml`);
  const mapping = await loadYamlFile(file, mappingFileSchema, path.relative(ctx.home, file));
  const targets = Object.keys(mapping.columns);
  for (const t of targets) quoteIdent(t);
  const lookups = new Map<string, Map<string, string>>();
  for (const [target, col] of Object.entries(mapping.columns)) {
    if (!col.lookup) continue;
    const { table, key, value } = col.lookup;
    const sql = `SELECT ${quoteIdent(key)}::text AS k, ${quoteIdent(value)}::text AS v FROM ${quoteQualified(table)} LIMIT ${MAX_LOOKUP_ROWS + 1}`;
    let rows: { k: string | null; v: string | null }[];
    try {
      rows = (await ctx.pool.query<{ k: string | null; v: string | null }>(sql)).rows;
    } catch (err) {
      throw new UserError(
        `${file}, columns.${target}.lookup: cannot read ${table}: ${(err as Error).message}`,
      );
    }
    if (rows.length > MAX_LOOKUP_ROWS) {
      throw new UserError(
        `${file}, columns.${target}.lookup: ${table} has more than ${MAX_LOOKUP_ROWS} rows`,
      );
    }
    const m = new Map<string, string>();
    for (const r of rows) if (r.k !== null && r.v !== null) m.set(r.k, r.v);
    lookups.set(target, m);
  }

  return {
    columns: () => targets,
    compile(input, fileName) {
      const ops = Object.entries(mapping.columns).map(([target, col]) => {
        const source = col.const !== undefined ? null : (col.from ?? target);
        const index = source === null ? -1 : input.indexOf(source);
        if (source !== null && index < 0) {
          throw new UserError(
            `${file}, columns.${target}: source field '${source}' is not in ${fileName}; its fields are: ${input.join(', ')}`,
          );
        }
        return {
          target,
          index,
          constant: col.const === undefined ? null : String(col.const),
          trim: col.trim,
          upper: col.case === 'upper',
          lower: col.case === 'lower',
          map: col.map
            ? new Map(Object.entries(col.map).map(([k, v]) => [k, v === null ? null : String(v)]))
            : null,
          unmapped: col.unmapped,
          dflt: col.default === undefined ? null : String(col.default),
          lookup: lookups.get(target) ?? null,
          lookupDesc: col.lookup ? `${col.lookup.table}.${col.lookup.key}` : '',
        };
      });
      return (row: Cell[], line: number, reject: RejectFn): Cell[] | null => {
        const out: Cell[] = new Array<Cell>(ops.length);
        let ok = true;
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          let v: Cell = op.index < 0 ? op.constant : (row[op.index] ?? null);
          if (v !== null) {
            if (op.trim) v = v.trim();
            if (op.upper) v = v.toUpperCase();
            else if (op.lower) v = v.toLowerCase();
            if (op.map !== null) {
              const m = op.map.get(v);
              if (m !== undefined) v = m;
              else if (op.unmapped === 'null') v = null;
              else if (op.unmapped === 'reject') {
                reject({
                  file: fileName,
                  line,
                  field: op.target,
                  value: v,
                  reason: `value not in the map; expected one of ${[...op.map.keys()].join(', ')}`,
                });
                ok = false;
                continue;
              }
            }
          }
          if ((v === null || v === '') && op.dflt !== null) v = op.dflt;
          if (v !== null && op.lookup !== null) {
            const id = op.lookup.get(v);
            if (id === undefined) {
              reject({
                file: fileName,
                line,
                field: op.target,
                value: v,
                reason: `no row in ${op.lookupDesc} = '${v}'`,
              });
              ok = false;
              continue;
            }
            v = id;
          }
          out[i] = v;
        }
        return ok ? out : null;
      };
    },
  };
}
