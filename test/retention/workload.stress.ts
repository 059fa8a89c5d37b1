/** The randomized retention workload over CT_RETENTION_SEEDS seeds (default 4) of CT_RETENTION_WRITES writes (default 2000). */
import { describe, expect, it } from 'vitest';
import { runRetentionWorkload } from './workload-harness.js';

const SEEDS = Number(process.env.CT_RETENTION_SEEDS ?? 4);
const WRITES = Number(process.env.CT_RETENTION_WRITES ?? 2000);

describe('retention policy under long randomized workloads', () => {
  for (let s = 0; s < SEEDS; s++) {
    const seed = 0x16000 + s;
    it(`ok: seed ${seed.toString(16)}, ${WRITES} writes`, async () => {
      const report = await runRetentionWorkload(seed, WRITES);
      expect(report.prunes).toBeGreaterThan(WRITES / 100);
      console.log(`retention workload seed ${seed.toString(16)}: ${JSON.stringify(report)}`);
    });
  }
});
