import { z } from 'zod';
import { UserError } from '../errors.js';

/**
 * Settings of `erp console`, read from the environment; each declared once with its default.
 * A wrong value is one line naming the variable.
 */
export const consoleConfigSchema = z.object({
  /** TCP port of the console (and, once they exist, the metrics and health endpoints). */
  ERP_HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  /** Address to listen on; loopback unless a reverse proxy on another host fronts the console. */
  ERP_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  /** How long a console session lasts after login, in minutes. */
  ERP_CONSOLE_SESSION_MINUTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(480),
  /**
   * Trust `X-Forwarded-For` / `X-Forwarded-Proto` from the reverse proxy at these addresses
   * (comma-separated, as Fastify's `trustProxy`); off by default, so a client cannot spoof its address.
   */
  ERP_CONSOLE_TRUST_PROXY: z.string().optional(),
  /**
   * Single sign-on: the name of a header the reverse proxy sets to the signed-in user's name
   * (`X-Remote-User`). Off unless set; the user must exist in `erp users` (the role comes from there).
   * Only set it when the console is reachable through that proxy alone.
   */
  ERP_CONSOLE_TRUSTED_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'a header name')
    .optional(),
});

/** The console's settings. */
export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;

export function loadConsoleConfig(env: NodeJS.ProcessEnv = process.env): ConsoleConfig {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(consoleConfigSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const parsed = consoleConfigSchema.safeParse(picked);
  if (!parsed.success) {
    throw new UserError(
      parsed.error.issues.map((i) => `environment variable ${String(i.path[0])}: ${i.message}`).join('\n'),
    );
  }
  return parsed.data;
}
