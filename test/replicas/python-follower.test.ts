/**
 * The Python follower (replicas/python `replicate`) on a journal that changetrail itself wrote under a
 * randomized workload — triggers, an audit table they fill, FTS5 external content kept by triggers,
 * R*Tree, generated columns, WITHOUT ROWID and composite keys, ON DELETE CASCADE, migrations (some not
 * deterministic, one unrecordable), undo, a foreign write recorded by resync — SIGKILLed mid-run again
 * and again and resumed: its replica ends equal to the primary (every recorded table, shadow tables and
 * rowids included), to the Node replay of the journal, and to the Node follower's replica; the Node
 * follower also continues the replica the Python follower made.
 */
import { copyFileSync, cpSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ChangetrailError, openReplica } from '../../src/index.js';
import { replayJournal } from '../../src/apply/replay.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { createRandom } from '../apply/helpers.js';
import { FTS_QUERIES, MIGRATIONS, SCHEMA_SQL, randomOperation } from '../apply/workload.js';
import { tempTrail } from '../helpers/db.js';
import { parseResult, runPython, startPython } from './python.js';
import { dumpState } from './state.js';
import { cli, jsonError } from '../cli/run-cli.js';

const SEED = Number(process.env.CT_PYTHON_SEED ?? 0x5eed0015);
const TRANSACTIONS = 56;
const RESYNC_AT = 30;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the follower and SIGKILLs it after `killAfterMs` (if it is still running then). */
function runKilled(args: string[], killAfterMs: number): Promise<Run> {
  // Each entry's transaction stays open 8 ms (after the position update, before COMMIT): kills land inside
  // transactions as well as between them.
  const child = startPython(args, { CHANGETRAIL_READER_TEST_PAUSE_MS: '8' });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (data) => (stdout += data));
  child.stderr!.on('data', (data) => (stderr += data));
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The replica's applied seq. Read-write: after a SIGKILL its hot journal must be rolled back first. */
function replicaSeq(path: string): number {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    return Number((db.prepare('SELECT seq FROM _changetrail_replica WHERE id = 1').get() as { seq: number }).seq);
  } finally {
    db.close();
  }
}

function ftsAnswers(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const statement = db.prepare('SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rowid');
    return FTS_QUERIES.map((query) => `${query}=${statement.all(query).map((row) => String(row.rowid)).join(',')}`);
  } finally {
    db.close();
  }
}

function checkIntegrity(path: string, scratch: string): void {
  copyFileSync(path, scratch);
  const db = new DatabaseSync(scratch);
  try {
    expect(db.prepare('PRAGMA integrity_check').all()).toEqual([{ integrity_check: 'ok' }]);
    db.exec(`INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')`);
    expect(db.prepare(`SELECT rtreecheck('geo') AS result`).get()).toEqual({ result: 'ok' });
  } finally {
    db.close();
  }
}

