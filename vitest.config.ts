import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    // Separate processes, because tests start and kill PostgreSQL servers and
    // child processes, which is safer outside worker threads.
    pool: 'forks',
    poolOptions: {
      forks: { minForks: 1, maxForks: 2 },
    },
    fileParallelism: true,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
