/**
 * The options of `erp edi` and how they are read: shared by its status and step actions
 * (edi.ts) and its harness actions (edi-harness.ts), below both.
 */

/** Options of `erp edi`. */
export interface EdiCommandOptions {
  partner?: string[];
  limit?: string[] | string;
  direction?: string[];
  transactionSet?: string[] | string;
  /** `erp edi test --update`: write the expected files. */
  update?: boolean;
  /** `erp edi replay --since 30d`. */
  since?: string[] | string;
  /** `erp edi replay --mapping FILE`. */
  mapping?: string[] | string;
}

/** The first value of an option given as a list or once. */
export const first = (v: string[] | string | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
