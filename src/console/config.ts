import { UserError } from '../errors.js';
import { HTTP_DEFAULTS, type Config } from '../config/env.js';

/**
 * The console's settings: those of the one config schema (src/config.ts) it reads, with the
 * console's own defaults for the HTTP port and address.
 */
export interface ConsoleConfig extends Pick<
  Config,
  'ERP_CONSOLE_SESSION_MINUTES' | 'ERP_CONSOLE_TRUST_PROXY' | 'ERP_CONSOLE_TRUSTED_HEADER'
> {
  ERP_HTTP_PORT: number;
  ERP_HTTP_HOST: string;
}

/** The console's settings; the single-sign-on header without the proxy's addresses is refused. */
export function consoleConfigOf(config: Config): ConsoleConfig {
  if (config.ERP_CONSOLE_TRUSTED_HEADER && !config.ERP_CONSOLE_TRUST_PROXY)
    throw new UserError(
      'environment variable ERP_CONSOLE_TRUSTED_HEADER: needs ERP_CONSOLE_TRUST_PROXY, the addresses of the proxy that sets it (the header is believed from them alone)',
    );
  return {
    ERP_HTTP_PORT: config.ERP_HTTP_PORT ?? HTTP_DEFAULTS.console.port,
    ERP_HTTP_HOST: config.ERP_HTTP_HOST ?? HTTP_DEFAULTS.console.host,
    ERP_CONSOLE_SESSION_MINUTES: config.ERP_CONSOLE_SESSION_MINUTES,
    ERP_CONSOLE_TRUST_PROXY: config.ERP_CONSOLE_TRUST_PROXY,
    ERP_CONSOLE_TRUSTED_HEADER: config.ERP_CONSOLE_TRUSTED_HEADER,
  };
}
