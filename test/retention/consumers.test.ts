/** Pruned journals as restore, replicas, log/export and the CLI see them (issue 16). */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, listFollowers, openReplica, restoreTo, exportChanges, type Replica, type Trail } from '../../src/index.js';
import { dumpFile, dumpTables, tempDir, tempTrail } from '../helpers/db.js';
import { cli } from '../cli/run-cli.js';

const opened: (Trail | Replica)[] = [];
afterEach(async () => {
  for (const item of opened.splice(0)) await item.close();
});

async function setup() {
  const result = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { segmentBytesTarget: 2048 });
  opened.push(result.trail);
  return result;
}

async function insert(trail: Trail, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await trail.write((db) => db.prepare('INSERT INTO t VALUES (?, ?)').run(i, `v${i}`.repeat(10)));
}

async function errorOf(promise: Promise<unknown>): Promise<ChangetrailError> {
  return promise.then(() => { throw new Error('expected a failure'); }, (e: ChangetrailError) => e);
}

describe('restore after prune', () => {
  it('ok: every retained point restores equal to what the database held; earlier ones are HISTORY_PRUNED naming the earliest', async () => {
    const { trail, path } = await setup();
    const states = new Map<number, unknown>();
    for (let i = 1; i <= 30; i++) {
      const entry = await trail.write((db) => db.prepare('INSERT INTO t VALUES (?, ?)').run(i, `v${i}`));
      states.set(entry!.seq, dumpTables(trail.database));
    }
    const cp = await trail.checkpoint();
    states.set(cp!.entry.seq, dumpTables(trail.database));
    for (let i = 31; i <= 40; i++) {
      const entry = await trail.write((db) => db.prepare('UPDATE t SET v = ? WHERE id = ?').run(`w${i}`, i - 30));
      states.set(entry!.seq, dumpTables(trail.database));
    }
    await trail.prune({ before: 'checkpoint' });
    const out = tempDir('ct-restore-');
    for (const seq of [30, 31, 35, 41]) {
      const result = await restoreTo(path, join(out, `at-${seq}.db`), { at: seq });
      expect(dumpFile(result.path), `seq ${seq}`).toEqual(states.get(seq));
    }
    const error = await errorOf(restoreTo(path, join(out, 'at-29.db'), { at: 29 }));
    expect(error.code).toBe('HISTORY_PRUNED');
    expect(error.details).toMatchObject({ earliestSeq: 31, baseSeq: 30 });
    expect((await errorOf(restoreTo(path, join(out, 'at-0.db'), { at: 0 }))).code).toBe('HISTORY_PRUNED');
    // Export since a pruned point says where history begins instead of starting later silently.
    expect((await errorOf(Promise.resolve().then(async () => { for await (const _ of exportChanges(path, { since: 0, format: 'ndjson' })) void _; }))).code).toBe('HISTORY_PRUNED');
  });
});

describe('replicas and pruning', () => {
  it('ok: a new replica bootstraps from the base checkpoint; a registered one holds pruning back', async () => {
    const { trail, path, dir } = await setup();
    await insert(trail, 1, 20);
    const held = await openReplica(join(dir, 'held.db'), { source: path, pollIntervalMs: 50, followerName: 'held' });
    opened.push(held);
    await held.sync();
    await held.close();
    await insert(trail, 21, 20);
    await trail.checkpoint();
    const result = await trail.prune({ before: 'checkpoint' });
    expect(result.base).toBeNull();
    expect(result.heldBy.map((h) => h.kind)).toEqual(['follower']);
    const again = await openReplica(join(dir, 'held.db'), { source: path, pollIntervalMs: 50, followerName: 'held' });
    opened.push(again);
    await again.sync();
    expect(dumpFile(join(dir, 'held.db'))).toEqual(dumpTables(trail.database));
    await again.close(); // reports its position: it no longer needs anything before the checkpoint
    const pruned = await trail.prune({ before: 'checkpoint' });
    expect(pruned.base?.seq).toBe(40);
    const fresh = await openReplica(join(dir, 'fresh.db'), { source: path, pollIntervalMs: 50, followerName: null });
    opened.push(fresh);
    await insert(trail, 41, 3);
    await fresh.sync();
    expect(dumpFile(join(dir, 'fresh.db'))).toEqual(dumpTables(trail.database));
  });

  it('ok: a follower past the hold limit is stranded, told HISTORY_PRUNED, rebases on the checkpoint and ends equal', async () => {
    const { trail, path, dir } = await setup();
    await insert(trail, 1, 10);
    const replicaPath = join(dir, 'slow.db');
    const slow = await openReplica(replicaPath, { source: path, pollIntervalMs: 50, followerName: 'slow' });
    await slow.sync();
    await slow.close();
    await insert(trail, 11, 30);
    await trail.checkpoint();
    const result = await trail.prune({ before: 'checkpoint', followers: { entriesMax: 5 } });
    expect(result.base?.seq).toBe(40);
    const back = await openReplica(replicaPath, { source: path, pollIntervalMs: 50, followerName: 'slow' });
    opened.push(back);
    const stranded: ChangetrailError<'HISTORY_PRUNED'>[] = [];
    back.on('stranded', (e) => stranded.push(e));
    await insert(trail, 41, 2);
    await back.sync();
    expect(dumpFile(replicaPath)).toEqual(dumpTables(trail.database));
    expect(stranded.map((e) => [e.code, e.details.earliestSeq])).toEqual([['HISTORY_PRUNED', 41]]);
  });
});

