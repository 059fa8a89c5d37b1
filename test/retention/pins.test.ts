/** Pins and follower registrations: what holds pruning back, and what does not. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listFollowers, registerFollower, unregisterFollower, type Trail } from '../../src/index.js';
import { pinRetained } from '../../src/journal/retention-pins.js';
import { tempTrail } from '../helpers/db.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function setup() {
  const result = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { segmentBytesTarget: 2048 });
  opened.push(result.trail);
  for (let i = 1; i <= 20; i++) await result.trail.write((db) => db.prepare('INSERT INTO t VALUES (?, ?)').run(i, `v${i}`.repeat(10)));
  await result.trail.checkpoint();
  return { ...result, journalDir: `${result.path}.changes` };
}

describe('pins', () => {
  it('ok: a live pin keeps the files a reader may read; the base still moves; released, they go', async () => {
    const { trail, journalDir } = await setup();
    const pin = pinRetained(journalDir, 0, 'restore');
    const held = await trail.prune({ before: 'checkpoint' });
    expect(held.base?.seq).toBe(20);
    expect(held.removed).toEqual([]);
    expect(held.heldBy).toMatchObject([{ kind: 'pin', seq: 0 }]);
    expect(existsSync(join(journalDir, 'genesis.db'))).toBe(true);
    expect((await trail.verify()).retainedAfter).toBe(20);
    pin.release();
    expect(existsSync(join(journalDir, 'pins'))).toBe(false);
    const pruned = await trail.prune({ before: 'checkpoint' });
    expect(pruned.removed).toContain('genesis.db');
  });

  it('ok: the pin of a process that is gone holds nothing and is removed', async () => {
    const { trail, journalDir } = await setup();
    const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const deadPid = Number(child.stdout.trim());
    mkdirSync(join(journalDir, 'pins'), { recursive: true });
    writeFileSync(join(journalDir, 'pins', `${deadPid}-000000000000.json`), JSON.stringify({ seq: 0, pid: deadPid, host: hostname(), createdAtMs: Date.now(), purpose: 'killed restore' }));
    const pruned = await trail.prune({ before: 'checkpoint' });
    expect(pruned.heldBy).toEqual([]);
    expect(pruned.removed).toContain('genesis.db');
    expect(readdirSync(join(journalDir, 'pins'))).toEqual([]);
  });
});

describe('registerFollower', () => {
  it('ok: a registered follower holds the base at its position; unregistered or stale, it does not', async () => {
    const { trail, journalDir } = await setup();
    const head = (await trail.status()).head;
    registerFollower(journalDir, 'nats-shipper', { ...head, seq: 5, hash: '0'.repeat(64) });
    expect(listFollowers(journalDir, head.journalId).map((f) => [f.name, f.seq])).toEqual([['nats-shipper', 5]]);
    const held = await trail.prune({ before: 'checkpoint', dryRun: true });
    expect(held.base).toBeNull();
    expect(held.heldBy).toMatchObject([{ kind: 'follower', name: 'nats-shipper', seq: 5 }]);
    const stale = await trail.prune({ before: 'checkpoint', followers: { staleAfterMs: 0 }, dryRun: true });
    expect(stale.base?.seq).toBe(20);
    unregisterFollower(journalDir, 'nats-shipper');
    expect(listFollowers(journalDir, head.journalId)).toEqual([]);
    expect((await trail.prune({ before: 'checkpoint' })).base?.seq).toBe(20);
    expect(() => registerFollower(journalDir, '../escape', head)).toThrow(TypeError);
  });
});
