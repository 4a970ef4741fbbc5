import type pg from 'pg';
import type { Logger } from 'pino';
import type { Partner } from '../partners/profile.js';
import type { SftpEndpoint } from '../sftp/endpoint.js';
import { connectSftp, endSftp, withRetry, type Sftp } from '../sftp/index.js';
import { allocateControlNumbers, type ControlNumbers } from './control-numbers.js';
import { MAX_CONTROL_NUMBER } from '../x12/writer.js';

/**
 * What inbound and outbound share: a connection to the partner's SFTP server, and control numbers
 * (allocated for real, or only looked at in a dry run).
 */

/** Connects to the partner (retrying transient network errors), runs `fn`, always disconnects. */
export async function withPartnerSftp<T>(
  partner: Partner,
  endpoint: SftpEndpoint,
  opts: { log: Logger; signal?: AbortSignal; env?: NodeJS.ProcessEnv },
  fn: (client: Sftp) => Promise<T>,
): Promise<T> {
  const client = await withRetry(
    () =>
      connectSftp(endpoint, {
        log: opts.log,
        partner: partner.name,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.env ? { env: opts.env } : {}),
      }),
    {
      attempts: endpoint.retry.attempts,
      baseDelayMs: endpoint.retry.base_delay_ms,
      ...(opts.signal ? { signal: opts.signal } : {}),
      log: opts.log,
      what: `connect to partner ${partner.name}`,
    },
  );
  try {
    return await fn(client);
  } finally {
    await endSftp(client);
  }
}

const next = (last: number, k: number): number => ((last + k - 1) % MAX_CONTROL_NUMBER) + 1;

/**
 * Hands out a partner's control numbers. For real runs every call allocates with
 * `allocateControlNumbers` on the pool (its own committed statement: a rollback later never hands
 * the numbers out again). In a dry run nothing is written: the numbers the next allocations would
 * return are computed from `edi.control_numbers`, consecutive calls continuing where the last stopped.
 */
export class ControlNumberSource {
  private peeked: { isa13: number; gs06: number; st02: number } | null = null;

  /** `start`: in a dry run, count from these numbers instead of the partner's (the test harness starts at 0). */
  constructor(
    private readonly pool: pg.Pool,
    private readonly partner: string,
    private readonly dryRun: boolean,
    start?: { isa13: number; gs06: number; st02: number },
  ) {
    if (start && dryRun) this.peeked = { ...start };
  }

  async next(counts: { groups: number; sets: number }): Promise<ControlNumbers> {
    if (!this.dryRun) return allocateControlNumbers(this.pool, this.partner, counts);
    if (this.peeked === null) {
      const { rows } = await this.pool.query<{ isa13: string; gs06: string; st02: string }>(
        'SELECT isa13, gs06, st02 FROM edi.control_numbers WHERE partner = $1',
        [this.partner],
      );
      const r = rows[0];
      this.peeked = { isa13: Number(r?.isa13 ?? 0), gs06: Number(r?.gs06 ?? 0), st02: Number(r?.st02 ?? 0) };
    }
    const p = this.peeked;
    const out: ControlNumbers = {
      isa13: next(p.isa13, 1),
      gs06: Array.from({ length: counts.groups }, (_, i) => next(p.gs06, i + 1)),
      st02: Array.from({ length: counts.sets }, (_, i) => next(p.st02, i + 1)),
    };
    this.peeked = {
      isa13: next(p.isa13, 1),
      gs06: next(p.gs06, counts.groups),
      st02: next(p.st02, counts.sets),
    };
    return out;
  }
}

/** The first `n` segments of an X12 text, one per line (for dry-run previews and logs). */
export function previewSegments(text: string, n: number): string[] {
  if (text.length < 106) return [text];
  const terminator = text[105]!;
  const out: string[] = [];
  let pos = 0;
  while (out.length < n && pos < text.length) {
    const end = text.indexOf(terminator, pos);
    if (end < 0) break;
    out.push(text.slice(pos, end + 1).replace(/^[\r\n]+/, ''));
    pos = end + 1;
  }
  return out;
}
