/**
 * One round of the built-in alerts: evaluate the rules at `now`, record in runner.alerts what
 * opened and what cleared, and send what is due.
 *
 *   condition seen, none open ──► INSERT (opened) ──► notice "open"
 *   condition still holds     ──► last_seen_at     ──► notice "repeat" once per `repeat` interval
 *   condition gone            ──► resolved_at      ──► notice "resolved" (if the opening one went out)
 *
 * A session advisory lock lets one process at a time do a round, so several schedulers send each
 * notice once. A notice that cannot be delivered is tried again next round.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import {
  alertsWithNoticeDue,
  markAlertNotified,
  markResolutionNotified,
  resolveClearedAlerts,
  upsertAlert,
} from '../runs/store/alerts.js';
import { sendNotice, type Notice } from './channels.js';
import { loadAlerts, RULES, type AlertsConfig, type RuleName } from './definition.js';
import { evaluateRules, type Condition, type RuleContext } from './rules.js';

export interface CheckContext extends RuleContext {
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

export interface CheckResult {
  /** False when another process was doing a round (nothing was done). */
  ran: boolean;
  opened: number;
  resolved: number;
  sent: number;
  failed: number;
}

/** Advisory lock key of "a process is doing an alerts round". */
const ROUND_LOCK = 0x41_4c_52_54;

export async function checkAlerts(
  ctx: CheckContext,
  config: AlertsConfig,
  now: Date = new Date(),
): Promise<CheckResult> {
  const result: CheckResult = { ran: false, opened: 0, resolved: 0, sent: 0, failed: 0 };
  const client = await ctx.pool.connect();
  try {
    const { rows: lock } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [
      ROUND_LOCK,
    ]);
    if (!lock[0]?.ok) return result;
    try {
      result.ran = true;
      const conditions = await evaluateRules(ctx, config, now);
      await record(client, conditions, config, now, result);
      await notify(client, ctx, config, now, result);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [ROUND_LOCK]);
    }
    return result;
  } finally {
    client.release();
  }
}

async function record(
  client: pg.PoolClient,
  conditions: Condition[],
  config: AlertsConfig,
  now: Date,
  result: CheckResult,
): Promise<void> {
  for (const c of conditions) {
    if (await upsertAlert(client, c, now)) result.opened++;
  }
  // An enabled rule's open alert whose condition is gone has cleared.
  const enabled = RULES.filter((r) => config.rules[r].enabled);
  result.resolved += await resolveClearedAlerts(client, now, enabled, conditions);
}

async function notify(
  client: pg.PoolClient,
  ctx: CheckContext,
  config: AlertsConfig,
  now: Date,
  result: CheckResult,
): Promise<void> {
  for (const a of await alertsWithNoticeDue(client, now)) {
    const rule = config.rules[a.rule as RuleName] ?? { send_to: undefined, repeat: undefined };
    if (a.due === 'repeat') {
      const every = rule.repeat ?? config.repeat;
      if (every === 0 || now.getTime() - a.notified_at!.getTime() < every) continue;
    }
    if (a.due === 'resolved' && a.notices === 0) {
      // Never announced (its delivery kept failing): nothing to take back.
      await markResolutionNotified(client, a.id, now);
      continue;
    }
    const notice: Notice = {
      state: a.due,
      rule: a.rule,
      subject: a.subject,
      message: a.message,
      openedAt: a.opened_at,
      resolvedAt: a.resolved_at,
    };
    let delivered = true;
    for (const name of rule.send_to ?? config.send_to) {
      try {
        await sendNotice(name, config.channels[name]!, notice, ctx.env);
        result.sent++;
      } catch (err) {
        delivered = false;
        result.failed++;
        ctx.log.warn(
          { rule: a.rule, subject: a.subject, channel: name },
          `alert not delivered: ${describeError(err)}`,
        );
      }
    }
    if (!delivered) continue;
    if (a.due === 'resolved') await markResolutionNotified(client, a.id, now);
    else await markAlertNotified(client, a.id, now);
  }
}

/** How often `erp scheduler` does a round. */
export const ALERT_ROUND_MS = 60_000;

/**
 * Runs a round every {@link ALERT_ROUND_MS} while alerts.yaml exists (read afresh each round, so an
 * edit needs no restart). Returns how to stop.
 */
export function startAlertRounds(ctx: CheckContext, everyMs = ALERT_ROUND_MS): () => Promise<void> {
  let current: Promise<unknown> = Promise.resolve();
  const round = async (): Promise<void> => {
    try {
      const config = await loadAlerts(ctx.home);
      if (config) await checkAlerts(ctx, config);
    } catch (err) {
      ctx.log.error({ err }, 'alerts round failed');
    }
  };
  const timer = setInterval(() => {
    current = current.then(round);
  }, everyMs);
  current = round();
  return async () => {
    clearInterval(timer);
    await current;
  };
}
