/** Helpers for replica tests: real primaries with journals, digests of both sides, a follower process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, expect } from 'vitest';
import { rmSync } from 'node:fs';
import { digestTables } from '../../src/apply/digest.js';
import { replayJournal } from '../../src/apply/replay.js';
import { openJournal, readCommittedHead } from '../../src/journal/journal.js';
import { openReplica, openTrail, type Replica, type Trail } from '../../src/index.js';
import { tempDir } from '../helpers/db.js';

export const FOLLOWER = new URL('./fixtures/follower.mjs', import.meta.url).pathname;

export interface Primary {
  trail: Trail;
  path: string;
  dir: string;
  replicaPath: string;
}

export async function tempPrimary(setupSql: string): Promise<Primary> {
  const dir = tempDir('ct-replica-');
  const path = join(dir, 'app.db');
  const db = new DatabaseSync(path);
  db.exec(setupSql);
  db.close();
  const trail = await openTrail(path, { lock: { staleMs: 2000, heartbeatMs: 400, timeoutMs: 20_000 } });
  return { trail, path, dir, replicaPath: join(dir, 'replica.db') };
}

/**
 * Table name → digest of every recorded table, shadow tables included (changetrail's own excluded).
 * Opened read-write (nothing is written): a killed follower leaves a hot journal only such a connection
 * rolls back.
 */
/**
 * Primaries (over `setupSql`) and replicas a test file opens, each closed after its test: `primary()`,
 * and `replicaOf(p, options?, path?)` following `p` with a 50 ms poll unless the options say otherwise;
 * `open` is the list itself, for what a test opens another way (or closes itself).
 */
export function primariesAndReplicas(setupSql: string): {
  open: (Replica | Primary)[];
  primary: () => Promise<Primary>;
  replicaOf: (p: Primary, options?: Partial<Parameters<typeof openReplica>[1]>, path?: string) => Promise<Replica>;
} {
  const open: (Replica | Primary)[] = [];
  afterEach(async () => {
    for (const item of open.splice(0)) {
      if ('trail' in item) await item.trail.close();
      else await item.close();
    }
  });
  return {
    open,
    async primary() {
      const p = await tempPrimary(setupSql);
      open.push(p);
      return p;
    },
    async replicaOf(p, options = {}, path = p.replicaPath) {
      const r = await openReplica(path, { source: p.path, pollIntervalMs: 50, ...options });
      open.push(r);
      return r;
    },
  };
}

export function digestFile(path: string): Map<string, string> {
  const db = new DatabaseSync(path);
  try {
    return digestTables(db);
  } finally {
    db.close();
  }
}

/** The replica holds exactly the primary's rows, and is a sound database. */
export function expectReplicaEquals(primaryPath: string, replicaPath: string): void {
  expect(Object.fromEntries(digestFile(replicaPath))).toEqual(Object.fromEntries(digestFile(primaryPath)));
  const db = new DatabaseSync(replicaPath, { readOnly: true });
  try {
    expect(db.prepare('PRAGMA integrity_check').all()).toEqual([{ integrity_check: 'ok' }]);
  } finally {
    db.close();
  }
}

export interface FollowerRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Seqs the follower reported as committed ("applied <seq>" lines). */
  applied: number[];
  error: { code?: string; details?: unknown } | null;
}

/** Runs the follower fixture: `mode` 'sync' catches up and exits; 'follow' follows until SIGTERM. */
export function runFollower(
  source: string, replica: string, mode: 'sync' | 'follow', env: Record<string, string> = {}, onLine?: (line: string) => void, onSpawn?: (child: ChildProcess) => void,
): Promise<FollowerRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [FOLLOWER, source, replica, mode], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.on('data', (data) => {
      stdout += data;
      pending += data;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) onLine?.(line);
    });
    child.stderr.on('data', (data) => (stderr += data));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const lines = stdout.split('\n');
      const applied = lines.filter((l) => l.startsWith('applied ')).map((l) => Number(l.slice(8)));
      const errorLine = lines.find((l) => l.startsWith('error '));
      resolvePromise({ code, signal, stdout, stderr, applied, error: errorLine === undefined ? null : JSON.parse(errorLine.slice(6)) });
    });
  });
}

const references = new Map<string, Map<string, string>>();

/** The digest of the primary's state after entry `seq`, replayed from its journal (cached). */
export function referenceAt(primaryPath: string, seq: number): Map<string, string> {
  const key = `${primaryPath}@${seq}`;
  const cached = references.get(key);
  if (cached !== undefined) return cached;
  const dir = `${primaryPath}.changes`;
  const journal = openJournal(dir, openJournal(dir, readCommittedHead(primaryPath)).positionAt(seq));
  const target = join(tempDir('ct-reference-'), 'state.db');
  replayJournal(journal, target);
  const digest = digestFile(target);
  rmSync(target, { force: true });
  references.set(key, digest);
  return digest;
}

/** The seq a replica's position row names (read-write: rolls back a killed transaction first). */
export function storedSeq(path: string): number {
  const db = new DatabaseSync(path);
  try {
    return Number(db.prepare('SELECT seq FROM _changetrail_replica').get()!.seq);
  } finally {
    db.close();
  }
}
