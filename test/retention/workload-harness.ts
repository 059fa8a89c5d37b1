/**
 * A long randomized workload under a checkpoint-and-prune policy (issue 16 "how it must be shown"):
 * random inserts, updates, deletes and the odd migration; the policy runs in the background of the
 * writes and also explicitly every few writes. Checked throughout: the journal's size stays bounded,
 * verify passes after every prune, two local followers run the whole time and are never stranded; at the
 * end, restore at random retained points equals the states the test kept, and a follower stopped past the
 * hold limit rebases on the newest checkpoint and ends equal.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ChangetrailError, openReplica, restoreTo, type Replica, type Trail } from '../../src/index.js';
import { writeRetentionPolicy } from '../../src/write/retention-policy.js';
import { dumpFile, dumpTables, tempDir, tempTrail } from '../helpers/db.js';

/** A small deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function journalBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const stat = statSync(join(dir, name), { throwIfNoEntry: false });
    if (stat?.isFile()) total += stat.size;
  }
  return total;
}

function checkpointSizes(dir: string): number[] {
  return readdirSync(dir).filter((name) => /^checkpoint-\d+\.db$/.test(name)).map((name) => statSync(join(dir, name), { throwIfNoEntry: false })?.size ?? 0);
}

export interface WorkloadReport {
  writes: number;
  prunes: number;
  maxJournalBytes: number;
  writtenBytes: number;
  restoresChecked: number;
}

export async function runRetentionWorkload(seed: number, writes: number): Promise<WorkloadReport> {
  const next = random(seed);
  const { trail, path, dir } = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER)', { segmentBytesTarget: 8 * 1024 });
  const journalDir = `${path}.changes`;
  const keepEntries = 40;
  const checkpointEvery = 30;
  // The stopped follower is held for a third of the run, then left behind.
  const holdEntriesMax = Math.min(200, Math.floor(writes / 3));
  writeRetentionPolicy(journalDir, { keepEntries, checkpointEveryEntries: checkpointEvery, followers: { entriesMax: holdEntriesMax } });
  const followers: Replica[] = [];
  const stopped = join(dir, 'stopped.db');
  try {
    // Stopped early: registered at a low position, it is held for up to the hold limit, then left behind.
    const early = await openReplica(stopped, { source: path, pollIntervalMs: 20, followerName: 'stopped' });
    await early.sync();
    await early.close();
    const stranded: unknown[] = [];
    for (const name of ['f1', 'f2']) {
      const replica = await openReplica(join(dir, `${name}.db`), { source: path, pollIntervalMs: 20, followerName: name });
      replica.on('stranded', (error) => stranded.push(error));
      void replica.follow().catch(() => undefined);
      followers.push(replica);
    }
    const states = new Map<number, Record<string, unknown[]>>();
    let maxJournalBytes = 0;
    let maxSnapshotBytes = 0;
    let writtenBytes = 0;
    let prunes = 0;
    let lastBase = 0;
    for (let i = 0; i < writes; i++) {
      const entry = await randomWrite(trail, next, i);
      if (entry !== null) {
        writtenBytes += entry.bytes;
        if (next() < 0.25) states.set(entry.seq, dumpTables(trail.database));
      }
      if (i % 10 === 9) await trail.applyRetention();
      const base = trail.retentionState().base?.seq ?? 0;
      if (base > lastBase) {
        prunes += 1;
        lastBase = base;
        const report = await trail.verify();
        expect(report.retainedAfter).toBe(base);
      }
      maxJournalBytes = Math.max(maxJournalBytes, journalBytes(journalDir));
      maxSnapshotBytes = Math.max(maxSnapshotBytes, ...checkpointSizes(journalDir));
    }
    expect(prunes).toBeGreaterThan(0);
    // Bounded by the policy, not by the number of writes: the retained entries (the keep limit, or what the
    // followers' hold limit lets them hold back, plus up to two checkpoint intervals; at most ~600 bytes a
    // frame here), the checkpoint snapshots among them, two partial segments.
    const retainedEntries = Math.max(keepEntries, holdEntriesMax) + 2 * checkpointEvery + 10;
    const bound = retainedEntries * 600 + (Math.ceil(retainedEntries / checkpointEvery) + 2) * maxSnapshotBytes + 2 * 8 * 1024;
    expect(maxJournalBytes, `journal grew to ${maxJournalBytes} bytes (bound ${bound})`).toBeLessThanOrEqual(bound);
    // Followers ran throughout and were never stranded; they catch up to equal.
    const head = (await trail.status()).head;
    for (const replica of followers) {
      await replica.waitFor(head.seq, { timeoutMs: 30_000 });
      expect(dumpFile(replica.path)).toEqual(dumpTables(trail.database));
    }
    expect(stranded).toEqual([]);
    const restoresChecked = await checkRestores(path, trail, states, lastBase, next);
    await checkStranded(path, stopped, trail);
    return { writes, prunes, maxJournalBytes, writtenBytes, restoresChecked };
  } finally {
    for (const replica of followers) await replica.close();
    await trail.close();
  }
}

async function randomWrite(trail: Trail, next: () => number, i: number): Promise<{ seq: number; bytes: number } | null> {
  const roll = next();
  if (roll < 0.02) {
    const entry = await trail.migrate(`CREATE INDEX IF NOT EXISTS t_n_${i % 3} ON t(n)`);
    return entry === null ? null : { seq: entry.seq, bytes: 200 };
  }
  const id = 1 + Math.floor(next() * 60);
  const payload = 'x'.repeat(20 + Math.floor(next() * 200));
  const entry = await trail.write((db) => {
    if (roll < 0.55) db.prepare('INSERT OR REPLACE INTO t VALUES (?, ?, ?)').run(id, payload, i);
    else if (roll < 0.85) db.prepare('UPDATE t SET v = ?, n = ? WHERE id = ?').run(payload, i, id);
    else db.prepare('DELETE FROM t WHERE id = ?').run(id);
  });
  return entry === null ? null : { seq: entry.seq, bytes: payload.length + 64 };
}

/** restore --at random retained points equals the states kept; an earlier point is HISTORY_PRUNED. */
async function checkRestores(path: string, trail: Trail, states: Map<number, Record<string, unknown[]>>, base: number, next: () => number): Promise<number> {
  const out = tempDir('ct-retention-restore-');
  const retained = [...states.keys()].filter((seq) => seq >= base);
  let checked = 0;
  for (let k = 0; k < Math.min(8, retained.length); k++) {
    const seq = retained[Math.floor(next() * retained.length)]!;
    const result = await restoreTo(path, join(out, `at-${seq}-${k}.db`), { at: seq });
    expect(dumpFile(result.path), `restore --at ${seq}`).toEqual(states.get(seq));
    checked += 1;
  }
  const pruned = [...states.keys()].find((seq) => seq < base);
  if (pruned !== undefined) {
    const error = await restoreTo(path, join(out, 'pruned.db'), { at: pruned }).then(() => null, (e: unknown) => e);
    expect(ChangetrailError.is(error, 'HISTORY_PRUNED') && error.details.earliestSeq).toBe(base + 1);
  }
  void trail;
  return checked;
}

/** The follower stopped early was left behind past its hold limit: it rebases and ends equal. */
async function checkStranded(path: string, stopped: string, trail: Trail): Promise<void> {
  const replica = await openReplica(stopped, { source: path, pollIntervalMs: 20, followerName: 'stopped' });
  try {
    const told: ChangetrailError[] = [];
    replica.on('stranded', (error) => told.push(error));
    await replica.sync();
    expect(told.map((error) => error.code)).toEqual(['HISTORY_PRUNED']);
    expect(dumpFile(stopped)).toEqual(dumpTables(trail.database));
  } finally {
    await replica.close();
  }
}
