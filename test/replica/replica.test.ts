/**
 * openReplica / Replica over real primaries: bootstrap, every entry kind, resume, follow with the real
 * watcher, waitFor, the positions iterator, read-only reads, and every divergence code leaving the
 * replica as it was.
 */
import { copyFileSync, cpSync, existsSync, rmSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openReplica, openTrail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';
import { rejection } from '../helpers/rejection.js';
import { digestFile, expectReplicaEquals, primariesAndReplicas, type Primary } from './helpers.js';

const SCHEMA = `
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE posts(id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, body TEXT);
CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN INSERT INTO audit(what) VALUES ('post ' || new.id); END;
`;

const { open, primary, replicaOf } = primariesAndReplicas(SCHEMA);

async function writeSome(p: Primary, count: number, from = 1): Promise<number> {
  let seq = 0;
  for (let i = from; i < from + count; i++) {
    const entry = await p.trail.write((db) => {
      db.prepare('INSERT OR IGNORE INTO users(id, name) VALUES (?, ?)').run(i, `user ${i}`);
      db.prepare('INSERT INTO posts(user_id, body) VALUES (?, ?)').run(i, `post by ${i}`);
      db.prepare('INSERT OR REPLACE INTO kv VALUES (?, ?)').run(`k${i % 5}`, i);
    });
    seq = entry!.seq;
  }
  return seq;
}

function caught<T>(fn: () => T): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

describe('openReplica', () => {
  it('ok: a new replica starts from genesis and sync applies writes, migrations, undo and resync', async () => {
    const p = await primary();
    await writeSome(p, 5);
    await p.trail.migrate('ALTER TABLE users ADD COLUMN email TEXT; UPDATE users SET email = name || \'@x\'');
    const undone = await writeSome(p, 1, 100);
    await p.trail.undo(undone);
    await p.trail.write((db) => db.prepare('DELETE FROM users WHERE id = 2').run()); // cascades
    const r = await replicaOf(p);
    const position = await r.sync();
    expect(position.seq).toBe((await p.trail.status()).headSeq);
    expectReplicaEquals(p.path, p.replicaPath);
    // A foreign change on the primary, recorded by resync: the replica rebases onto the snapshot.
    const db = new DatabaseSync(p.path);
    db.exec("UPDATE users SET name = 'changed outside' WHERE id = 1");
    db.close();
    await p.trail.resync();
    await writeSome(p, 2, 200);
    await r.sync();
    expectReplicaEquals(p.path, p.replicaPath);
    expect(r.read((replica) => replica.prepare('SELECT name FROM users WHERE id = 1').get())).toEqual({ name: 'changed outside' });
  });

  it('ok: a new replica starts from the newest resync snapshot and skips the history before it', async () => {
    const p = await primary();
    await writeSome(p, 3);
    const resync = await p.trail.resync();
    await writeSome(p, 2, 10);
    const r = await replicaOf(p);
    expect(r.position.seq).toBe(resync!.seq);
    const applied: number[] = [];
    r.on('applied', (position) => applied.push(position.seq));
    await r.sync();
    expect(applied.at(-1)).toBe(resync!.seq + 2);
    expect(applied[0]).toBeGreaterThan(resync!.seq);
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('ok: reopening resumes at the stored position; status reports position and lag', async () => {
    const p = await primary();
    await writeSome(p, 3);
    const first = await replicaOf(p);
    await first.sync();
    await first.close();
    await writeSome(p, 2, 10);
    const second = await replicaOf(p);
    expect(second.position.seq).toBe(3);
    expect(second.status()).toMatchObject({ appliedSeq: 3, sourceHeadSeq: 5, lagEntries: 2, state: 'idle' });
    await second.sync();
    expect(second.status()).toMatchObject({ appliedSeq: 5, sourceHeadSeq: 5, lagEntries: 0, lagMs: 0 });
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('ok: a journal directory works as the source (head marker)', async () => {
    const p = await primary();
    await writeSome(p, 3);
    const r = await openReplica(p.replicaPath, { source: `${p.path}.changes` });
    open.push(r);
    expect((await r.sync()).seq).toBe(3);
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('ok: follow applies entries as they commit; waitFor and the positions iterator see them', async () => {
    const p = await primary();
    const r = await replicaOf(p);
    const controller = new AbortController();
    const following = r.follow({ signal: controller.signal });
    const seen: number[] = [];
    const iterating = (async () => {
      for await (const position of r.positions({ signal: controller.signal })) {
        seen.push(position.seq);
        if (position.seq >= 5) return;
      }
    })();
    for (let i = 1; i <= 5; i++) {
      const seq = await writeSome(p, 1, i);
      const position = await r.waitFor(seq, { timeoutMs: 5_000 });
      expect(position.seq).toBeGreaterThanOrEqual(seq);
      expect(r.read((db) => db.prepare('SELECT count(*) AS n FROM users').get())).toEqual({ n: i });
    }
    await iterating;
    expect(seen.at(-1)).toBe(5);
    expect(r.state).toBe('following');
    controller.abort();
    await following;
    expect(r.state).toBe('idle');
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('ok: follow keeps up across segment rotation, resuming from the stored byte position after a restart', async () => {
    const dir = tempDir('ct-replica-rotate-');
    const path = join(dir, 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec(SCHEMA);
    setup.close();
    const trail = await openTrail(path, { segmentBytesTarget: 2048 });
    const p: Primary = { trail, path, dir, replicaPath: join(dir, 'replica.db') };
    open.push(p);
    const r = await replicaOf(p);
    const controller = new AbortController();
    const following = r.follow({ signal: controller.signal });
    const seq = await writeSome(p, 30);
    await r.waitFor(seq, { timeoutMs: 10_000 });
    controller.abort();
    await following;
    await r.close();
    expect(readdirSync(`${path}.changes`).filter((name) => name.endsWith('.seg')).length).toBeGreaterThan(3);
    const resume = new DatabaseSync(p.replicaPath, { readOnly: true });
    expect(resume.prepare('SELECT resume FROM _changetrail_replica').get()!.resume).toMatch(/^\d+:\d+$/);
    resume.close();
    const last = await writeSome(p, 10, 100);
    const again = await replicaOf(p);
    expect((await again.sync()).seq).toBe(last);
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('ok: follow rides out a reader holding the replica past the busy timeout, then applies', async () => {
    const p = await primary();
    await writeSome(p, 1);
    const r = await replicaOf(p, { busyTimeoutMs: 50, pollIntervalMs: 20 });
    await r.sync();
    const controller = new AbortController();
    const following = r.follow({ signal: controller.signal });
    const reader = new DatabaseSync(p.replicaPath, { readOnly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM users').get(); // SHARED: the follower cannot COMMIT
    const seq = await writeSome(p, 2, 10);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(r.position.seq).toBeLessThan(seq);
    reader.exec('COMMIT');
    reader.close();
    expect((await r.waitFor(seq, { timeoutMs: 10_000 })).seq).toBe(seq);
    expect(r.state).toBe('following');
    controller.abort();
    await following;
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('ok: waitFor without follow syncs by itself; err: it times out with REPLICA_WAIT_TIMEOUT', async () => {
    const p = await primary();
    const r = await replicaOf(p);
    const seq = await writeSome(p, 2);
    expect((await r.waitFor(seq, { timeoutMs: 5_000 })).seq).toBe(seq);
    const error = await rejection(r.waitFor(seq + 1, { timeoutMs: 200 }));
    expect(error.code).toBe('REPLICA_WAIT_TIMEOUT');
    expect(error.details).toMatchObject({ seq: seq + 1, appliedSeq: seq, timeoutMs: 200 });
  });

  it('err: read refuses writes (STATEMENT_NOT_ALLOWED) and async bodies (TypeError)', async () => {
    const p = await primary();
    await writeSome(p, 1);
    const r = await replicaOf(p);
    await r.sync();
    const error = caught(() => r.read((db) => db.exec('DELETE FROM users')));
    expect(ChangetrailError.is(error, 'STATEMENT_NOT_ALLOWED')).toBe(true);
    expect(() => r.read((async () => 1) as never)).toThrow(TypeError);
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('err: a file that is not a replica is refused (REPLICA_NOT_A_REPLICA) and left alone; force replaces it', async () => {
    const p = await primary();
    await writeSome(p, 2);
    const other = new DatabaseSync(p.replicaPath);
    other.exec('CREATE TABLE precious(x); INSERT INTO precious VALUES (42)');
    other.close();
    const before = readFileSync(p.replicaPath);
    const error = await rejection(openReplica(p.replicaPath, { source: p.path }));
    expect(error.code).toBe('REPLICA_NOT_A_REPLICA');
    expect(readFileSync(p.replicaPath).equals(before)).toBe(true);
    writeFileSync(join(p.dir, 'junk.db'), 'not sqlite at all');
    expect((await rejection(openReplica(join(p.dir, 'junk.db'), { source: p.path }))).code).toBe('REPLICA_NOT_A_REPLICA');
    const r = await replicaOf(p, { force: true });
    await r.sync();
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('err: the source itself is never a target, even forced', async () => {
    const p = await primary();
    const error = await rejection(openReplica(p.path, { source: p.path, force: true }));
    expect(error.code).toBe('REPLICA_NOT_A_REPLICA');
    expect(error.details).toMatchObject({ reason: 'the source itself' });
  });

  it('err: a replica of another journal is REPLICA_SOURCE_MISMATCH (swapped source), untouched', async () => {
    const p = await primary();
    await writeSome(p, 2);
    const r = await replicaOf(p);
    await r.sync();
    await r.close();
    const q = await primary();
    await writeSome(q, 1);
    const before = readFileSync(p.replicaPath);
    const error = await rejection(openReplica(p.replicaPath, { source: q.path }));
    expect(error.code).toBe('REPLICA_SOURCE_MISMATCH');
    expect(error.details).toMatchObject({ replicaJournalId: r.position.journalId });
    expect(readFileSync(p.replicaPath).equals(before)).toBe(true);
  });

  it('err: a journal swapped under a following replica stops it with REPLICA_SOURCE_MISMATCH', async () => {
    const p = await primary();
    await writeSome(p, 2);
    const r = await replicaOf(p);
    await r.sync();
    const digest = digestFile(p.replicaPath);
    // Another history at the same path: a new database and journal moved into place.
    const q = await primary();
    await writeSome(q, 4);
    await q.trail.close();
    open.splice(open.indexOf(q), 1);
    await p.trail.close();
    open.splice(open.indexOf(p), 1);
    rmSync(`${p.path}.changes`, { recursive: true });
    cpSync(`${q.path}.changes`, `${p.path}.changes`, { recursive: true });
    copyFileSync(q.path, p.path);
    const error = await rejection(r.sync());
    expect(error.code).toBe('REPLICA_SOURCE_MISMATCH');
    expect(r.state).toBe('failed');
    expect(digestFile(p.replicaPath)).toEqual(digest);
  });

  it('err: a foreign write to the replica is REPLICA_FOREIGN_WRITE, at open and while open; nothing is applied', async () => {
    const p = await primary();
    await writeSome(p, 2);
    const r = await replicaOf(p);
    await r.sync();
    const intruder = new DatabaseSync(p.replicaPath);
    intruder.exec("UPDATE users SET name = 'intruder' WHERE id = 1");
    intruder.close();
    await writeSome(p, 1, 10);
    const digest = digestFile(p.replicaPath);
    const live = await rejection(r.sync());
    expect(live.code).toBe('REPLICA_FOREIGN_WRITE');
    expect(live.details).toMatchObject({ appliedSeq: 2 });
    expect(digestFile(p.replicaPath)).toEqual(digest);
    await r.close();
    const reopened = await rejection(openReplica(p.replicaPath, { source: p.path }));
    expect(reopened.code).toBe('REPLICA_FOREIGN_WRITE');
    expect(digestFile(p.replicaPath)).toEqual(digest);
    // --rebuild starts it over from the snapshot and catches up.
    const rebuilt = await replicaOf(p, { rebuild: true });
    await rebuilt.sync();
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('err: a stored position whose hash the journal does not hold is REPLICA_DIVERGED, untouched', async () => {
    const p = await primary();
    await writeSome(p, 3);
    const r = await replicaOf(p);
    await r.sync();
    await r.close();
    const db = new DatabaseSync(p.replicaPath);
    db.exec(`UPDATE _changetrail_replica SET hash = '${'ab'.repeat(32)}', resume = NULL`);
    db.close();
    const before = digestFile(p.replicaPath);
    const error = await rejection(openReplica(p.replicaPath, { source: p.path }));
    expect(error.code).toBe('REPLICA_DIVERGED');
    expect(error.details).toMatchObject({ seq: 3, replicaHash: 'ab'.repeat(32) });
    expect(digestFile(p.replicaPath)).toEqual(before);
  });

  it('err: a corrupted committed entry stops sync with JOURNAL_CHECKSUM_MISMATCH, replica untouched', async () => {
    const p = await primary();
    await writeSome(p, 2);
    const r = await replicaOf(p);
    await r.sync();
    await writeSome(p, 2, 10);
    const digest = digestFile(p.replicaPath);
    const segment = join(`${p.path}.changes`, readdirSync(`${p.path}.changes`).find((n) => n.endsWith('.seg'))!);
    const size = statSync(segment).size;
    const fd = openSync(segment, 'r+');
    const byte = Buffer.alloc(1);
    const offset = size - 20; // inside the last committed frame's body
    byte[0] = readFileSync(segment)[offset]! ^ 0xff;
    writeSync(fd, byte, 0, 1, offset);
    closeSync(fd);
    const error = await rejection(r.sync());
    expect(['JOURNAL_CHECKSUM_MISMATCH']).toContain(error.code);
    expect(r.state).toBe('failed');
    expect(digestFile(p.replicaPath)).toEqual(digest);
    expect(r.position.seq).toBe(2);
  });

  it('err: tampering that hides from the change counter still stops at the first conflicting entry (CHANGESET_CONFLICT), untouched', async () => {
    const p = await primary();
    await writeSome(p, 3);
    const r = await replicaOf(p);
    await r.sync();
    await r.close();
    // Change a row and forge the recorded change counter so the check passes: the next entries that
    // touch that row must still refuse to apply rather than overwrite it.
    const tamper = new DatabaseSync(p.replicaPath);
    tamper.exec("UPDATE kv SET v = 'tampered' WHERE k = 'k3'");
    tamper.exec('UPDATE _changetrail_replica SET change_counter = NULL');
    tamper.close();
    await writeSome(p, 4, 10); // entries 4..7; entry 7 (i = 13) rewrites kv row k3
    const digest = digestFile(p.replicaPath);
    const reopened = await replicaOf(p);
    const error = await rejection(reopened.sync());
    expect(error.code).toBe('CHANGESET_CONFLICT');
    expect(error.details).toMatchObject({ table: 'kv', seq: 7 });
    expect(reopened.position.seq).toBe(3);
    expect(digestFile(p.replicaPath)).toEqual(digest);
  });

  it("ok: synchronous 'normal' replicates the same; another value is a RangeError before any file is made", async () => {
    const p = await primary();
    await writeSome(p, 3);
    await expect(openReplica(p.replicaPath, { source: p.path, synchronous: 'off' as never })).rejects.toThrow(RangeError);
    expect(existsSync(p.replicaPath)).toBe(false);
    const r = await replicaOf(p, { synchronous: 'normal' });
    await r.sync();
    await writeSome(p, 2, 10);
    await r.sync();
    expectReplicaEquals(p.path, p.replicaPath);
  });

  it('ok: a primary in WAL mode replicates the same', async () => {
    const dir = tempDir('ct-replica-wal-');
    const path = join(dir, 'app.db');
    const setup = new DatabaseSync(path);
    setup.exec(SCHEMA);
    setup.close();
    const trail = await openTrail(path, { journalMode: 'wal' });
    const p: Primary = { trail, path, dir, replicaPath: join(dir, 'replica.db') };
    open.push(p);
    await writeSome(p, 4);
    await trail.resync();
    await writeSome(p, 2, 10);
    const r = await replicaOf(p);
    await r.sync();
    expectReplicaEquals(p.path, p.replicaPath);
    expect(r.read((db) => db.prepare('PRAGMA journal_mode').get())).toEqual({ journal_mode: 'delete' });
  });

  it('ok: close is idempotent and leaves no temporary files', async () => {
    const p = await primary();
    await writeSome(p, 1);
    await p.trail.resync();
    const r = await replicaOf(p);
    await r.sync();
    const closing = r.close();
    expect(r.close()).toBe(closing);
    await closing;
    expect(() => r.read(() => 1)).toThrow(TypeError);
    expect(readdirSync(p.dir).filter((name) => name.includes('changetrail-base') || name.endsWith('-journal'))).toEqual([]);
    expect(existsSync(p.replicaPath)).toBe(true);
  });
});
