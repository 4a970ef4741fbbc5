/**
 * The console's Fastify server: auth and CSRF (auth.ts), the assets, the pages, bull-board.
 * `erp console` builds it with buildConsole and listens; the tests build it the same way.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Queue, QueueEvents } from 'bullmq';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { RedisClient } from '../runner/queue.js';
import { UserError } from '../errors.js';
import { registerHealthRoutes } from '../http/health.js';
import type { RunJobData } from '../runner/queue.js';
import { HttpError, registerAuth } from './auth.js';
import type { ConsoleConfig } from './config.js';
import type { ConsoleContext } from './context.js';
import { html } from './html.js';
import { loadAssets, page } from './layout.js';
import { registerApprovalsPage } from './pages/approvals.js';
import { registerOtherPages } from './pages/other.js';
import { registerRunPage } from './pages/run.js';
import { registerRunsPages } from './pages/runs.js';
import { mountQueueBoard } from './queue-board.js';
import type { ThrottlePolicy } from './sessions.js';

export interface ConsoleOptions {
  pool: pg.Pool;
  log: Logger;
  home: string;
  dataDir: string;
  config: ConsoleConfig;
  queue: Queue<RunJobData> | null;
  events: QueueEvents | null;
  /** The queue's Redis connection, pinged by /readyz. */
  redis?: RedisClient | null;
  /** Login throttling; tests pass a smaller window. */
  throttle?: ThrottlePolicy;
}

export async function buildConsole(opts: ConsoleOptions): Promise<FastifyInstance> {
  const trust = opts.config.ERP_CONSOLE_TRUST_PROXY;
  const app = Fastify({
    loggerInstance: opts.log.child({ component: 'console' }) as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: trust ? trust.split(',').map((s) => s.trim()) : false,
    bodyLimit: 64 * 1024,
  });
  await app.register(import('@fastify/cookie'));
  await app.register(import('@fastify/formbody'));
  const assets = loadAssets();
  const ctx: ConsoleContext = { ...opts, assets };

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const code =
      err instanceof HttpError ? err.statusCode : err instanceof UserError ? 409 : (err.statusCode ?? 500);
    if (code >= 500) req.log.error({ err }, 'console: request failed');
    const message =
      code >= 500 ? 'Something went wrong on the server; the log has the details.' : err.message;
    if (req.headers.accept?.includes('text/html') && req.session) {
      return reply
        .code(code)
        .type('text/html; charset=utf-8')
        .send(
          page(
            req,
            assets,
            code === 403 ? 'Forbidden' : code === 404 ? 'Not found' : 'Refused',
            html`<p class="error" id="refused">${message}</p>`,
          ),
        );
    }
    return reply.code(code).type('text/plain; charset=utf-8').send(`${message}\n`);
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).type('text/plain').send('not found\n'));

  registerAuth(app, { pool: opts.pool, config: opts.config, assets, throttle: opts.throttle });

  app.get('/assets/:name', (req, reply) => {
    const a = assets.get((req.params as { name: string }).name);
    if (!a) return reply.code(404).type('text/plain').send('not found\n');
    return reply.type(a.type).header('cache-control', 'public, max-age=31536000, immutable').send(a.body);
  });

  registerRunsPages(app, ctx);
  registerRunPage(app, ctx);
  registerOtherPages(app, ctx);
  registerApprovalsPage(app, ctx);
  if (opts.queue) await mountQueueBoard(app, opts.pool, opts.queue);

  // Metrics and health: the same routes `erp worker` and `erp scheduler` serve; auth.ts lets these
  // three paths through without a session (Prometheus and load balancers do not sign in).
  registerHealthRoutes(app, {
    pool: opts.pool,
    home: opts.home,
    log: opts.log,
    ...(opts.redis ? { redis: opts.redis } : {}),
    ...(opts.queue ? { queue: opts.queue } : {}),
  });

  return app;
}
