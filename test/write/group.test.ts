import { afterEach, describe, expect, it } from 'vitest';
import type { DatabaseSync } from 'node:sqlite';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { decodeChangeset } from '../../src/changeset/index.js';
import { dumpFile, dumpTables, replayOntoGenesis, tempTrail } from '../helpers/db.js';

const SCHEMA = 'CREATE TABLE t(id INTEGER PRIMARY KEY, who TEXT NOT NULL, blob BLOB); CREATE TABLE c(id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES (1, 0); CREATE TABLE nopk(a, b)';
const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function setup() {
  const result = await tempTrail(SCHEMA);
  opened.push(result.trail);
  return result;
}

async function entriesOf(trail: Trail) {
  const entries = [];
  for await (const entry of trail.entries()) entries.push(entry);
  return entries;
}

/** The primary keys of table `t` an entry's changeset inserts. */
function insertedIds(changeset: Uint8Array): number[] {
  const ids: number[] = [];
  for (const group of decodeChangeset(changeset).tables) {
    for (const change of group.changes) if (group.name === 't' && change.op === 'insert') ids.push(Number(change.new?.[0]));
  }
  return ids.sort((a, b) => a - b);
}

function insertRows(first: number, count: number, bytes = 0) {
  return (db: DatabaseSync) => {
    const insert = db.prepare('INSERT INTO t (id, who, blob) VALUES (?, ?, ?)');
    for (let id = first; id < first + count; id++) insert.run(id, `w${first}`, bytes === 0 ? null : new Uint8Array(bytes).fill(id & 0xff));
  };
}

