/** The randomized retention workload (workload-harness.ts), one seed; workload.stress.ts runs more and longer. */
import { describe, expect, it } from 'vitest';
import { runRetentionWorkload } from './workload-harness.js';

describe('retention policy under a randomized workload', () => {
  it('ok: bounded disk, verify after every prune, followers never stranded, restores equal (seed 0x5eed16)', async () => {
    const report = await runRetentionWorkload(0x5eed16, 250);
    // The bound on the journal's size (set by the policy, not by the number of writes) is checked inside.
    expect(report.prunes).toBeGreaterThanOrEqual(3);
    expect(report.restoresChecked).toBeGreaterThan(0);
  });
});
