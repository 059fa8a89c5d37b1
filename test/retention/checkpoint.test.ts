import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { readBase } from '../../src/journal/retention-base.js';
import { dumpFile, dumpTables, tempTrail } from '../helpers/db.js';
import { replayJournal } from '../../src/apply/replay.js';

const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function setup(segmentBytesTarget = 4096) {
  const result = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)', { segmentBytesTarget });
  opened.push(result.trail);
  return result;
}

async function insert(trail: Trail, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await trail.write((db) => db.prepare('INSERT INTO t VALUES (?, ?)').run(i, `v${i}`.repeat(20)));
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (error) {
    return error instanceof ChangetrailError ? error.code : String(error);
  }
}

describe('Trail.checkpoint', () => {
  it('ok: records the state at the head in checkpoint-<seq>.db, bound by a checkpoint entry', async () => {
    const { trail, path } = await setup();
    await insert(trail, 1, 5);
    const result = await trail.checkpoint({ message: 'daily' });
    expect(result).not.toBeNull();
    expect(result!.entry).toMatchObject({ seq: 6, kind: 'checkpoint', message: 'daily', tables: [] });
    expect(result!.at.seq).toBe(5);
    expect(result!.snapshot.file).toBe('checkpoint-6.db');
    expect(dumpFile(join(`${path}.changes`, 'checkpoint-6.db'))).toEqual(dumpTables(trail.database));
    const journal = openJournal(`${path}.changes`, readCommittedHead(path));
    const entry = journal.entry(6);
    expect(entry.at!.seq).toBe(5);
    expect(Buffer.from(entry.at!.hash).toString('hex')).toBe(journal.positionAt(5).hash);
    // Nothing new since: no second checkpoint.
    expect(await trail.checkpoint()).toBeNull();
    expect(await trail.verify({ replay: true })).toMatchObject({ headSeq: 6 });
  });

  it('ok: a checkpoint starts a new segment', async () => {
    const { trail, path } = await setup(1 << 20);
    await insert(trail, 1, 3);
    await trail.checkpoint();
    expect(readdirSync(`${path}.changes`).filter((n) => n.endsWith('.seg')).sort()).toEqual(['00000000000000000001.seg', '00000000000000000004.seg']);
  });

  it('ok: nothing to record on an empty journal', async () => {
    const { trail } = await setup();
    expect(await trail.checkpoint()).toBeNull();
  });
});

describe('Trail.prune', () => {
  it('ok: removes what lies wholly before the checkpoint; verify, replay and reopen start there', async () => {
    const { trail, path } = await setup();
    await insert(trail, 1, 40);
    const cp = await trail.checkpoint();
    await insert(trail, 41, 10);
    const dir = `${path}.changes`;
    const result = await trail.prune({ before: 'checkpoint' });
    expect(result.base).toEqual({ seq: cp!.at.seq, checkpointSeq: cp!.entry.seq });
    expect(result.earliestSeq).toBe(41);
    expect(result.removed).toContain('genesis.db');
    expect(existsSync(join(dir, 'genesis.db'))).toBe(false);
    expect(existsSync(join(dir, '00000000000000000001.seg'))).toBe(false);
    expect(readBase(dir, Buffer.from(readCommittedHead(path).journalId, 'hex'))!.checkpointSeq).toBe(41);
    expect(await trail.verify({ replay: true })).toMatchObject({ headSeq: 51, entries: 11, retainedAfter: 40 });
    const journal = openJournal(dir, readCommittedHead(path));
    expect(codeOf(() => journal.entry(40))).toBe('HISTORY_PRUNED');
    expect(codeOf(() => [...journal.entries({ from: 1 })])).toBe('HISTORY_PRUNED');
    expect([...journal.entries()].map((e) => e.seq)[0]).toBe(41);
    const out = join(dir, '..', 'replay.db');
    replayJournal(journal, out);
    expect(dumpFile(out)).toEqual(dumpTables(trail.database));
    await trail.close();
    const again = await openTrail(path);
    opened.push(again);
    await insert(again, 100, 2);
    expect(await again.verify()).toMatchObject({ headSeq: 53 });
  });

  it('err: CHECKPOINT_NOT_FOUND without a checkpoint', async () => {
    const { trail } = await setup();
    await insert(trail, 1, 3);
    await expect(trail.prune({ before: 3 })).rejects.toMatchObject({ code: 'CHECKPOINT_NOT_FOUND' });
  });

  it('err: ENTRY_NOT_FOUND for a seq past the head, as the CLI refuses it; nothing is pruned', async () => {
    const { trail } = await setup();
    await insert(trail, 1, 30);
    await trail.checkpoint();
    const files = readdirSync(trail.journalDir).sort();
    await expect(trail.prune({ before: 32 })).rejects.toMatchObject({ code: 'ENTRY_NOT_FOUND', details: { seq: 32, headSeq: 31 } });
    await expect(trail.prune({ before: 1e6, dryRun: true })).rejects.toMatchObject({ code: 'ENTRY_NOT_FOUND', details: { seq: 1e6, headSeq: 31 } });
    expect(readdirSync(trail.journalDir).sort()).toEqual(files);
    await expect(trail.prune({ before: 1.5 })).rejects.toBeInstanceOf(RangeError);
    expect((await trail.prune({ before: 31 })).base?.seq).toBe(30);
  });
});