describe('python follower on a journal written by changetrail', () => {
  it(`ok: SIGKILLed mid-run and resumed, its replica equals the primary, the Node replay and the Node follower (seed 0x${SEED.toString(16)})`, async () => {
    const { trail, path, dir } = await tempTrail(SCHEMA_SQL);
    const replica = join(dir, 'python.db');
    const random = createRandom(SEED);
    const migrated = new Set<number>();
    const writes: number[] = [];
    const kinds = new Set<string>();
    const step = async (index: number): Promise<void> => {
      const migration = MIGRATIONS.get(index);
      if (migration !== undefined) {
        migrated.add(index);
        const entry = await trail.migrate(migration);
        if (entry !== null) kinds.add('schema');
        return;
      }
      if (index === RESYNC_AT) {
        const foreign = new DatabaseSync(path);
        foreign.exec(`INSERT OR REPLACE INTO kv(k, v) VALUES ('foreign', 'edited outside changetrail')`);
        foreign.close();
        await trail.resync({ message: 'foreign edit' });
        kinds.add('resync');
        return;
      }
      if (index % 7 === 0 && writes.length > 0) {
        try {
          const entry = await trail.undo(writes[writes.length - 1 - random.int(Math.min(3, writes.length))]!);
          if (entry !== null) kinds.add('undo');
          return;
        } catch (error) {
          if (!ChangetrailError.is(error, 'CHANGESET_CONFLICT') && !ChangetrailError.is(error, 'UNDO_UNSUPPORTED')) throw error;
        }
      }
      const operations = 1 + random.int(6);
      // Audit data as the CLI prints it: unicode, integers beyond 2^32 (msgpack float 64), nested meta.
      const audit = index % 3 === 0 ? { message: `step ${index} ✓`, actor: `ïnès-${index}`, meta: { index, big: 5_000_000_000 + index, nested: { list: [1, 'two', null, true] } } } : {};
      const entry = await trail.write((db) => {
        for (let i = 0; i < operations; i++) randomOperation(db, random, migrated);
      }, audit);
      if (entry !== null) {
        writes.push(entry.seq);
        kinds.add('write');
      }
    };
    try {
      // First part, then a one-shot catch-up: the replica is created from genesis.db.
      for (let index = 1; index <= 20; index++) await step(index);
      const first = runPython(['replicate', path, replica]);
      expect(first.error, JSON.stringify(first.error)).toBeNull();
      expect(first.lines).toMatchObject([{ seq: readCommittedHead(path).seq }]);
      for (let index = 21; index <= TRANSACTIONS; index++) await step(index);
      expect([...kinds].sort()).toEqual(['resync', 'schema', 'undo', 'write']);

      // Catch up under SIGKILLs at random moments until a run completes; each run resumes where the last stopped.
      let kills = 0;
      let previous = replicaSeq(replica);
      for (let attempt = 0; attempt < 40; attempt++) {
        const run = await runKilled(['replicate', path, replica], kills < 5 ? 60 + random.int(120) : 60_000);
        const seq = replicaSeq(replica);
        expect(seq).toBeGreaterThanOrEqual(previous);
        previous = seq;
        if (run.signal === 'SIGKILL') {
          kills++;
          continue;
        }
        expect(run.code, run.stderr).toBe(0);
        expect(parseResult(run.code, run.stdout, run.stderr).lines).toMatchObject([{ seq: readCommittedHead(path).seq }]);
        break;
      }
      expect(kills).toBeGreaterThanOrEqual(3);

      // --follow: entries committed while it runs are applied; SIGTERM stops it cleanly between entries.
      const follower = startPython(['replicate', path, replica, '--follow', '--poll-ms', '20']);
      let followOut = '';
      let followErr = '';
      follower.stdout!.on('data', (data) => (followOut += data));
      follower.stderr!.on('data', (data) => (followErr += data));
      for (let index = TRANSACTIONS + 1; index <= TRANSACTIONS + 6; index++) await step(index);
      const head = readCommittedHead(path);
      const deadline = performance.now() + 20_000;
      while (replicaSeq(replica) < head.seq && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const exited = new Promise<number | null>((resolve) => follower.on('exit', (code) => resolve(code)));
      follower.kill('SIGTERM');
      expect(await exited, followErr).toBe(0);
      expect(parseResult(0, followOut, followErr).lines).toMatchObject([{ seq: head.seq, hash: head.hash }]);

      const primary = dumpState(path);
      expect(dumpState(replica)).toEqual(primary);
      expect(ftsAnswers(replica)).toEqual(ftsAnswers(path));
      checkIntegrity(replica, join(dir, 'scratch.db'));

      // log and verify print what changetrail's own CLI prints.
      const nodeLog = cli(['log', path, '--json']);
      expect(nodeLog.code, nodeLog.stderr).toBe(0);
      const nodeLines = nodeLog.stdout.split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line) as unknown);
      expect(nodeLines.length).toBe(head.seq);
      expect(runPython(['log', path]).lines).toEqual(nodeLines);
      expect(runPython(['log', `${path}.changes`, '--from', '5', '--to', '9']).lines).toEqual(nodeLines.slice(4, 9));
      const nodeVerify = cli(['verify', path, '--json']);
      expect(nodeVerify.code, nodeVerify.stderr).toBe(0);
      expect(runPython(['verify', path]).lines).toEqual([JSON.parse(nodeVerify.stdout)]);

      const nodeReplay = join(dir, 'node-replay.db');
      replayJournal(openJournal(`${path}.changes`, head), nodeReplay);
      expect(dumpState(nodeReplay)).toEqual(primary);

      const nodeReplicaPath = join(dir, 'node-replica.db');
      const nodeReplica = await openReplica(nodeReplicaPath, { source: path });
      await nodeReplica.sync();
      await nodeReplica.close();
      expect(dumpState(nodeReplicaPath)).toEqual(dumpState(replica));

      // The two followers share the replica's position table: the Node follower continues the Python one.
      await step(TRANSACTIONS + 7);
      await step(TRANSACTIONS + 8);
      const continued = await openReplica(replica, { source: path });
      await continued.sync();
      expect(continued.status().appliedSeq).toBe(readCommittedHead(path).seq);
      await continued.close();
      expect(dumpState(replica)).toEqual(dumpState(path));
    } finally {
      await trail.close();
    }
  });

  it('err: a replica of another journal, a file that is not a replica, a diverged history, a symlinked journal file and a database older than its journal are refused', async () => {
    const a = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);');
    const b = await tempTrail('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);');
    try {
      await a.trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'a')`));
      await b.trail.write((db) => db.exec(`INSERT INTO t VALUES (1, 'b')`));
      const replica = join(a.dir, 'replica.db');
      expect(runPython(['replicate', a.path, replica]).error).toBeNull();
      expect(runPython(['replicate', b.path, replica]).error?.code).toBe('REPLICA_SOURCE_MISMATCH');
      expect(runPython(['replicate', a.path, b.path]).error?.code).toBe('REPLICA_NOT_A_REPLICA');
      // Rewrite the replica's position hash: it no longer names the journal's entry 1.
      const db = new DatabaseSync(replica);
      db.exec(`UPDATE _changetrail_replica SET hash = '${'00'.repeat(32)}'`);
      db.close();
      expect(runPython(['replicate', a.path, replica]).error?.code).toBe('REPLICA_DIVERGED');
      // A journal file replaced by a symlink is refused, by the Python reader as by changetrail's.
      const head = join(`${a.path}.changes`, 'head');
      renameSync(head, join(a.dir, 'head.real'));
      symlinkSync(join(a.dir, 'head.real'), head);
      expect(runPython(['log', a.path]).error?.code).toBe('JOURNAL_FILE_UNEXPECTED');
      expect(runPython(['verify', `${a.path}.changes`]).error?.code).toBe('JOURNAL_FILE_UNEXPECTED');
      expect(jsonError(cli(['log', a.path, '--json'])).code).toBe('JOURNAL_FILE_UNEXPECTED');
      renameSync(join(a.dir, 'head.real'), head);
      // A database older than its journal (FORMAT.md §7): restored from a copy taken two entries ago.
      const old = join(b.dir, 'old.db');
      const copy = new DatabaseSync(b.path, { readOnly: true });
      copy.prepare('VACUUM INTO ?').run(old); // not a file copy: closing a descriptor of b.path here would drop the trail's locks
      copy.close();
      await b.trail.write((db) => db.exec(`INSERT INTO t VALUES (2, 'b')`));
      await b.trail.write((db) => db.exec(`INSERT INTO t VALUES (3, 'b')`));
      cpSync(`${b.path}.changes`, `${old}.changes`, { recursive: true });
      expect(runPython(['log', old]).error?.code).toBe('DATABASE_BEHIND_JOURNAL');
      expect(runPython(['log', b.path]).lines).toHaveLength(3);
    } finally {
      await a.trail.close();
      await b.trail.close();
    }
  });
});
