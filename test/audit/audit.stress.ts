/**
 * npm run stress: history, blame and diff over many seeded workloads (migrations, undo, resync, cascades),
 * each checked against the states the workload recorded, with the index and by scanning.
 * AUDIT_STRESS_SEEDS (default 12) workloads of AUDIT_STRESS_STEPS (default 80) transactions.
 */
import { describe, expect, it } from 'vitest';
import { blame } from '../../src/audit/blame.js';
import { diffPoints } from '../../src/audit/diff.js';
import { rowHistory } from '../../src/audit/history.js';
import { expectedBlame, expectedDiff, expectedHistories, got, renamesBetween } from './expected.js';
import { random, runWorkload } from './workload.js';

const SEEDS = Number(process.env.AUDIT_STRESS_SEEDS ?? 12);
const STEPS = Number(process.env.AUDIT_STRESS_STEPS ?? 80);

describe('audit over random workloads', () => {
  for (let seed = 1000; seed < 1000 + SEEDS; seed++) {
    it(`ok: seed ${seed}`, async () => {
      const w = await runWorkload(seed, STEPS);
      for (const { table, key, steps } of expectedHistories(w).values()) {
        for (const index of ['auto', 'off'] as const) {
          expect(rowHistory(w.path, { table, key: JSON.parse(key) }, { index }).map((s) => [s.seq, s.op]), `${table} ${key} ${index}`).toEqual(steps.map((s) => [s.seq, s.op]));
        }
      }
      const want = expectedBlame(w);
      for (const table of w.recorded.at(-1)!.state.keys()) {
        const lines = blame(w.path, table);
        expect(new Map(lines.map((l) => [`${table} ${JSON.stringify(l.key)}`, l.seq])), table).toEqual(new Map([...want].filter(([id]) => id.startsWith(`${table} `))));
      }
      const rand = random(seed);
      for (let i = 0; i < 8; i++) {
        const a = w.recorded[Math.floor(rand() * w.recorded.length)]!;
        const b = w.recorded[Math.floor(rand() * w.recorded.length)]!;
        expect(got(diffPoints(w.path, a.seq, b.seq)), `${a.seq}..${b.seq}`).toEqual(expectedDiff(a.state, b.state, renamesBetween(w, a.seq, b.seq)));
      }
    });
  }
});
