import type pg from 'pg';
import { complianceOf } from '../runs/store/approvals.js';

/**
 * The compliance lines of `erp runs show <id>`: the SHA-256 of each definition the run used, and
 * its approval (who decided, when), under the run's usual detail.
 */
export async function formatRunCompliance(pool: pg.Pool, runId: number): Promise<string> {
  const row = await complianceOf(pool, runId);
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
