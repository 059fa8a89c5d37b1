/** `npm run stress`: the FTS5 exact-replay workload (fts-workload.ts) over many seeds and longer runs. */
import { afterEach, describe, it } from 'vitest';
import type { Trail } from '../../src/index.js';
import { checkSeed } from './fts-workload.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

const SEEDS = Number(process.env.CHANGETRAIL_STRESS_SEEDS ?? 40);

describe('exact replay over FTS5, many seeds', () => {
  for (let seed = 100; seed < 100 + SEEDS; seed++) {
    it(`ok: seed ${seed}`, async () => {
      await checkSeed(opened, seed, 300);
    }, 120_000);
  }
});
