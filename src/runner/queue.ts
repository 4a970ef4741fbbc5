import { Queue, QueueEvents } from 'bullmq';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { UserError } from '../errors.js';
import { redactUrls } from '../log.js';
import { parseRedisUrl } from './redis-url.js';

/** A connection to one Redis server (direct or found through Sentinel) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** The one queue runs travel through. */
export const QUEUE_NAME = 'runs';

/**
 * What a queued BullMQ job carries: the run's id, and a copy of what runner.runs recorded for it
 * (the record in PostgreSQL is the run; jobs queued without the copy are read back from it).
 */
export interface RunJobData {
  runId: number;
  name: string;
  params?: Record<string, string>;
  force?: boolean;
  files?: string[];
  /** A failed run resumed (`erp run --resume`): its finished steps are recorded, so never a first delivery. */
  resume?: boolean;
}

/**
 * A Redis connection. Workers and QueueEvents block on Redis, so they need `maxRetriesPerRequest: null`
 * (BullMQ refuses otherwise); producers fail fast instead of queueing commands while Redis is down.
 * A service connection (a scheduler, a reconciler, the health and metrics server) fails each command
 * fast but reconnects for ever, so /readyz says "down" at once during an outage and "ok" again after it.
 */
export function redisConnection(url: string, role: 'worker' | 'producer' | 'service'): RedisClient {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : role === 'service'
        ? // A long-lived producer (a scheduler, a reconciler): commands fail fast while Redis is
          // down, and the connection keeps trying to come back.
          {
            maxRetriesPerRequest: 1,
            enableOfflineQueue: false,
            connectTimeout: 3000,
            retryStrategy: (times: number) => Math.min(200 * times, 2000),
          }
        : {
            maxRetriesPerRequest: 1,
            enableOfflineQueue: false,
            connectTimeout: 3000,
            retryStrategy: () => null,
          };
  const target = parseRedisUrl(url);
  let redis: RedisClient;
  if (target.kind === 'cluster') {
    const { retryStrategy, enableOfflineQueue, ...nodeOptions } = options;
    redis = new Cluster(target.nodes, {
      lazyConnect: true,
      enableReadyCheck: true,
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      clusterRetryStrategy: retryStrategy ?? ((times: number) => Math.min(200 * times, 2000)),
      redisOptions: { ...nodeOptions, username: target.username, password: target.password },
    });
  } else if (target.kind === 'sentinel') {
    redis = new Redis({
      ...options,
      lazyConnect: true,
      sentinels: target.sentinels,
      name: target.name,
      username: target.username,
      password: target.password,
      sentinelPassword: target.sentinelPassword,
      db: target.db,
    });
  } else {
    redis = new Redis(target.url, { ...options, lazyConnect: true });
  }
  // Connection errors surface through the calls that fail; keep them off stderr, but remember the
  // last one: it says why (ECONNREFUSED, auth) better than the failed call does.
  redis.on('error', (err: Error) => lastErrors.set(redis, err));
  return redis;
}

/**
 * BullMQ's key prefix on `redis`: on a cluster every key of a queue must hash to one slot, so the
 * prefix becomes a hash tag (`{erp}`), as BullMQ asks for Redis Cluster.
 */
export function queuePrefix(redis: RedisClient, prefix: string): string {
  return redis instanceof Cluster && !prefix.startsWith('{') ? `{${prefix}}` : prefix;
}

const lastErrors = new WeakMap<RedisClient, Error>();

/** Resolves once `redis` is ready; rejects when the connection attempt ends without it. */
function untilReady(redis: RedisClient): Promise<void> {
  // A Queue or Worker given the connection may already have started connecting it.
  if (redis.status === 'wait') return redis.connect();
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      redis.off('ready', onReady);
      redis.off('end', onEnd);
      if (err) reject(err);
      else resolve();
    };
    const onReady = (): void => done();
    const onEnd = (): void => done(lastErrors.get(redis) ?? new Error('connection closed'));
    redis.on('ready', onReady);
    redis.on('end', onEnd);
    if (redis.status === 'end') onEnd();
  });
}

/** Connects, or throws one clear line naming the Redis URL (without its password). */
export async function connectRedis(redis: RedisClient, url: string): Promise<void> {
  try {
    await untilReady(redis);
    await redis.ping();
  } catch (err) {
    const cause = lastErrors.get(redis) ?? (err as Error);
    throw new UserError(
      `cannot reach Redis at ${redactUrls(url)} (${redactUrls(cause.message)}); start it or set REDIS_URL (or use --inline to run without Redis)`,
      1,
    );
  }
}

/**
 * Warns loudly unless Redis evicts nothing: an evicted lock or job key silently loses jobs
 * (bullmq #1046, #2215). Returns the policy found.
 */
export async function checkEvictionPolicy(redis: RedisClient, log: Logger): Promise<string> {
  try {
    const res = (await redis.config('GET', 'maxmemory-policy')) as string[];
    const policy = res[1] ?? 'unknown';
    if (policy !== 'noeviction') {
      log.warn(
        { policy },
        `Redis maxmemory-policy is '${policy}', not 'noeviction': under memory pressure Redis may evict job keys and lose runs. Set maxmemory-policy noeviction.`,
      );
    }
    return policy;
  } catch {
    // CONFIG may be disabled on managed Redis; nothing to check then.
    return 'unknown';
  }
}

export function createQueue(redis: RedisClient, prefix: string): Queue<RunJobData> {
  const queue = new Queue<RunJobData>(QUEUE_NAME, { connection: redis, prefix: queuePrefix(redis, prefix) });
  // Without a listener BullMQ prints connection errors with their stacks (console.error); they
  // surface through the calls that fail, as one line.
  queue.on('error', () => undefined);
  return queue;
}

/**
 * Listens to the queue's events from `lastEventId` on (by default, from the moment its first read
 * reaches Redis, which can be after a run's first events: see {@link lastEventIdOf}).
 */
export function createQueueEvents(redis: RedisClient, prefix: string, lastEventId?: string): QueueEvents {
  const events = new QueueEvents(QUEUE_NAME, {
    connection: redis,
    prefix: queuePrefix(redis, prefix),
    lastEventId,
  });
  events.on('error', () => undefined);
  return events;
}

/** The id of the queue's latest event, to follow a run from before it is enqueued. */
export async function lastEventIdOf(redis: RedisClient, queue: Queue<RunJobData>): Promise<string> {
  const last = await redis.xrevrange(queue.keys.events!, '+', '-', 'COUNT', 1);
  return last[0]?.[0] ?? '0-0';
}

export { jobIdOf } from '../jobs/job-id.js';
