/**
 * The SQLSTATEs the code tells apart: the project's own, raised by its migrations (class ERP, so
 * they never collide with PostgreSQL's), and the few of PostgreSQL's it reacts to. Compare an
 * error's `code` with these, never with a literal. test/sqlstate.test.ts checks that each ERP code
 * here is raised by a migration and that every code the migrations raise is here.
 */
export const SQLSTATE = {
  /**
   * A business rule refused the operation; the message says why (payroll close, closed periods,
   * bank routing: sql/000003, 000131–000135, …). Shown to the operator as a one-line UserError.
   */
  REFUSED: 'ERP01',
  /**
   * runner.step_succeeded (sql/000008): the run is finished, or this step already succeeded in
   * another delivery of the run; the step's work was rolled back and the run is not ours.
   */
  NOT_OURS: 'ERP02',
  /** runner.step_succeeded (sql/000008): a cancel was requested while the step ran; rolled back. */
  CANCELLED_AT_COMMIT: 'ERP03',
  /**
   * The audit trail refused: audit.events is append-only (sql/000190), or a run never approved
   * was resumed (sql/000192).
   */
  AUDIT_REFUSED: 'ERP19',
  /** PostgreSQL: RAISE EXCEPTION without an ERRCODE (a refusal in an operator's SQL step). */
  RAISE_EXCEPTION: 'P0001',
  /** PostgreSQL: a unique constraint; its `constraint` field says which. */
  UNIQUE_VIOLATION: '23505',
} as const;

export type SqlState = (typeof SQLSTATE)[keyof typeof SQLSTATE];
