import type { App } from '../app.js';
import { consoleConfigOf } from '../console/config.js';
import { buildConsole } from '../console/server.js';
import { describeError } from '../errors.js';
import { EXIT } from './exit.js';

/**
 * `erp console`: the operators' web console on ERP_HTTP_PORT, until SIGTERM or SIGINT. Without
 * Redis the pages still show; starting runs and the queue page need it.
 */
export async function consoleCommand(app: App, stopping: Promise<string>): Promise<number> {
  const config = consoleConfigOf(app.config);
  const { connectRedis, createQueue, createQueueEvents, redisConnection } =
    await import('../runner/queue.js');
  // A service connection: commands fail fast while Redis is down, and it keeps reconnecting.
  const producer = redisConnection(app.config.REDIS_URL, 'service');
  const listener = redisConnection(app.config.REDIS_URL, 'worker');
  let queue = null;
  let events = null;
  try {
    await connectRedis(producer, app.config.REDIS_URL);
    queue = createQueue(producer, app.config.ERP_QUEUE_PREFIX);
    events = createQueueEvents(listener, app.config.ERP_QUEUE_PREFIX);
  } catch (err) {
    app.log.warn(
      `console: Redis unreachable (${describeError(err)}); runs cannot be started from the console`,
    );
  }
  const server = await buildConsole({
    pool: app.pool,
    log: app.log,
    home: app.home,
    dataDir: app.dataDir,
    config,
    queue,
    events,
    redis: queue ? producer : null,
  });
  const address = await server.listen({ port: config.ERP_HTTP_PORT, host: config.ERP_HTTP_HOST });
  process.stderr.write(`erp console listening on ${address}\n`);
  const signal = await stopping;
  app.log.info({ signal }, 'console stopping');
  await server.close();
  await events?.close().catch(() => undefined);
  await queue?.close().catch(() => undefined);
  producer.disconnect();
  listener.disconnect();
  return EXIT.ok;
}
