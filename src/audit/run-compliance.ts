import type pg from 'pg';
import type { DefinitionHash } from './definitions.js';

/**
 * The compliance lines of `erp runs show <id>`: the SHA-256 of each definition the run used, and
 * its approval (who decided, when), under the run's usual detail.
 */
export async function formatRunCompliance(pool: pg.Pool, runId: number): Promise<string> {
  const { rows } = await pool.query<{
    definitions: DefinitionHash[];
    decision: string | null;
    decided_by: string | null;
    decided_at: Date | null;
    expires_at: Date | null;
    has_approval: boolean;
    reason: string | null;
  }>(
    `SELECT r.definitions, a.decision, a.decided_by, a.decided_at, a.expires_at, a.run_id IS NOT NULL AS has_approval,
       a.reason
     FROM runner.runs r LEFT JOIN runner.approvals a ON a.run_id = r.id WHERE r.id = $1`,
    [runId],
  );
  const row = rows[0];
  if (!row) return '';
  const out: string[] = [];
  if (row.has_approval) {
    const when = (d: Date | null): string => (d ? d.toISOString().replace('T', ' ').slice(0, 19) : '');
    out.push(
      row.decision === null
        ? `approval: awaiting${row.expires_at ? ` (expires ${when(row.expires_at)} UTC)` : ''}`
        : `approval: ${row.decision}${row.decided_by ? ` by ${row.decided_by}` : ''} at ${when(row.decided_at)} UTC${row.reason ? ` — ${row.reason}` : ''}`,
    );
  }
  if (row.definitions.length > 0) {
    out.push('definitions (SHA-256 when requested):');
    for (const d of row.definitions) out.push(`  ${d.kind.padEnd(8)} ${d.path}  ${d.sha256}`);
  }
  return out.join('\n');
}
