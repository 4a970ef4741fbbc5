import { Queue, QueueEvents } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { UserError } from './errors.js';
import { redactUrls } from './log.js';

/** The one queue runs travel through. */
export const QUEUE_NAME = 'runs';

/** What a queued BullMQ job carries: the run's id; the run itself lives in PostgreSQL. */
export interface RunJobData {
  runId: number;
  name: string;
}

/**
 * A Redis connection. Workers and QueueEvents block on Redis, so they need `maxRetriesPerRequest: null`
 * (BullMQ refuses otherwise); producers fail fast instead of queueing commands while Redis is down.
 */
export function redisConnection(url: string, role: 'worker' | 'producer'): Redis {
  const options: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : {
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          connectTimeout: 3000,
          retryStrategy: () => null,
        };
  const redis = new Redis(url, { ...options, lazyConnect: true });
  // Connection errors surface through the calls that fail; keep them off stderr.
  redis.on('error', () => undefined);
  return redis;
}

/** Connects, or throws one clear line naming the Redis URL (without its password). */
export async function connectRedis(redis: Redis, url: string): Promise<void> {
  try {
    if (redis.status === 'wait') await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new UserError(
      `cannot reach Redis at ${redactUrls(url)} (${(err as Error).message}); start it or set REDIS_URL (or use --inline to run without Redis)`,
      1,
    );
  }
}

/**
 * Warns loudly unless Redis evicts nothing: an evicted lock or job key silently loses jobs
 * (bullmq #1046, #2215). Returns the policy found.
 */
export async function checkEvictionPolicy(redis: Redis, log: Logger): Promise<string> {
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

export function createQueue(redis: Redis, prefix: string): Queue<RunJobData> {
  return new Queue<RunJobData>(QUEUE_NAME, { connection: redis, prefix });
}

export function createQueueEvents(redis: Redis, prefix: string): QueueEvents {
  return new QueueEvents(QUEUE_NAME, { connection: redis, prefix });
}

/** The BullMQ job id of a run: one job per run, whatever enqueues it. */
export function jobIdOf(runId: number): string {
  return `run-${runId}`;
}
