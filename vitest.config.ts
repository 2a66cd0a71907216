import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Temporal's worker is native code: run test files in forked processes.
    pool: 'forks',
    include: ['test/**/*.test.ts', 'web/e2e/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
