import path from 'node:path';
import type { Queue } from 'bullmq';
import Fastify, { type FastifyInstance } from 'fastify';
import type { RedisClient } from '../runner/queue.js';
import type pg from 'pg';
import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { runnerRegistry } from '../metrics/counters.js';
import { stateRegistry } from '../metrics/state.js';
import { readMigrations } from '../db/migrate.js';

/**
 * /metrics, /healthz and /readyz for every long-running process: `erp worker` and `erp scheduler`
 * serve them through {@link startHttpServer} when ERP_HTTP_PORT is set; the console registers the
 * same routes on its own Fastify instance with {@link registerHealthRoutes}.
 *
 *   /healthz  the process is alive (answers without touching anything)
 *   /readyz   PostgreSQL and Redis answer and the database's migrations match sql/ — 503 otherwise
 *   /metrics  Prometheus text: this process's counters (src/metrics/counters.ts) and the shared state read
 *             at scrape time (src/metrics/state.ts)
 */
export interface HealthDeps {
  pool: pg.Pool;
  /** Pinged by /readyz; omit where the process has no Redis. */
  redis?: RedisClient;
  /** The runs queue, for the queue gauges. */
  queue?: Queue;
  /** Project root: its sql/ says which migration the database should be at. */
  home: string;
  log: Logger;
}

/** How long /readyz waits for each dependency before calling it down. */
const CHECK_TIMEOUT_MS = 2000;

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${CHECK_TIMEOUT_MS} ms`)),
      CHECK_TIMEOUT_MS,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Adds GET /metrics, /healthz and /readyz to `app`. */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthDeps): void {
  const state = stateRegistry(deps);
  // The newest migration in sql/ is read once: it changes only with a new release of the code.
  let expected: Promise<number> | null = null;
  const expectedMigration = (): Promise<number> =>
    (expected ??= readMigrations(path.join(deps.home, 'sql')).then((m) => m.at(-1)?.id ?? 0));

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const checks: Record<string, string> = {};
    const check = async (name: string, fn: () => Promise<string>): Promise<void> => {
      try {
        checks[name] = await withTimeout(fn(), name);
      } catch (err) {
        checks[name] = `down: ${describeError(err)}`;
      }
    };
    await Promise.all([
      check('postgres', async () => {
        await deps.pool.query('SELECT 1');
        return 'ok';
      }),
      ...(deps.redis
        ? [
            check('redis', async () => {
              await deps.redis!.ping();
              return 'ok';
            }),
          ]
        : []),
      check('migrations', async () => {
        const want = await expectedMigration();
        const { rows } = await deps.pool.query<{ id: number | null }>(
          `SELECT max(id) AS id FROM runner.migrations`,
        );
        const have = rows[0]?.id ?? 0;
        if (have < want) throw new Error(`database at migration ${have}, sql/ has ${want}: run erp migrate`);
        return `ok (${have})`;
      }),
    ]);
    const ready = Object.values(checks).every((v) => v.startsWith('ok'));
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });

  app.get('/metrics', async (_req, reply) => {
    const [own, shared] = await Promise.all([runnerRegistry.metrics(), state.metrics()]);
    return reply.type(runnerRegistry.contentType).send(own + '\n' + shared);
  });
}

/** A running health/metrics server. */
export interface HttpServer {
  app: FastifyInstance;
  /** The port it listens on (useful when started on port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Starts a Fastify server with {@link registerHealthRoutes} on `port` (all interfaces: Prometheus
 * and container health checks come from outside), and logs one line saying where.
 */
export async function startHttpServer(
  port: number,
  deps: HealthDeps,
  opts: { host?: string; process?: string } = {},
): Promise<HttpServer> {
  const app = Fastify({ logger: false });
  registerHealthRoutes(app, deps);
  const host = opts.host ?? '0.0.0.0';
  await app.listen({ port, host });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  deps.log.info(
    { port: bound, host },
    `${opts.process ?? 'process'} serves /metrics, /healthz and /readyz on http://${host}:${bound}`,
  );
  return { app, port: bound, close: () => app.close() };
}
