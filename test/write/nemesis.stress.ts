/** npm run stress: the nemesis with at least 300 kills (issue 8). Prints its counts. */
import { describe, expect, it } from 'vitest';
import { runNemesis } from './nemesis.js';

describe('nemesis (stress)', () => {
  it('ok: ≥ 300 SIGKILLs (and SIGSTOPs) of writers beside a healthy one: no false FOREIGN_WRITE_DETECTED, no acknowledged write lost or duplicated', async () => {
    const report = await runNemesis({ kills: Number(process.env.CT_NEMESIS_KILLS ?? 300), victims: 3 });
    console.log(`nemesis: ${JSON.stringify({ ...report, errors: report.errors.length })}`);
    expect(report.errors).toEqual([]);
    expect(report.falseForeignWrites).toBe(0);
    expect(report.readerProblems).toEqual([]);
    expect(report.readerObserved).toBeGreaterThan(0);
    expect(report.kills).toBeGreaterThanOrEqual(300);
  }, 1_800_000);
});
