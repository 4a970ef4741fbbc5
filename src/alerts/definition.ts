import { access } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml.js';
import { UserError } from '../errors.js';
import { alertDurationSchema } from './expect.js';

/**
 * `alerts.yaml` in the project home: where the built-in alerts go and how often an open one is
 * repeated. Secrets (webhook URLs, SMTP credentials) never live in the file: each channel names the
 * environment variable that holds them.
 *
 * ```yaml
 * channels:
 *   ops-mail: { kind: email, smtp_url_env: ERP_SMTP_URL, from: erp@example.com, to: [ops@example.com] }
 *   ops-chat: { kind: webhook, url_env: ERP_SLACK_WEBHOOK, format: slack }
 * send_to: [ops-mail, ops-chat]
 * repeat: 4h
 * rules:
 *   no_worker: { after: 10m }
 *   ack_overdue: { send_to: [ops-mail] }
 * ```
 */

const ENV_NAME = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name such as ERP_SMTP_URL');
const CHANNEL_NAME = /^[a-z0-9][a-z0-9_-]*$/;

export const webhookChannelSchema = z
  .object({
    kind: z.literal('webhook'),
    /** The environment variable holding the URL the alert is POSTed to (it may carry a token). */
    url_env: ENV_NAME,
    /** `json`: the alert as a JSON object; `slack`: `{ "text": … }`, as Slack's incoming webhooks take. @defaultValue json */
    format: z.enum(['json', 'slack']).default('json'),
  })
  .strict();

export const emailChannelSchema = z
  .object({
    kind: z.literal('email'),
    /** The environment variable holding the SMTP URL, e.g. smtps://user:password@mail.example.com:465. */
    smtp_url_env: ENV_NAME,
    from: z.string().min(3),
    to: z.array(z.string().min(3)).min(1),
  })
  .strict();

export const channelSchema = z.discriminatedUnion('kind', [webhookChannelSchema, emailChannelSchema]);
export type Channel = z.output<typeof channelSchema>;

/** Per rule: off, other channels, another repeat interval. */
const ruleSchema = z
  .object({
    /** @defaultValue true */
    enabled: z.boolean().default(true),
    /** Channels of this rule instead of the top-level `send_to`. */
    send_to: z.array(z.string()).optional(),
    /** Repeat interval of this rule's open alerts instead of the top-level `repeat`. */
    repeat: alertDurationSchema.optional(),
  })
  .strict();

/** The built-in rules, by name. */
export const RULES = [
  'run_failed',
  'schedule_late',
  'file_missing',
  'file_small',
  'file_stale',
  'ack_overdue',
  'inbound_held',
  'no_worker',
] as const;
export type RuleName = (typeof RULES)[number];

export const alertsSchema = z
  .object({
    channels: z.record(
      z.string().regex(CHANNEL_NAME, 'a channel name: lower-case letters, digits, - and _'),
      channelSchema,
    ),
    /** Channels every alert goes to (unless its rule says otherwise). */
    send_to: z.array(z.string()).min(1),
    /** An open alert is sent again after this long; `0s` never repeats it. @defaultValue 4h */
    repeat: alertDurationSchema.default(4 * 3_600_000),
    rules: z
      .object({
        run_failed: ruleSchema.prefault({}),
        schedule_late: ruleSchema.prefault({}),
        file_missing: ruleSchema.prefault({}),
        file_small: ruleSchema.prefault({}),
        file_stale: ruleSchema.prefault({}),
        ack_overdue: ruleSchema.prefault({}),
        inbound_held: ruleSchema.prefault({}),
        /** Runs queued while no worker is connected, for longer than `after`. */
        no_worker: ruleSchema.extend({ after: alertDurationSchema.default(10 * 60_000) }).prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((a, ctx) => {
    const names = Object.keys(a.channels);
    const check = (list: string[] | undefined, at: (string | number)[]): void =>
      list?.forEach((c, i) => {
        if (!names.includes(c))
          ctx.addIssue({
            code: 'custom',
            path: [...at, i],
            message: `unknown channel '${c}'; channels are: ${names.join(', ') || '(none)'}`,
          });
      });
    check(a.send_to, ['send_to']);
    for (const r of RULES) check(a.rules[r].send_to, ['rules', r, 'send_to']);
  });

export type AlertsConfig = z.output<typeof alertsSchema>;

/** `alerts.yaml` under `home`, or null when there is none (alerts are off). */
export async function loadAlerts(home: string): Promise<AlertsConfig | null> {
  const file = path.join(home, 'alerts.yaml');
  try {
    await access(file);
  } catch {
    return null;
  }
  return loadYamlFile(file, alertsSchema, 'alerts.yaml');
}

/** `alerts.yaml`, required (for `erp alerts test`). */
export async function requireAlerts(home: string): Promise<AlertsConfig> {
  const config = await loadAlerts(home);
  if (!config) throw new UserError('no alerts.yaml in the project home: declare channels there first');
  return config;
}