describe('CLI checkpoint/prune', () => {
  it('ok: checkpoint, prune --before checkpoint, verify, log and restore through the installed bin', async () => {
    const { trail, path } = await setup();
    await insert(trail, 1, 25);
    await trail.close();
    opened.splice(0);
    const cp = cli(['checkpoint', path, '--json']);
    expect(cp.code, cp.stderr).toBe(0);
    expect(JSON.parse(cp.stdout)).toMatchObject({ seq: 26, kind: 'checkpoint', at: { seq: 25 } });
    const pr = cli(['prune', path, '--before', 'checkpoint', '--json']);
    expect(pr.code, pr.stderr).toBe(0);
    expect(JSON.parse(pr.stdout)).toMatchObject({ earliestSeq: 26, base: { seq: 25, checkpointSeq: 26 } });
    const verify = cli(['verify', path, '--replay', '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ retainedAfter: 25, replayed: true });
    const log = cli(['log', path, '--json']);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout.trim().split('\n').map((line) => JSON.parse(line).seq)).toEqual([26]);
    expect(cli(['log', path, '--oneline']).stdout).toMatch(/history before entry 26 was pruned/);
    expect(cli(['history', path, 't', '3']).stdout).toMatch(/history before entry 26 was pruned/);
    const early = cli(['log', path, '--from', '2']);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(/HISTORY_PRUNED/);
    const out = join(tempDir('ct-cli-restore-'), 'r.db');
    // Rows unchanged since the base are blamed on it, not on genesis (what came before was pruned).
    const blame = cli(['blame', path, 't', '--json']);
    expect(blame.code, blame.stderr).toBe(0);
    expect(blame.stdout.trim().split('\n').map((line) => JSON.parse(line)).map((line) => [line.seq, line.kind])[0]).toEqual([25, 'base']);
    const restoreEarly = cli(['restore', path, '--at', '3', '-o', out, '--json']);
    expect(restoreEarly.code).toBe(1);
    expect(JSON.parse(restoreEarly.stderr).error).toMatchObject({ code: 'HISTORY_PRUNED', details: { earliestSeq: 26 } });
    // replicate --register: the replica's position is held for in the source journal.
    const replicaPath = join(tempDir('ct-cli-replica-'), 'r.db');
    const replicate = cli(['replicate', path, replicaPath, '--register', 'r1', '--json']);
    expect(replicate.code, replicate.stderr).toBe(0);
    const journalId = JSON.parse(cli(['status', path, '--json']).stdout).journalId;
    expect(listFollowers(`${path}.changes`, journalId).map((f) => [f.name, f.seq])).toEqual([['r1', 26]]);
    const none = cli(['prune', path, '--json']);
    expect(none.code).toBe(2);
  });

  it('err: prune --before a seq past the head (a typo for an earlier one) is ENTRY_NOT_FOUND and removes nothing', async () => {
    const { trail, path } = await setup();
    await insert(trail, 1, 10);
    await trail.checkpoint();
    await trail.close();
    opened.splice(0);
    const files = readdirSync(`${path}.changes`).sort();
    const refused = cli(['prune', path, '--before', '5000', '--json']);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stderr).error).toMatchObject({ code: 'ENTRY_NOT_FOUND', details: { seq: 5000, headSeq: 11 } });
    expect(readdirSync(`${path}.changes`).sort()).toEqual(files);
    const atHead = cli(['prune', path, '--before', '11', '--dry-run', '--json']);
    expect(atHead.code, atHead.stderr).toBe(0);
  });
});
