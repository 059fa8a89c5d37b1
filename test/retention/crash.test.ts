/** SIGKILL during checkpoint and prune: a sample of crash.stress.ts (every step, many hits). */
import { describe, it } from 'vitest';
import { killAt } from './crash-harness.js';

const SAMPLE: [string, number][] = [
  ['checkpoint-after-install', 1], ['after-head-update', 5], ['prune-after-base', 1], ['prune-after-snapshot', 1], ['prune-after-delete', 1],
];

describe('retention crash safety (sample)', () => {
  for (const [point, hit] of SAMPLE) {
    it(`ok: killed at ${point}:${hit}, the journal opens, verifies, restores, feeds a replica, and retention goes on`, async () => {
      await killAt(point, hit);
    });
  }
});
