/**
 * The follower SIGKILLed at every apply step (before the apply, after BEGIN, mid-batch, before and after
 * the position update, after COMMIT, around and during a resync rebase), each at several hits: after every
 * kill the replica holds exactly the state of the entry its stored position names (never a half-applied
 * transaction), and the next run resumes there: no entry applied twice, none skipped.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCommittedHead } from '../../src/journal/journal.js';
import { openReplica, type Trail } from '../../src/index.js';
import { REPLICA_CRASH_POINTS } from '../../src/replica/crashpoints.js';
import { tempDir } from '../helpers/db.js';
import { digestFile, expectReplicaEquals, referenceAt, runFollower, storedSeq, tempPrimary } from './helpers.js';

const SCHEMA = `
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE notes(user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE, k TEXT NOT NULL, body TEXT, PRIMARY KEY(user_id, k)) WITHOUT ROWID;
CREATE TABLE docs(title TEXT PRIMARY KEY, body TEXT);
CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='rowid');
CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN INSERT INTO docs_fts(rowid, body) VALUES (new.rowid, new.body); END;
CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN INSERT INTO docs_fts(docs_fts, rowid, body) VALUES ('delete', old.rowid, old.body); END;
`;

let primaryPath = '';
let template = '';
let trail: Trail;

async function writes(count: number, from: number): Promise<number> {
  let seq = 0;
  for (let i = from; i < from + count; i++) {
    seq = (await trail.write((db) => {
      db.prepare('INSERT OR REPLACE INTO users(id, name) VALUES (?, ?)').run(i % 7, `user ${i}`);
      db.prepare('INSERT OR REPLACE INTO notes(user_id, k, body) VALUES (?, ?, ?)').run(i % 7, `k${i % 3}`, `note ${i}`);
      db.prepare('INSERT OR REPLACE INTO docs VALUES (?, ?)').run(`doc ${i % 5}`, `alpha ${i} beta`);
    }))!.seq;
  }
  return seq;
}

beforeAll(async () => {
  const primary = await tempPrimary(SCHEMA);
  trail = primary.trail;
  primaryPath = primary.path;
  await writes(4, 1);
  // The template replica stands before everything below, so every run meets batches, a migration, an
  // undo and a resync.
  template = join(primary.dir, 'template.db');
  const replica = await openReplica(template, { source: primaryPath });
  await replica.sync();
  await replica.close();
  await writes(6, 10);
  await trail.migrate(`ALTER TABLE users ADD COLUMN email TEXT; UPDATE users SET email = name || '@x'`);
  const undone = await writes(1, 30);
  await trail.undo(undone);
  await writes(3, 40);
  await trail.write((db) => db.prepare('DELETE FROM users WHERE id = 1').run());
  const foreign = new DatabaseSync(primaryPath);
  foreign.exec("UPDATE docs SET body = 'foreign gamma' WHERE title = 'doc 1'");
  // Large enough (about 3 MiB) that the rebase copies it in several backup steps: a kill between steps.
  foreign.prepare('INSERT INTO docs VALUES (?, ?)').run('big', 'x'.repeat(3 * 1024 * 1024));
  foreign.close();
  await trail.resync();
  await writes(4, 50);
});

afterAll(async () => {
  await trail.close();
});

const EXHAUSTIVE = Number(process.env.CT_REPLICA_HITS ?? 0) > 0;

/** Which passes of each point to kill at; `npm run stress` (CT_REPLICA_HITS=n) tries the first n of every point. */
function hitsOf(point: string): number[] {
  if (point.startsWith('replica-rebase')) return [1]; // one resync entry: one rebase
  const all = Number(process.env.CT_REPLICA_HITS ?? 0);
  if (all > 0) return Array.from({ length: all }, (_, i) => i + 1);
  return point === 'replica-mid-batch' ? [1, 4] : [2];
}

describe('follower crash consistency (SIGKILL at every apply step)', () => {
  for (const point of REPLICA_CRASH_POINTS) {
    it(`ok: killed at ${point}`, async () => {
      for (const hit of hitsOf(point)) {
        const replica = join(tempDir('ct-crash-replica-'), 'replica.db');
        copyFileSync(template, replica);
        const crashed = await runFollower(primaryPath, replica, 'sync', { CHANGETRAIL_CRASH_AT: `${point}:${hit}` });
        if (EXHAUSTIVE && hit > 1 && crashed.signal === null) {
          // The catch-up passes this point fewer times: it ran to the end untouched.
          expect(crashed.code, crashed.stdout + crashed.stderr).toBe(0);
          expectReplicaEquals(primaryPath, replica);
          break;
        }
        expect(crashed.signal, `${point}:${hit} ${crashed.stdout} ${crashed.stderr}`).toBe('SIGKILL');
        const at = storedSeq(replica);
        expect(Object.fromEntries(digestFile(replica)), `${point}:${hit} at ${at}`).toEqual(Object.fromEntries(referenceAt(primaryPath, at)));
        const before = crashed.applied.at(-1) ?? 4;
        expect(at).toBeGreaterThanOrEqual(before);
        const resumed = await runFollower(primaryPath, replica, 'sync');
        expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
        expect(resumed.applied[0] ?? Infinity).toBeGreaterThan(at);
        expect(storedSeq(replica)).toBe(readCommittedHead(primaryPath).seq);
        expectReplicaEquals(primaryPath, replica);
      }
    });
  }
});
