import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Crash and contention tests spawn real child processes; 2-core CI machines need headroom.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Child-process suites already saturate both cores; running files two at a time keeps them honest.
    maxWorkers: 2,
  },
});
