/**
 * A randomized workload written by 3 real writer processes (composite, TEXT and WITHOUT ROWID keys, an
 * external-content FTS5 index kept by triggers, a trigger-filled audit table, cascades, migrations, undo,
 * a foreign write and its resync) while a real follower process follows with the real watcher — and,
 * in the second case, is SIGKILLed at random moments and restarted. At the end every table of the
 * replica, shadow tables included, equals the primary's, FTS MATCH answers agree, integrity checks pass.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { openTrail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';
import { digestFile, expectReplicaEquals, referenceAt, runFollower, storedSeq, type FollowerRun } from './helpers.js';
// @ts-expect-error: a plain ESM fixture without types
import { SCHEMA, WORDS } from './fixtures/workload-writer.mjs';

const WRITER = new URL('./fixtures/workload-writer.mjs', import.meta.url).pathname;
const QUERIES = [...(WORDS as string[]), 'alpha AND beta', 'gam*', '"delta epsilon"', 'title:zeta', 'iota NOT eta'];

/** Random kills of the follower while writers run; `npm run stress` raises it (CT_REPLICA_KILLS). */
export const RANDOM_KILLS = Number(process.env.CT_REPLICA_KILLS ?? 6);

function startWriter(path: string, index: number, transactions: number, seed: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, path, String(index), String(transactions), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr: `${stderr}\nstdout of writer ${index}: ${stdout.replaceAll('\n', ' ')}` }));
  });
}

async function primary(): Promise<{ path: string; replica: string }> {
  const dir = tempDir('ct-workload-');
  const path = join(dir, 'app.db');
  const db = new DatabaseSync(path);
  db.exec(SCHEMA);
  db.close();
  await (await openTrail(path)).close();
  return { path, replica: join(dir, 'replica.db') };
}

function ftsAnswers(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const statement = db.prepare('SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rowid');
    return QUERIES.map((query) => `${query}=${statement.all(query).map((row) => String(row.rowid)).join(',')}`);
  } finally {
    db.close();
  }
}

function expectSameContent(primaryPath: string, replicaPath: string): void {
  expectReplicaEquals(primaryPath, replicaPath);
  expect(ftsAnswers(replicaPath)).toEqual(ftsAnswers(primaryPath));
  // FTS5's own check needs a writable connection; run it on a copy so the replica stays untouched.
  const copy = `${replicaPath}.check`;
  copyFileSync(replicaPath, copy);
  const db = new DatabaseSync(copy);
  db.exec(`INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')`);
  expect(db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
  db.close();
}

/** The kinds the workload must have produced for the test to mean something. */
function expectEveryKind(path: string): void {
  const journal = openJournal(`${path}.changes`, readCommittedHead(path));
  const kinds = new Set<string>();
  for (const entry of journal.entries()) kinds.add(entry.undoes === undefined ? entry.kind : 'undo');
  expect([...kinds].sort()).toEqual(['resync', 'schema', 'undo', 'write']);
}

async function waitUntilApplied(run: { applied: number[] }, seq: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((run.applied.at(-1) ?? 0) < seq) {
    if (Date.now() > deadline) throw new Error(`follower did not reach entry ${seq} (at ${run.applied.at(-1) ?? 0})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Followers still running when a test ends (it failed): killed in afterEach. */
const running = new Set<ChildProcess>();

afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

/** A follower in follow mode whose applied lines are visible while it runs. */
function follow(path: string, replica: string): { run: Promise<FollowerRun>; applied: number[]; kill: (signal: NodeJS.Signals) => void } {
  const applied: number[] = [];
  let child: ChildProcess | null = null;
  const run = runFollower(path, replica, 'follow', {}, (line) => {
    if (line.startsWith('applied ')) applied.push(Number(line.slice(8)));
  }, (spawned) => {
    child = spawned;
    running.add(spawned);
    spawned.on('exit', () => running.delete(spawned));
  });
  return { run, applied, kill: (signal) => child?.kill(signal) };
}

describe('replica under a randomized multi-process workload', () => {
  it('ok: 3 writers and a following replica end equal in every table, FTS answers and integrity', async () => {
    const { path, replica } = await primary();
    const follower = follow(path, replica);
    await new Promise((r) => setTimeout(r, 300));
    const writers = await Promise.all([0, 1, 2].map((index) => startWriter(path, index, 40, 0x5eed)));
    for (const writer of writers) expect(writer.code, writer.stderr).toBe(0);
    const head = readCommittedHead(path);
    await waitUntilApplied(follower, head.seq, 30_000);
    follower.kill('SIGTERM');
    const result = await follower.run;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expectEveryKind(path);
    expectSameContent(path, replica);
  });

  it(`ok: the follower SIGKILLed at random ${RANDOM_KILLS} times while 3 writers run: never a duplicate or a gap`, async () => {
    const { path, replica } = await primary();
    const writers = Promise.all([0, 1, 2].map((index) => startWriter(path, index, 20 + RANDOM_KILLS * 6, 0x5eed + RANDOM_KILLS)));
    let kills = 0;
    let seed = 12345;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    while (kills < RANDOM_KILLS) {
      const follower = follow(path, replica);
      await new Promise((r) => setTimeout(r, 150 + random() * 600));
      follower.kill('SIGKILL');
      const result = await follower.run;
      expect(result.error, result.stdout + result.stderr).toBeNull();
      if (result.signal !== 'SIGKILL' || !existsSync(replica)) continue;
      kills += 1;
      // Whatever the moment of the kill, the replica is exactly the state at the entry it records.
      const at = storedSeq(replica);
      expect(Object.fromEntries(digestFile(replica)), `kill ${kills} at entry ${at}`).toEqual(Object.fromEntries(referenceAt(path, at)));
    }
    for (const writer of await writers) expect(writer.code, writer.stderr).toBe(0);
    const final = await runFollower(path, replica, 'sync');
    expect(final.code, final.stdout + final.stderr).toBe(0);
    expect(Number(final.stdout.match(/done (\d+)/)![1])).toBe(readCommittedHead(path).seq);
    expectSameContent(path, replica);
  });
});