describe('Trail.write: group commit', () => {
  it('ok: concurrent writes of many sizes become one entry each, in call order, each holding exactly its own rows', async () => {
    const { trail } = await setup();
    // 0 rows (no entry), 1 row, 500 rows, a 300 KB row, 64 one-row writes.
    const sizes: [number, number, number][] = [[1000, 0, 0], [1, 1, 0], [10, 500, 0], [2000, 1, 300_000], ...Array.from({ length: 64 }, (_, i): [number, number, number] => [3000 + i, 1, 100])];
    const results = await Promise.all(sizes.map(([first, count, bytes]) => trail.write(insertRows(first, count, bytes))));
    expect(results[0]).toBeNull();
    const written = results.filter((entry) => entry !== null);
    expect(written.map((entry) => entry.seq)).toEqual(written.map((_, i) => i + 1));
    const entries = await entriesOf(trail);
    expect(entries).toHaveLength(sizes.length - 1);
    sizes.slice(1).forEach(([first, count], i) => {
      expect(insertedIds(entries[i]!.changeset)).toEqual(Array.from({ length: count }, (_, k) => first + k));
      expect(entries[i]!.tables).toEqual([{ table: 't', inserts: count, updates: 0, deletes: 0 }]);
    });
    // Replayed entry by entry onto genesis, the journal gives the database.
    const replayed = replayOntoGenesis(trail.journalDir, entries.map((entry) => entry.changeset));
    expect(dumpFile(replayed)).toEqual(dumpTables(trail.database));
    expect((await trail.verify({ replay: true })).entries).toBe(entries.length);
  });

  it('err: a body that throws in the middle of a group rejects alone; the writes around it commit', async () => {
    const { trail } = await setup();
    const boom = new Error('boom');
    const calls = [
      trail.write(insertRows(1, 2)),
      trail.write((db) => {
        insertRows(100, 3)(db);
        throw boom;
      }),
      trail.write((db) => db.exec('INSERT INTO nopk VALUES (1, 2)')),
      trail.write(insertRows(3, 2)),
    ];
    const settled = await Promise.allSettled(calls);
    expect(settled.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toBe(boom);
    expect(((settled[2] as PromiseRejectedResult).reason as ChangetrailError).code).toBe('TABLE_NOT_CAPTURABLE');
    expect(trail.database.prepare('SELECT id FROM t ORDER BY id').all()).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]);
    expect(trail.database.prepare('SELECT count(*) AS n FROM nopk').get()).toEqual({ n: 0 });
    const entries = await entriesOf(trail);
    expect(entries.map((entry) => insertedIds(entry.changeset))).toEqual([[1, 2], [3, 4]]);
    const replayed = replayOntoGenesis(trail.journalDir, entries.map((entry) => entry.changeset));
    expect(dumpFile(replayed)).toEqual(dumpTables(trail.database));
  });

  it('err: a group in which every body throws, first of an admission, leaves the next write admitted (no LOCK_COMPROMISED)', async () => {
    const { trail, path } = await setup();
    await trail.write(insertRows(1, 1));
    await trail.close();
    // A new trail holds no admission: its first group is fenced in (the epoch bumped), then rolled back.
    const again = await openTrail(path);
    opened.push(again);
    const boom = () => {
      throw new Error('boom');
    };
    const settled = await Promise.allSettled([again.write(boom), again.write(boom), again.write(boom)]);
    expect(settled.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(await again.write(insertRows(2, 1))).toMatchObject({ seq: 2 });
    expect((await entriesOf(again)).map((entry) => insertedIds(entry.changeset))).toEqual([[1], [2]]);
  });

  it('err: a body that releases or rolls back changetrail\'s savepoint → STATEMENT_NOT_ALLOWED, alone', async () => {
    const { trail } = await setup();
    const settled = await Promise.allSettled([
      trail.write(insertRows(1, 1)),
      trail.write((db) => db.exec('RELEASE changetrail_member')),
      trail.write((db) => db.exec('ROLLBACK TO changetrail_member')),
      trail.write(insertRows(2, 1)),
    ]);
    expect(settled.map((result) => (result.status === 'fulfilled' ? 'ok' : (result.reason as ChangetrailError).code))).toEqual(['ok', 'STATEMENT_NOT_ALLOWED', 'STATEMENT_NOT_ALLOWED', 'ok']);
    expect((await entriesOf(trail)).map((entry) => insertedIds(entry.changeset))).toEqual([[1], [2]]);
  });

  it('ok: migrations, undo and optimistic writes queued among grouped writes keep call order', async () => {
    const { trail } = await setup();
    const first = await trail.write(insertRows(1, 1));
    const calls = [
      trail.write(insertRows(2, 1)),
      trail.undo(first!.seq),
      trail.migrate('ALTER TABLE t ADD COLUMN extra TEXT'),
      // Runs after the migration: the new column exists for it.
      trail.write((db) => db.exec(`INSERT INTO t (id, who, extra) VALUES (3, 'w3', 'x')`)),
      trail.write(insertRows(4, 1)),
    ];
    const results = await Promise.all(calls);
    expect(results.map((entry) => [entry?.seq, entry?.kind, entry?.undoes])).toEqual([[2, 'write', undefined], [3, 'write', 1], [4, 'schema', undefined], [5, 'write', undefined], [6, 'write', undefined]]);
    expect(trail.database.prepare('SELECT id, extra FROM t ORDER BY id').all()).toEqual([{ id: 2, extra: null }, { id: 3, extra: 'x' }, { id: 4, extra: null }]);
    expect((await trail.verify({ replay: true })).replayed).toBe(true);
  });

  it('ok: optimistic increments of one row, all in flight together, lose no update', async () => {
    const { trail } = await setup();
    const increments = Array.from({ length: 12 }, () => trail.optimisticWrite(
      (db) => ({ reads: [{ table: 'c', key: { id: 1 } }], value: Number((db.prepare('SELECT n FROM c WHERE id = 1').get() as { n: number }).n) }),
      (db, n) => db.prepare('UPDATE c SET n = ? WHERE id = 1').run(n + 1),
      { retries: 20, backoffMs: 1 },
    ));
    const results = await Promise.all(increments);
    expect(results.every((result) => result.entry !== null)).toBe(true);
    expect(trail.database.prepare('SELECT n FROM c WHERE id = 1').get()).toEqual({ n: 12 });
    expect((await trail.verify({ replay: true })).entries).toBe(12);
  });
});
