import { defineConfig } from 'vitest/config';

/**
 * The chaos suite (`npm run test:chaos`): scenarios that kill and restart servers, on servers of
 * its own (test/helpers/chaos/servers.ts). One file at a time: its scenarios share those servers.
 */
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
