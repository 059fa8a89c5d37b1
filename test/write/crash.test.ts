/**
 * SIGKILL a real writer process at every named point of the write path, several hits each, then check
 * every invariant, write once more (which runs recovery), and check again.
 */
import { describe, expect, it } from 'vitest';
import { openTrail } from '../../src/index.js';
import { CRASH_POINTS, DIRECT_CRASH_POINTS } from '../../src/write/crashpoint.js';
import { checkInvariants, workloadDatabase } from '../helpers/checker.js';
import { runWriter as runFixtureWriter } from '../helpers/processes.js';

const ROWS = 5;

/** The shared writer fixture (test/helpers/processes.ts) with this suite's rows per write. */
const runWriter = (path: string, writes: number, env: Record<string, string> = {}) => runFixtureWriter(path, writes, ROWS, env);
const freshDatabase = (): string => workloadDatabase('ct-crash-');

describe('crash consistency (SIGKILL at every write-path point)', () => {
  // The outbox path (every frame up to OUTBOX_FRAME_BYTES_MAX) and the direct path (larger frames, forced
  // here by a threshold of 0). A pause between writes lets background fsyncs report back, and fsyncs
  // not spaced out (CHANGETRAIL_SEGMENT_SYNC_MS=0), so that after-sync and after-outbox-delete are reached.
  // One background fsync covers every frame appended while it ran: when fsyncs are slow (a loaded machine:
  // a clean-clone CI saw fewer than 3 in 8 writes 3 ms apart) the run ends before the 3rd, so the pause
  // grows until the point is reached.
  const points = [...CRASH_POINTS.map((point) => [point, { CHANGETRAIL_SEGMENT_SYNC_MS: '0' }, ['3', '30', '300']] as const),
    ...DIRECT_CRASH_POINTS.map((point) => [point, { CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX: '0' }, ['0']] as const)];
  /** A writer killed at `at` in a fresh database, the pause between writes growing until the point is reached. */
  const crashRun = async (pathEnv: Record<string, string>, gaps: readonly string[], at: string) => {
    for (const gap of gaps) {
      const path = freshDatabase();
      const crashed = await runWriter(path, 8, { ...pathEnv, CT_WRITE_GAP_MS: gap, CHANGETRAIL_CRASH_AT: at });
      if (crashed.signal !== null || crashed.code !== 0 || gap === gaps.at(-1)) return { path, crashed };
      // Ended cleanly before the point: what it did is checked all the same.
      await checkInvariants(path, crashed.acked, ROWS);
    }
    throw new Error('unreachable');
  };
  for (const [point, pathEnv, gaps] of points) {
    it(`ok: killed at ${point}`, async () => {
      for (const hit of [1, 3]) {
        const { path, crashed } = await crashRun(pathEnv, gaps, `${point}:${hit}`);
        expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
        const before = await checkInvariants(path, crashed.acked, ROWS);
        // The first write after the crash recovers the journal; everything must still agree.
        const after = await runWriter(path, 2);
        expect(after.code, after.stderr).toBe(0);
        const final = await checkInvariants(path, [...crashed.acked, ...after.acked], ROWS);
        expect(final.headSeq).toBe(before.headSeq + 2);
      }
    });
  }

  it('ok: a crash during journal start leaves a database that starts cleanly next time', async () => {
    for (const point of ['after-genesis', 'after-manifest']) {
      const path = freshDatabase();
      const crashed = await runWriter(path, 1, { CHANGETRAIL_CRASH_AT: `${point}:1` });
      expect(crashed.signal).toBe('SIGKILL');
      const after = await runWriter(path, 2);
      expect(after.code, after.stderr).toBe(0);
      await checkInvariants(path, after.acked, ROWS);
    }
  });

  it('ok: killed right after creating a new segment (rotation), and mid-frame in it', async () => {
    for (const [point, pathEnv] of [['after-rotate:2', {}], ['mid-append:5', {}], ['mid-frame:5', { CHANGETRAIL_OUTBOX_FRAME_BYTES_MAX: '0' }]] as const) {
      const path = freshDatabase();
      const crashed = await runWriter(path, 8, { ...pathEnv, CHANGETRAIL_CRASH_AT: point, CT_SEGMENT_BYTES: '512' });
      expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
      await checkInvariants(path, crashed.acked, ROWS);
      const after = await runWriter(path, 3, { CT_SEGMENT_BYTES: '512' });
      expect(after.code, after.stderr).toBe(0);
      await checkInvariants(path, [...crashed.acked, ...after.acked], ROWS);
    }
  });

  it('ok: many entries across many segments read back in order', async () => {
    const path = freshDatabase();
    const trail = await openTrail(path, { segmentBytesTarget: 4096 });
    for (let i = 0; i < 12; i++) await trail.write((db) => db.exec(`INSERT INTO rows VALUES ('seed-${i}', 0, '${'y'.repeat(900)}'); UPDATE counter SET n = n + 1`), { message: `seed-${i}` });
    await trail.close();
    expect((await checkInvariants(path, [], 1)).headSeq).toBe(12);
  });
});
