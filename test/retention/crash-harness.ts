/**
 * SIGKILL a real process at a step of a checkpoint or a prune, then check that the journal opens,
 * verifies (with a replay equal to the database), restores at the head and at the earliest retained
 * point, feeds a new replica, and takes the next checkpoint and prune. Shared by crash.test.ts (a sample)
 * and crash.stress.ts (every step, many hits).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { openReplica, openTrail, restoreTo } from '../../src/index.js';
import { databaseWith, dumpFile, dumpTables, tempDir } from '../helpers/db.js';
import { ackedLines, runScript } from '../helpers/processes.js';

const CHILD = new URL('./fixtures/retention-child.mjs', import.meta.url).pathname;

export interface ChildRun {
  acked: number[];
  signal: NodeJS.Signals | null;
  code: number | null;
  stderr: string;
}

export async function runChild(path: string, before: number, after: number, env: Record<string, string>, firstId: number, segmentBytes = 1 << 20): Promise<ChildRun> {
  const run = await runScript(CHILD, [path, String(before), String(after), String(segmentBytes)], { CT_FIRST_ID: String(firstId), ...env });
  return { acked: ackedLines(run.stdout).map(Number), signal: run.signal, code: run.code, stderr: run.stderr };
}

export function freshDatabase(): string {
  return databaseWith('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', 'ct-retention-crash-');
}

/** Everything a reader needs after a kill: open, verify --replay, restore, a new replica, more retention. */
export async function checkAfterKill(path: string, acked: number[]): Promise<void> {
  const trail = await openTrail(path, { segmentBytesTarget: 1 << 20 });
  try {
    const report = await trail.verify({ replay: true });
    // Every acknowledged write is there (the head may hold one more: killed after COMMIT, before the ack).
    expect(report.headSeq).toBeGreaterThanOrEqual(Math.max(0, ...acked));
    const dir = tempDir('ct-retention-check-');
    const state = dumpTables(trail.database);
    const atHead = await restoreTo(path, join(dir, 'head.db'), { at: report.headSeq });
    expect(dumpFile(atHead.path)).toEqual(state);
    const earliest = (report.retainedAfter ?? 0);
    await restoreTo(path, join(dir, 'earliest.db'), { at: earliest });
    const replica = await openReplica(join(dir, 'replica.db'), { source: path, followerName: null });
    try {
      await replica.sync();
      expect(dumpFile(join(dir, 'replica.db'))).toEqual(state);
    } finally {
      await replica.close();
    }
    // Retention goes on: a write, a checkpoint and a prune complete, and verify still passes.
    await trail.write((db) => db.prepare('INSERT INTO t (id, v) VALUES (?, ?)').run(1_000_000 + report.headSeq, 'after'));
    await trail.checkpoint();
    await trail.prune({ before: 'checkpoint' });
    const again = await trail.verify({ replay: true });
    expect(again.retainedAfter).toBeGreaterThan(0);
    expect(readdirSync(`${path}.changes`).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  } finally {
    await trail.close();
  }
}

/** One kill: a first child builds history (and a first pruned base), a second is killed at `point:hit`. */
export async function killAt(point: string, hit: number, before = 4, after = 3): Promise<void> {
  const path = freshDatabase();
  const first = await runChild(path, 6, 3, {}, 1);
  expect(first.code, first.stderr).toBe(0);
  const crashed = await runChild(path, before, after, { CHANGETRAIL_CRASH_AT: `${point}:${hit}` }, 100);
  expect(crashed.signal, `${point}:${hit} ${crashed.stderr}`).toBe('SIGKILL');
  await checkAfterKill(path, [...first.acked, ...crashed.acked]);
}

/**
 * The steps of the second child's run and the pass of each to kill at, for `before` writes before its
 * checkpoint and `after` writes after it: every retention crash point, the write path's points at the
 * checkpoint's binding write (write `before + 1`), and the prune's transaction.
 */
export function killPoints(before: number, after: number): [string, number][] {
  const bind = before + 1;
  return [
    ['checkpoint-after-copy', 1], ['checkpoint-after-prepare', 1], ['checkpoint-after-install', 1],
    ['after-rotate', 1], ['after-frame-write', bind], ['after-fsync', bind], ['after-head-update', bind], ['after-commit', bind], ['after-publish', bind],
    ['after-begin', bind + after + 1],
    ['prune-after-base', 1], ['prune-after-segment', 1], ['prune-after-snapshot', 1], ['prune-after-delete', 1],
  ];
}
