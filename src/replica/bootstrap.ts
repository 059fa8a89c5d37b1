/**
 * Giving a replica a base state: a new replica file made from a snapshot (genesis, or the newest resync
 * snapshot so that history before it is skipped), and the atomic rebase of an existing replica onto a
 * snapshot (resync entries, `--rebuild`).
 *
 * Both first build the complete new state in a temporary file beside the replica — the verified snapshot
 * plus the position row — so that content and position always arrive together. A new file is then renamed
 * into place. A rebase copies the temporary file over the live replica with SQLite's backup API, which
 * writes the destination in one transaction: readers see the old state or the new one, never a mix, and
 * a crash mid-copy is rolled back from the destination's journal by the next open.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { backup, DatabaseSync } from 'node:sqlite';
import { ChangeCounterReader, nextChangeCounter } from '../apply/change-counter.js';
import { ChangetrailError } from '../errors.js';
import { fsyncDirectory, io } from '../journal/files.js';
import { replicaCrashpoint } from './crashpoints.js';
import { writeReplicaRow } from './position-table.js';
import type { ReplicaSource, SourceSnapshot } from './source.js';

/**
 * Pages copied per backup step (1 MiB of 4 KiB pages); progress (and the mid-copy crash point) comes
 * between steps. The destination stays write-locked from the first step to the last, so the steps are
 * one transaction there (a kill between them is rolled back: test/replica/crash.test.ts).
 */
const BACKUP_PAGES_PER_STEP = 256;
/** Retries of a rebase whose backup met a busy destination (a reader holding its lock). */
const BACKUP_ATTEMPTS_MAX = 50;
const BACKUP_RETRY_MS = 20;

/** The temporary files a build may leave behind after a crash (removed before each build). */
export function temporaryPaths(replicaPath: string): string[] {
  const base = join(dirname(replicaPath), `.${basename(replicaPath)}.changetrail-base.tmp`);
  return [base, `${base}-journal`];
}

/**
 * Creates the replica file at `replicaPath` from `snapshot` (replacing whatever is there: the caller
 * decided it may).
 */
export async function createReplicaFile(replicaPath: string, source: ReplicaSource, snapshot: SourceSnapshot): Promise<void> {
  const temp = await buildBase(replicaPath, source, snapshot, (path) => {
    const counter = new ChangeCounterReader(path, 'delete').read();
    return counter === null ? null : nextChangeCounter(counter);
  });
  io('install replica', replicaPath, () => {
    for (const suffix of ['-journal', '-wal', '-shm']) rmSync(`${replicaPath}${suffix}`, { force: true });
    renameSync(temp, replicaPath);
  });
  fsyncDirectory(dirname(replicaPath));
}

/**
 * Replaces the content of the replica with `snapshot`, atomically. The follower's own connection must be
 * open (the change counter is read through its descriptor) and idle. Returns the change counter the
 * follower should expect afterwards.
 */
export async function rebaseReplica(replicaPath: string, source: ReplicaSource, snapshot: SourceSnapshot): Promise<number | null> {
  const live = new ChangeCounterReader(replicaPath, 'delete');
  let expected: number | null = null;
  // The backup commits once to the destination, which bumps the destination's counter by one (observed,
  // SQLite 3.53.4); the position row in the copied content must name that value.
  const temp = await buildBase(replicaPath, source, snapshot, () => {
    const counter = live.read();
    expected = counter === null ? null : nextChangeCounter(counter);
    return expected;
  });
  const base = new DatabaseSync(temp, { readOnly: true });
  try {
    replicaCrashpoint('replica-rebase-before-backup');
    await backupWithRetry(base, replicaPath);
    replicaCrashpoint('replica-rebase-after-backup');
  } finally {
    base.close();
    for (const path of temporaryPaths(replicaPath)) rmSync(path, { force: true });
  }
  return expected;
}

/** Builds snapshot + position row in the temporary file; returns its path. */
async function buildBase(replicaPath: string, source: ReplicaSource, snapshot: SourceSnapshot, counterAfter: (temp: string) => number | null): Promise<string> {
  const [temp] = temporaryPaths(replicaPath) as [string];
  for (const path of temporaryPaths(replicaPath)) rmSync(path, { force: true });
  await source.copySnapshot(snapshot.ref, temp);
  const db = new DatabaseSync(temp, { enableForeignKeyConstraints: false });
  try {
    const mode = db.prepare('PRAGMA journal_mode = DELETE').get();
    if (String(mode?.journal_mode).toLowerCase() !== 'delete') throw new Error(`journal_mode stayed ${String(mode?.journal_mode)}`);
    db.exec('BEGIN IMMEDIATE');
    db.prepare('SELECT 1 FROM sqlite_schema LIMIT 1').get();
    writeReplicaRow(db, { position: snapshot.position, resume: null, source: source.description, changeCounter: counterAfter(temp), appliedAtMs: Date.now() });
    db.exec('COMMIT');
  } catch (cause) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw new ChangetrailError('IO_ERROR', `build replica base ${temp}: ${(cause as Error).message}`, { operation: 'build replica base', path: temp }, { cause });
  } finally {
    db.close();
  }
  io('fsync replica base', temp, () => {
    const fd = openSync(temp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
  return temp;
}

async function backupWithRetry(base: DatabaseSync, replicaPath: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await backup(base, replicaPath, { rate: BACKUP_PAGES_PER_STEP, progress: () => replicaCrashpoint('replica-rebase-mid-backup') });
      return;
    } catch (cause) {
      if (attempt >= BACKUP_ATTEMPTS_MAX) {
        throw new ChangetrailError('SQLITE_ERROR', `rebase ${replicaPath} onto its snapshot: ${(cause as Error).message}`, { operation: 'rebase replica' }, { cause });
      }
      await new Promise((resolve) => setTimeout(resolve, BACKUP_RETRY_MS * Math.min(attempt, 10)));
    }
  }
}
