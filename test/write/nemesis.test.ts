/** A small sample of the nemesis in npm test; `npm run stress` runs hundreds of kills (nemesis.stress.ts). */
import { describe, expect, it } from 'vitest';
import { runNemesis } from './nemesis.js';

describe('nemesis (sample)', () => {
  it('ok: SIGKILL/SIGSTOP of writers beside a healthy one: no false FOREIGN_WRITE_DETECTED, no acknowledged write lost or duplicated', async () => {
    const report = await runNemesis({ kills: 12, victims: 2 });
    expect(report.errors).toEqual([]);
    expect(report.falseForeignWrites).toBe(0);
    expect(report.readerProblems).toEqual([]);
    expect(report.readerObserved).toBeGreaterThan(0);
    expect(report.kills).toBeGreaterThanOrEqual(12);
    expect(report.acked).toBeGreaterThan(0);
  });
});
