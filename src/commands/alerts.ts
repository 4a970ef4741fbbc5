import type { App } from '../app.js';
import { sendNotice } from '../alerts/channels.js';
import { requireAlerts } from '../alerts/definition.js';
import { checkAlerts } from '../alerts/engine.js';
import { listAlerts } from '../alerts/list.js';
import { UserError } from '../errors.js';
import { table } from './report.js';
import { EXIT } from './exit.js';

/**
 * `erp alerts`: open alerts and those resolved in the last 7 days.
 * `erp alerts test <channel>`: sends a test notice through one channel of alerts.yaml.
 * `erp alerts check`: one round of the rules now (what `erp scheduler` does every minute).
 */
export async function alertsCommand(
  app: App,
  action: string | undefined,
  arg: string | undefined,
): Promise<number> {
  if (action === undefined || action === 'list') {
    const rows = await listAlerts(app.pool, { resolvedWithinDays: 7 });
    const when = (d: Date | null): string => (d ? d.toISOString().slice(0, 16).replace('T', ' ') : '');
    process.stdout.write(
      (rows.length === 0
        ? 'no open or recent alerts'
        : table(
            ['ID', 'STATE', 'RULE', 'SUBJECT', 'OPENED (UTC)', 'RESOLVED', 'SENT', 'MESSAGE'],
            rows.map((r) => [
              r.id,
              r.resolved_at ? 'resolved' : 'open',
              r.rule,
              r.subject,
              when(r.opened_at),
              when(r.resolved_at),
              r.notices,
              r.message.split('\n')[0]!,
            ]),
          )) + '\n',
    );
    return EXIT.ok;
  }
  const config = await requireAlerts(app.home);
  if (action === 'test') {
    const names = Object.keys(config.channels);
    if (arg === undefined || !config.channels[arg])
      throw new UserError(`usage: erp alerts test <channel>; channels are: ${names.join(', ') || '(none)'}`);
    await sendNotice(arg, config.channels[arg], {
      state: 'test',
      rule: 'test',
      subject: arg,
      message: `A test notice from erp to channel ${arg}: if you read this, alerts reach you.`,
      openedAt: new Date(),
    });
    process.stdout.write(`test notice sent to ${arg}\n`);
    return EXIT.ok;
  }
  if (action === 'check') {
    const r = await checkAlerts({ pool: app.pool, home: app.home, log: app.log }, config);
    process.stdout.write(
      r.ran
        ? `opened ${r.opened}, resolved ${r.resolved}, notices sent ${r.sent}${r.failed ? `, failed ${r.failed}` : ''}\n`
        : 'another process is checking the alerts right now\n',
    );
    return r.failed > 0 ? EXIT.failed : EXIT.ok;
  }
  throw new UserError(
    `unknown action '${action}'; use: erp alerts, erp alerts test <channel>, erp alerts check`,
  );
}
