import { z } from 'zod';
import type { Cell, RowStep } from './types.js';

/**
 * Cleaning of the values a format read, before validation sees them: `trim` and `null_if` on a
 * CSV or XLSX import. Validation checks the values as read, so a padded `' 12.50'` or a `N/A`
 * placeholder is cleaned here, not by a mapping that runs after validation.
 */

/** The format options this stage reads; spread into the CSV and XLSX format schemas. */
export const cleanOptions = {
  /** Import: remove leading and trailing white space from every value before validation. @defaultValue false */
  trim: z.boolean().default(false),
  /**
   * Import: values that mean "no value" (`NULL`, `N/A`, `-`); each becomes NULL before validation,
   * compared after `trim`. @defaultValue []
   */
  null_if: z.array(z.string()).default([]),
};

export interface CleanConfig {
  trim: boolean;
  null_if: string[];
}

/** The cleaning step of a format's options, or null when it asks for none (the common case costs nothing). */
export function createClean(config: CleanConfig): RowStep | null {
  if (!config.trim && config.null_if.length === 0) return null;
  const nulls = new Set(config.null_if);
  const trim = config.trim;
  const clean = (v: Cell): Cell => {
    if (v === null) return null;
    const t = trim ? v.trim() : v;
    return nulls.has(t) ? null : t;
  };
  return {
    columns: (input) => input,
    compile: () => (row) => {
      for (let i = 0; i < row.length; i++) row[i] = clean(row[i]!);
      return row;
    },
  };
}
