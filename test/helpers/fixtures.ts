/**
 * The test fixtures (vitest's `test.extend`) for the three set-ups integration tests share:
 *
 * - `db`: a fresh database cloned from the migrated template the global set-up builds
 *   (test/helpers/global-setup.ts), dropped after the file.
 * - `queue`: a BullMQ queue prefix of the file's own on the shared Redis, a producer `Queue` and
 *   its connection; the prefix's keys are removed and the connection closed after the file.
 * - `home`: an empty temporary ERP_HOME (its ERP_DATA_DIR is `var/` inside it) that the test fills
 *   with definitions (`write`) or links to the repository's own (`link`), removed after the file.
 *
 * All three are file-scoped: set up on first use in a file (a test's or a `test.beforeAll`'s
 * context) and torn down once after the file's last test and `afterAll` hooks, so a file's tests
 * share one database, as they did when each file built its own in `beforeAll`:
 *
 * ```ts
 * import { test } from './helpers/fixtures.js';
 * let db: TestDatabase; // for helpers outside the tests
 * test.beforeAll(async ({ db: d, home }) => {
 *   db = d;
 *   await home.write({ 'jobs/tick.yaml': '…' });
 * });
 * test('ticks', async ({ db, home, queue }) => { … });
 *
 * vitest reads which fixtures a hook or test needs from its first parameter's destructuring
 * pattern, so that parameter must be destructured (`async (ctx) => …` is refused).
 * ```
 */
import path from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { expect, test as base } from 'vitest';
import type { RunJobData } from '../../src/runner/queue.js';
import { createTestDatabase } from './db.js';
import { createTestHome, type TestHome } from './home.js';
import { removeKeys, testPrefix, testQueue } from './runner.js';

export type { TestHome };

/** A queue prefix of the file's own, its producer-side queue and that queue's connection. */
export interface TestQueue {
  prefix: string;
  queue: Queue<RunJobData>;
  redis: Redis;
}

/** A queue of its own under a fresh prefix; `close` deletes the prefix's keys and closes it. */
export function openTestQueue(label: string): TestQueue & { close(): Promise<void> } {
  const prefix = testPrefix(label);
  const { queue, redis } = testQueue(prefix);
  return {
    prefix,
    queue,
    redis,
    async close() {
      await removeKeys(redis, prefix);
      await queue.close();
      redis.disconnect();
    },
  };
}

/** The test file's name without `.test.ts`, as a label for what the fixtures create. */
function fileLabel(): string {
  const file = expect.getState().testPath;
  return file ? path.basename(file).replace(/\.test\.ts$/, '') : 'test';
}

/* eslint-disable no-empty-pattern -- vitest reads a fixture's dependencies from its first parameter's
   destructuring pattern, and these three depend on nothing: `{}`. */
/** `test` with the `db`, `queue` and `home` fixtures. */
export const test = base
  .extend(
    'db',
    { scope: 'file' },

    async ({}, { onCleanup }) => {
      const db = await createTestDatabase(fileLabel());
      onCleanup(() => db.drop());
      return db;
    },
  )
  .extend('queue', { scope: 'file' }, async ({}, { onCleanup }): Promise<TestQueue> => {
    const { close, ...queue } = openTestQueue(fileLabel());
    onCleanup(close);
    return queue;
  })
  .extend('home', { scope: 'file' }, async ({}, { onCleanup }): Promise<TestHome> => {
    const { remove, ...home } = await createTestHome(fileLabel());
    onCleanup(remove);
    return home;
  });
/* eslint-enable no-empty-pattern */
