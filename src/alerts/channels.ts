/**
 * Delivery of one notice to one channel: a webhook (JSON POST; Slack's `{ text }` body on request)
 * or an e-mail over SMTP with nodemailer. URLs and credentials come from the environment variable
 * the channel names and never reach an error message or a log line.
 */
import { UserError, describeError } from '../errors.js';
import { redactUrls } from '../log.js';
import type { Channel } from './definition.js';

/** What goes out: an alert opening, repeating while open, resolving, or a test. */
export interface Notice {
  state: 'open' | 'repeat' | 'resolved' | 'test';
  rule: string;
  subject: string;
  message: string;
  openedAt: Date;
  resolvedAt?: Date | null;
}

/** One line: "[erp] OPEN run_failed payroll-close: …". */
export function noticeTitle(n: Notice): string {
  const state = n.state === 'repeat' ? 'STILL OPEN' : n.state.toUpperCase();
  return `[erp] ${state} ${n.rule} ${n.subject}`;
}

function secretOf(env: NodeJS.ProcessEnv, name: string, channel: string): string {
  const v = env[name]?.trim();
  if (!v) throw new UserError(`alerts.yaml, channels.${channel}: environment variable ${name} is not set`);
  return v;
}

const TIMEOUT_MS = 10_000;

/** Sends `notice` to `channel`; throws one line (without secrets) when it cannot. */
export async function sendNotice(
  name: string,
  channel: Channel,
  notice: Notice,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const title = noticeTitle(notice);
  if (channel.kind === 'webhook') {
    const url = secretOf(env, channel.url_env, name);
    const body =
      channel.format === 'slack'
        ? { text: `*${title}*\n${notice.message}` }
        : {
            source: 'erp',
            state: notice.state,
            rule: notice.rule,
            subject: notice.subject,
            title,
            message: notice.message,
            opened_at: notice.openedAt.toISOString(),
            resolved_at: notice.resolvedAt?.toISOString() ?? null,
          };
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (err) {
      // The URL may hold a token: name the channel, not the URL.
      throw new Error(`channel ${name}: webhook POST failed: ${redactUrls(describeError(err))}`);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`channel ${name}: webhook answered ${res.status}`);
    return;
  }
  const smtpUrl = secretOf(env, channel.smtp_url_env, name);
  const { createTransport } = await import('nodemailer');
  const transport = createTransport(smtpUrl, {
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
  });
  try {
    await transport.sendMail({
      from: channel.from,
      to: channel.to,
      subject: title,
      text: `${notice.message}\n\nopened ${notice.openedAt.toISOString()}${
        notice.resolvedAt ? `, resolved ${notice.resolvedAt.toISOString()}` : ''
      }\n`,
    });
  } catch (err) {
    throw new Error(`channel ${name}: e-mail not sent: ${redactUrls(describeError(err))}`);
  } finally {
    transport.close();
  }
}
