import type { App } from '../app.js';
import { HTTP_DEFAULTS } from '../config/env.js';
import { createQueue, redisConnection } from '../runner/queue.js';
import { startHttpServer } from './health.js';

/**
 * Starts the health and metrics server of a long-running process when ERP_HTTP_PORT is set, with
 * its own Redis connection (a monitor's: it fails fast during an outage and reconnects after it)
 * and a handle on the runs queue for the queue gauges. Returns how to stop it; a no-op when the
 * port is unset.
 */
export async function serveHealthIfConfigured(app: App, processName: string): Promise<() => Promise<void>> {
  const port = app.config.ERP_HTTP_PORT;
  if (port === undefined) return async () => undefined;
  const redis = redisConnection(app.config.REDIS_URL, 'service');
  const queue = createQueue(redis, app.config.ERP_QUEUE_PREFIX);
  try {
    const server = await startHttpServer(
      port,
      { pool: app.pool, redis, queue, home: app.home, log: app.log },
      { host: app.config.ERP_HTTP_HOST ?? HTTP_DEFAULTS.service.host, process: processName },
    );
    return async () => {
      await server.close();
      await queue.close().catch(() => undefined);
      redis.disconnect();
    };
  } catch (err) {
    await queue.close().catch(() => undefined);
    redis.disconnect();
    throw err;
  }
}
