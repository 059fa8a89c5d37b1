/**
 * SIGKILL at every step of a checkpoint and a prune (and of their writes), CT_RETENTION_KILL_ROUNDS
 * rounds (default 8; 8 x 14 = 112 kills) with varying numbers of writes around them, each checked by
 * crash-harness.ts.
 */
import { describe, expect, it } from 'vitest';
import { killAt, killPoints } from './crash-harness.js';

const ROUNDS = Number(process.env.CT_RETENTION_KILL_ROUNDS ?? 8);

describe('retention crash safety (every step)', () => {
  it(`ok: every step, ${ROUNDS} rounds`, async () => {
    let kills = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const before = 2 + (round % 4);
      const after = 1 + (round % 3);
      for (const [point, hit] of killPoints(before, after)) {
        await killAt(point, hit, before, after);
        kills += 1;
      }
    }
    expect(kills).toBeGreaterThanOrEqual(ROUNDS * 14);
    console.log(`retention crash stress: ${kills} kills, each followed by verify --replay, restore, a new replica and another prune`);
  });
});
