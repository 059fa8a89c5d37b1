import { defineConfig } from 'vitest/config';

// npm run stress: the long loops (hundreds of kills) behind the samples that npm test runs. Every
// test/**/*.stress.ts file; each sets the sizes it needs (environment variables read by the test files).
export default defineConfig({
  test: {
    include: ['test/**/*.stress.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
