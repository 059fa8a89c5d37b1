/**
 * Group commit under SIGKILL: a writer keeps 8 writes in flight, so its transactions carry several entries,
 * and is killed in the middle of a group and at each step of the group's commit. Every invariant of the
 * crash suite must hold: acknowledged writes present exactly once, all-or-nothing per write, the counter,
 * a contiguous chained journal that replays to the database.
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants, workloadDatabase } from '../helpers/checker.js';
import { runWriter as runFixtureWriter } from '../helpers/processes.js';

const ROWS = 5;

/** The shared writer fixture (test/helpers/processes.ts) with this suite's rows per write. */
const runWriter = (path: string, writes: number, env: Record<string, string> = {}) => runFixtureWriter(path, writes, ROWS, env);
const freshDatabase = (): string => workloadDatabase('ct-group-crash-');

describe('group commit: crash consistency (SIGKILL mid-group)', () => {
  it('ok: the writes of a group commit together: killed right after its COMMIT, all 8 are there, none acknowledged', async () => {
    const path = freshDatabase();
    // The group's time bound (50 ms of bodies) would split the 8 on a loaded machine (seen: 4 and 6 of 8).
    const crashed = await runWriter(path, 16, { CHANGETRAIL_CRASH_AT: 'after-commit:1', CT_IN_FLIGHT: '8', CHANGETRAIL_GROUP_TIME_MS: '600000' });
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    expect(crashed.acked).toEqual([]);
    const state = await checkInvariants(path, [], ROWS);
    expect(state.headSeq).toBe(8);
  });

  it('ok: killed mid-group while segments rotate every few entries: no false DATABASE_BEHIND_JOURNAL afterwards', async () => {
    for (const point of ['after-rotate:2', 'after-rotate:3', 'after-changeset:6', 'after-commit:2']) {
      const path = freshDatabase();
      const crashed = await runWriter(path, 48, { CHANGETRAIL_CRASH_AT: point, CT_IN_FLIGHT: '8', CT_SEGMENT_BYTES: '600' });
      expect(crashed.signal, `${point}: ${crashed.stderr}`).toBe('SIGKILL');
      const before = await checkInvariants(path, crashed.acked, ROWS);
      const after = await runWriter(path, 8, { CT_IN_FLIGHT: '4', CT_SEGMENT_BYTES: '600' });
      expect(after.code, `${point}: ${after.stderr}`).toBe(0);
      expect((await checkInvariants(path, [...crashed.acked, ...after.acked], ROWS)).headSeq).toBe(before.headSeq + 8);
    }
  });

  for (const point of ['after-changeset:4', 'after-head-update:1', 'after-commit:2', 'after-publish:2']) {
    it(`ok: killed at ${point} with 8 writes in flight`, async () => {
      const path = freshDatabase();
      const crashed = await runWriter(path, 24, { CHANGETRAIL_CRASH_AT: point, CT_IN_FLIGHT: '8' });
      expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
      const before = await checkInvariants(path, crashed.acked, ROWS);
      // The next writer completes the journal; everything must still agree.
      const after = await runWriter(path, 4, { CT_IN_FLIGHT: '4' });
      expect(after.code, after.stderr).toBe(0);
      const final = await checkInvariants(path, [...crashed.acked, ...after.acked], ROWS);
      expect(final.headSeq).toBe(before.headSeq + 4);
    });
  }
});
