import { appendFileSync, copyFileSync, readFileSync, renameSync, truncateSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangetrailError, openTrail, type Trail } from '../../src/index.js';
import { dumpFile, dumpTables, replayOntoGenesis, tempDir, tempTrail } from '../helpers/db.js';
import { toHex } from '../../src/journal/bytes.js';
import { digestSnapshotFile as digestFile } from '../../src/apply/snapshot-digest.js';

const SCHEMA = 'CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, n INTEGER)';
const opened: Trail[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
});

async function setup(sql = SCHEMA) {
  const result = await tempTrail(sql);
  opened.push(result.trail);
  return result;
}

async function collect(trail: Trail) {
  const entries = [];
  for await (const entry of trail.entries()) entries.push(entry);
  return entries;
}

async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
    return 'ok';
  } catch (error) {
    return error instanceof ChangetrailError ? error.code : (error as Error).name;
  }
}

describe('Trail.write', () => {
  it('ok: each write is one entry, numbered and hash-chained, with per-table counts', async () => {
    const { trail } = await setup();
    const first = await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2)`), { message: 'two rows', actor: 'tester', meta: { ticket: 7 } });
    const second = await trail.write((db) => db.exec(`UPDATE t SET n = n + 1 WHERE id = 1; DELETE FROM t WHERE id = 2`));
    expect(first).toMatchObject({ seq: 1, kind: 'write', actor: 'tester', message: 'two rows', meta: { ticket: 7 }, tables: [{ table: 't', inserts: 2, updates: 0, deletes: 0 }] });
    expect(second).toMatchObject({ seq: 2, prevHash: first!.hash, tables: [{ table: 't', inserts: 0, updates: 1, deletes: 1 }] });
    const entries = await collect(trail);
    expect(entries.map((e) => [e.seq, e.hash])).toEqual([[1, first!.hash], [2, second!.hash]]);
    expect((await trail.status()).headSeq).toBe(2);
  });

  it('ok: a write that changes nothing journals nothing and returns null', async () => {
    const { trail } = await setup();
    expect(await trail.write((db) => db.exec(`UPDATE t SET n = 1 WHERE id = 99`))).toBeNull();
    expect(await collect(trail)).toEqual([]);
  });

  it('err: a throwing body rolls back and journals nothing; the error is the body\'s own', async () => {
    const { trail } = await setup();
    const boom = new Error('boom');
    await expect(trail.write((db) => { db.exec(`INSERT INTO t VALUES (1, 'a', 1)`); throw boom; })).rejects.toBe(boom);
    expect(trail.read((db) => db.prepare('SELECT count(*) AS n FROM t').get()!.n)).toBe(0);
    expect(await collect(trail)).toEqual([]);
  });

  it('err: an async body is a TypeError; a body returning a promise is rolled back with a TypeError', async () => {
    const { trail } = await setup();
    expect(() => trail.write(async () => undefined)).toThrow(TypeError);
    await expect(trail.write((db) => { db.exec(`INSERT INTO t VALUES (1, 'a', 1)`); return Promise.resolve(); })).rejects.toThrow(TypeError);
    expect(trail.read((db) => db.prepare('SELECT count(*) AS n FROM t').get()!.n)).toBe(0);
  });

  it('err: DDL inside a write is SCHEMA_CHANGE_IN_WRITE and changes nothing', async () => {
    const { trail, path } = await setup();
    expect(await codeOf(trail.write((db) => db.exec('CREATE TABLE u(id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1, \'a\', 1)')))).toBe('SCHEMA_CHANGE_IN_WRITE');
    await trail.close();
    expect(dumpFile(path)).toEqual({ t: [] });
  });

  it('ok: concurrent writes of one process are serialised in call order', async () => {
    const { trail } = await setup();
    const entries = await Promise.all(Array.from({ length: 20 }, (_, i) => trail.write((db) => db.exec(`INSERT INTO t VALUES (${i}, 'x', ${i})`))));
    expect(entries.map((e) => e!.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('err: options are validated (TypeError/RangeError)', async () => {
    const { trail } = await setup();
    expect(() => trail.write(() => undefined, { message: 5 as unknown as string })).toThrow(TypeError);
    expect(() => trail.write(() => undefined, { bogus: 1 } as never)).toThrow(TypeError);
    await expect(openTrail('')).rejects.toThrow(TypeError);
    expect(await codeOf(openTrail(join(tempDir(), 'missing-dir', 'x.db')))).toBe('IO_ERROR');
  });
});

describe('openTrail adoption and journal agreement', () => {
  it('ok: adopts a database with data non-destructively; replaying entries onto genesis reproduces it', async () => {
    const { trail, path } = await setup(`${SCHEMA}; INSERT INTO t VALUES (1, 'pre', 0), (2, 'existing', 5);`);
    const before = dumpFile(path);
    expect(before.t).toHaveLength(2);
    await trail.write((db) => db.exec(`UPDATE t SET name = 'changed' WHERE id = 1; INSERT INTO t VALUES (3, 'new', 3)`));
    await trail.write((db) => db.exec(`DELETE FROM t WHERE id = 2`));
    const changesets = (await collect(trail)).map((e) => e.changeset);
    await trail.close();
    expect(dumpFile(join(trail.journalDir, 'genesis.db'))).toEqual(before);
    expect(dumpFile(replayOntoGenesis(trail.journalDir, changesets))).toEqual(dumpFile(path));
  });

  it('err: a database paired with another database\'s journal is JOURNAL_MISMATCH', async () => {
    const a = await setup();
    const b = await setup();
    await a.trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    await a.trail.close();
    await b.trail.close();
    copyFileSync(b.path, a.path);
    expect(await codeOf(openTrail(a.path))).toBe('JOURNAL_MISMATCH');
  });

  it('err: a database restored from an older backup is DATABASE_BEHIND_JOURNAL, never a fork', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    await trail.close();
    copyFileSync(path, `${path}.bak`);
    const again = await openTrail(path);
    for (let i = 2; i <= 4; i++) await again.write((db) => db.exec(`INSERT INTO t VALUES (${i}, 'b', 1)`));
    await again.close();
    copyFileSync(`${path}.bak`, path);
    const restored = await openTrail(path).catch((e) => e);
    const code = restored instanceof ChangetrailError ? restored.code : await codeOf((restored as Trail).write((db) => db.exec(`INSERT INTO t VALUES (9, 'x', 1)`)));
    if (!(restored instanceof ChangetrailError)) await (restored as Trail).close();
    expect(code).toBe('DATABASE_BEHIND_JOURNAL');
  });

  it('err: a journal missing committed bytes is JOURNAL_BEHIND_DATABASE', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'a', 1)`));
    await trail.close();
    // Rows whose frames are durable are dropped by later writes; here, as if they had been.
    const db = new DatabaseSync(path);
    db.exec('DELETE FROM _changetrail_outbox');
    db.close();
    const segment = join(trail.journalDir, '00000000000000000001.seg');
    truncateSync(segment, statSync(segment).size - 10);
    expect(await codeOf(openTrail(path))).toBe('JOURNAL_BEHIND_DATABASE');
  });

  it('ok: committed bytes a segment lacks while the outbox holds them are read from it, and completed by the next write', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'a', 1)`));
    await trail.close();
    const segment = join(trail.journalDir, '00000000000000000001.seg');
    const full = readFileSync(segment);
    // As a writer killed after COMMIT, mid-append, leaves it: the last frame torn.
    truncateSync(segment, full.byteLength - 10);
    const reopened = await openTrail(path);
    opened.push(reopened);
    const seqs = [];
    for await (const entry of reopened.entries()) seqs.push(entry.seq);
    expect(seqs).toEqual([1, 2]);
    expect(statSync(segment).size).toBe(full.byteLength - 10); // reading repairs nothing
    await reopened.write((db) => db.exec(`INSERT INTO t VALUES (3, 'a', 1)`));
    expect(readFileSync(segment).subarray(0, full.byteLength).equals(full)).toBe(true);
    expect((await reopened.verify({ replay: true })).entries).toBe(3);
  });

  it('err: a flipped bit inside a committed entry is reported with its seq, never skipped', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'a', 1)`));
    await trail.close();
    const segment = join(trail.journalDir, '00000000000000000001.seg');
    const bytes = readFileSync(segment);
    bytes[60] = bytes[60]! ^ 0x01; // inside entry 1's body
    writeFileSync(segment, bytes);
    // Found at open by the journal shape check (the first frame of a segment), or else while reading.
    const error = await openTrail(path).then((reopened) => {
      opened.push(reopened);
      return collect(reopened).then(() => null, (e) => e);
    }, (e) => e);
    expect(error).toBeInstanceOf(ChangetrailError);
    expect(error.code).toBe('JOURNAL_CHECKSUM_MISMATCH');
    expect(error.details.offset).toBe(40);
  });

  it('ok: garbage after the committed tail (a torn uncommitted frame) is truncated by the next write', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    await trail.close();
    const segment = join(trail.journalDir, '00000000000000000001.seg');
    appendFileSync(segment, Buffer.from('00000040000000000000000002deadbeef', 'hex'));
    const reopened = await openTrail(path);
    opened.push(reopened);
    await reopened.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b', 2)`));
    expect((await collect(reopened)).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('err: a database tracked by changetrail whose journal directory is gone is JOURNAL_MISMATCH', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    await trail.close();
    renameSync(trail.journalDir, `${trail.journalDir}.moved`);
    expect(await codeOf(openTrail(path))).toBe('JOURNAL_MISMATCH');
    expect(existsSync(join(trail.journalDir, 'manifest'))).toBe(false);
  });

  it('err: changes made while no changetrail process had the database open are detected at the next admission', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    await trail.close();
    const shell = new DatabaseSync(path); // e.g. the sqlite3 shell, while the app is down
    shell.exec(`UPDATE t SET n = 7`);
    shell.close();
    const reopened = await openTrail(path);
    opened.push(reopened);
    const journal = (await collect(reopened)).map((e) => e.hash);
    expect(await codeOf(reopened.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b', 2)`)))).toBe('FOREIGN_WRITE_DETECTED');
    expect((await collect(reopened)).map((e) => e.hash)).toEqual(journal);
    expect(dumpFile(path).t).toEqual([[1, 'integer', 'a', 'text', 7, 'integer']]);
    await reopened.resync({ message: 'accept the shell edit' });
    expect(await reopened.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b', 2)`))).toMatchObject({ seq: 3 });
  });

  it.each(['delete', 'wal'] as const)('ok: two trails on one file, writing in turn, each see the other\'s commits (%s): contiguous, chained, replay equals the database', async (journalMode) => {
    const { trail, path } = await tempTrail(SCHEMA, { journalMode });
    opened.push(trail);
    const other = await openTrail(path);
    opened.push(other);
    // A write after the other connection's commit must not start from the head this one committed last.
    const order = [trail, other, trail, trail, other, other, trail, other];
    for (const [index, writer] of order.entries()) {
      expect(await writer.write((db) => db.prepare('INSERT INTO t VALUES (?, ?, ?)').run(index, `r${index}`, index))).toMatchObject({ seq: index + 1 });
    }
    expect(await trail.verify({ replay: true })).toMatchObject({ headSeq: order.length, entries: order.length, replayed: true });
    expect(await other.verify({ replay: true })).toMatchObject({ headSeq: order.length, entries: order.length, replayed: true });
  });

  it('err: changes made by another connection are FOREIGN_WRITE_DETECTED until recorded', async () => {
    const { trail, path } = await setup();
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a', 1)`));
    const foreign = new DatabaseSync(path);
    foreign.exec(`UPDATE t SET n = 42`);
    foreign.close();
    expect(await codeOf(trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b', 2)`)))).toBe('FOREIGN_WRITE_DETECTED');
    expect(await codeOf(trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b', 2)`)))).toBe('FOREIGN_WRITE_DETECTED');
    expect(trail.read((db) => dumpTables(db)).t).toHaveLength(1);

    // The documented recovery: a resync entry carrying a snapshot of the database as it now is.
    const resync = await trail.resync({ message: 'accept the manual fix' });
    expect(resync).toMatchObject({ seq: 2, kind: 'resync', tables: [] });
    await trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b', 2)`));
    const entries = await collect(trail);
    expect(entries.map((e) => e.kind)).toEqual(['write', 'resync', 'write']);
    const snapshot = entries[1]!.snapshot!;
    expect(snapshot.file).toBe('snapshot-2.db');
    expect(toHex(digestFile(join(trail.journalDir, snapshot.file)).sha256)).toBe(snapshot.sha256);
    expect(dumpFile(join(trail.journalDir, snapshot.file))).toEqual({ t: [[1, 'integer', 'a', 'text', 42, 'integer']] });
    const tables = new DatabaseSync(join(trail.journalDir, snapshot.file), { readOnly: true });
    expect(tables.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`).all().map((r) => r.name)).toEqual(['t']);
    tables.close();
    await trail.close();
    expect(dumpFile(replayOntoGenesis(trail.journalDir, [entries[2]!.changeset], snapshot.file))).toEqual(dumpFile(path));
  });
});
