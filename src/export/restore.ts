/**
 * Point-in-time restore: an ordinary SQLite file holding the user's tables exactly as they were after a
 * given entry, built from the journal's base state (genesis, a resync snapshot, or a stamped backup) by
 * replaying every entry after it exactly (journal/REPLAY.md), each verified against the hash chain.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { GENESIS_FILE } from '../journal/format.js';
import { listDirectory } from '../journal/files.js';
import type { JournalEntry } from '../journal/journal.js';
import type { Position } from '../journal/position.js';
import { combineChangesets } from '../changeset/index.js';
import { applyChangesetExactlyInTransaction, applyEntryExactly } from '../apply/apply-entry.js';
import { RowidMerge } from './rowid-merge.js';
import { verifySnapshot } from '../apply/replay.js';
import { openReplayDatabase } from '../apply/replay-guard.js';
import { dropChangetrailTables, readBackupStamp } from './backup.js';
import { JournalSource, sourcePaths, type TrailSource } from './journal-source.js';
import { nearestBaseState } from '../journal/retention-checkpoints.js';
import { pinWhileReading } from '../journal/retention-pins.js';
import { OutputFile } from './output-file.js';
import { resolvePosition, type PositionSpec, type ResolvedPosition } from './resolve-position.js';

/**
 * Write entries combined into one exact apply. The per-apply cost (shape checks, trigger suspension, a
 * savepoint) is ~250 µs against ~40 µs for the rows of a one-row entry (measured, 20,000 entries), so
 * batching is what brings restore near a plain replay; the byte bound keeps the combined changeset small.
 */
const BATCH_ENTRY_COUNT_MAX = 2000;
const BATCH_BYTES_MAX = 32 * 1024 * 1024;
const SNAPSHOT_NAME = /^snapshot-(\d+)\.db$/;

export interface RestoreProgress {
  /** Entries applied so far. */
  readonly applied: number;
  /** Entries to apply in all. */
  readonly total: number;
  readonly seq: number;
}

export interface RestoreOptions {
  /** The entry to restore to: a seq, an entry hash prefix or `@<time>` (the last entry at or before it). */
  at: PositionSpec;
  /** Replace an existing output file. */
  force?: boolean;
  /** Start from this stamped backup (see `backup`) instead of genesis: only the entries after it are applied. */
  from?: string;
  /** Called about every 100 ms while entries are applied. */
  onProgress?: (progress: RestoreProgress) => void;
}

export interface RestoreResult {
  /** The restored database file. */
  readonly path: string;
  /** What `at` resolved to: the state of the output. */
  readonly at: ResolvedPosition;
  /** The base it started from: genesis (seq 0), a checkpoint, a resync snapshot or a backup. */
  readonly base: { readonly kind: 'genesis' | 'checkpoint' | 'snapshot' | 'backup'; readonly seq: number; readonly file: string };
  /** Entries applied on top of the base. */
  readonly applied: number;
}

/**
 * Builds `out` as the database as of entry `at`: the user's tables (changetrail's own table left out),
 * digest-equal to what the source held after that entry. Starts from `genesis.db` or, with `from`, a
 * stamped backup at or before `at` (its stamp proven against the chain), replaces the state with a resync
 * entry's snapshot where one occurs, and applies every other entry exactly. The file is built under a
 * temporary name, checked with `PRAGMA integrity_check`, fsynced and renamed into place.
 *
 * @example
 * const result = await restoreTo('app.db', 'app-at-41.db', { at: 41 });
 * @throws RangeError for a malformed position.
 * @throws ChangetrailError OUTPUT_EXISTS, POSITION_NOT_FOUND, POSITION_AMBIGUOUS, BACKUP_MISMATCH,
 *   INTEGRITY_CHECK_FAILED, CHANGESET_CONFLICT (a base that is not what the journal says), JOURNAL_* (a damaged
 *   journal or snapshot), IO_ERROR, SQLITE_ERROR.
 */
export async function restoreTo(source: TrailSource, out: string, options: RestoreOptions): Promise<RestoreResult> {
  // Pinned before the journal is opened: no prune removes what this restore plans to read (retention-pins.ts).
  const pin = pinWhileReading(sourcePaths(source).journalDir, 'restore');
  try {
    return await restorePinned(source, out, options);
  } finally {
    pin?.release();
  }
}

async function restorePinned(source: TrailSource, out: string, options: RestoreOptions): Promise<RestoreResult> {
  const journal = JournalSource.open(source);
  const at = resolvePosition(journal, options.at);
  const output = OutputFile.prepare(out, options.force === true);
  try {
    const base = prepareBase(journal, at.position, output.temp, options.from);
    const applied = replayOnto(journal, output.temp, base.seq, at.position.seq, options.onProgress);
    finish(output.temp);
    output.commit();
    return { path: output.path, at, base, applied };
  } catch (error) {
    output.discard();
    throw error;
  }
}

/**
 * Builds the state at `at` in `path` (a new, private file) from the journal's nearest base, without the
 * final checks: the scratch state of exports that need whole rows. Returns the entries applied.
 */
export function buildState(journal: JournalSource, at: Position, path: string): number {
  // Callers opened `journal` before this pin: a prune that ran since may hold back only what it saw pinned.
  const base = prepareBase(journal, at, path, undefined);
  return replayOnto(journal, path, base.seq, at.seq, undefined);
}

function prepareBase(journal: JournalSource, at: Position, temp: string, from: string | undefined): RestoreResult['base'] {
  if (from === undefined) {
    // The nearest base state: a checkpoint (or a pruned journal's base) or a later resync snapshot.
    const base = nearestBaseState(journal.journal, at.seq);
    const snapshot = nearestSnapshot(journal, at.seq);
    if (snapshot !== null && snapshot.seq >= base.seq) {
      copyFileSync(join(journal.journalDir, snapshot.file), temp);
      return { kind: 'snapshot', seq: snapshot.seq, file: join(journal.journalDir, snapshot.file) };
    }
    verifySnapshot(journal.journalDir, base.ref.file, base.ref.sha256, base.ref.size);
    copyFileSync(join(journal.journalDir, base.ref.file), temp);
    return { kind: base.ref.file === GENESIS_FILE ? 'genesis' : 'checkpoint', seq: base.seq, file: join(journal.journalDir, base.ref.file) };
  }
  const stamp = readBackupStamp(from);
  if (stamp === null) throw new ChangetrailError('BACKUP_MISMATCH', `restore from ${from}: the file has no backup stamp`, { path: from, reason: 'no stamp' });
  if (stamp.journalId !== at.journalId) {
    throw new ChangetrailError('BACKUP_MISMATCH', `restore from ${from}: the backup belongs to journal ${stamp.journalId}`, { path: from, reason: 'another journal', seq: stamp.seq });
  }
  if (stamp.seq > at.seq) {
    throw new ChangetrailError('BACKUP_MISMATCH', `restore from ${from}: the backup is at entry ${stamp.seq}, after entry ${at.seq}`, { path: from, reason: 'backup is later than the target', seq: stamp.seq });
  }
  if (journal.positionAt(stamp.seq).hash !== stamp.hash) {
    throw new ChangetrailError('BACKUP_MISMATCH', `restore from ${from}: entry ${stamp.seq} of the journal is not the entry the backup was taken at`, { path: from, reason: 'hash differs', seq: stamp.seq });
  }
  copyFileSync(from, temp);
  const db = new DatabaseSync(temp);
  try {
    dropChangetrailTables(db);
  } finally {
    db.close();
  }
  return { kind: 'backup', seq: stamp.seq, file: from };
}

/**
 * The snapshot of the latest resync entry at or before `seq`, verified, or null. Snapshot files are named
 * after their entry (`snapshot-<seq>.db`), so only the chosen one's entry is read.
 */
function nearestSnapshot(journal: JournalSource, seq: number): { seq: number; file: string } | null {
  const candidates = listDirectory(journal.journalDir)
    .map((name) => ({ name, seq: Number(SNAPSHOT_NAME.exec(name)?.[1] ?? NaN) }))
    .filter((candidate) => Number.isSafeInteger(candidate.seq) && candidate.seq > (journal.base?.seq ?? 0) && candidate.seq <= seq)
    .sort((a, b) => b.seq - a.seq);
  for (const candidate of candidates) {
    const entry = journal.journal.entry(candidate.seq);
    if (entry.kind !== 'resync' || entry.snapshot?.file !== candidate.name) continue;
    verifySnapshot(journal.journalDir, entry.snapshot.file, entry.snapshot.sha256, entry.snapshot.size);
    return { seq: entry.seq, file: entry.snapshot.file };
  }
  return null;
}

/**
 * Applies entries `after+1..to` to the file. The target is private until renamed, so it runs without
 * fsync and with the rollback journal in memory; foreign keys stay off (the journal holds every cascade).
 * Consecutive write entries are verified one by one as they are read, then applied as one batch: their
 * changesets combined (sqlite3changegroup: the same effect as applying them in turn, each row written once)
 * and their rowid records merged, applied exactly in one transaction. Only the state at `to` is kept, so
 * nothing is lost by not materialising the states in between.
 */
function replayOnto(journal: JournalSource, temp: string, after: number, to: number, onProgress: RestoreOptions['onProgress']): number {
  let db = openTarget(temp);
  const total = Math.max(0, to - after);
  const batch = new WriteBatch();
  let applied = 0;
  let reportedAt = performance.now();
  try {
    for (const entry of journal.entries(after + 1, to)) {
      if (entry.kind === 'write') {
        batch.add(entry);
        if (batch.full()) batch.apply(db);
      } else if (entry.kind !== 'checkpoint') {
        batch.apply(db);
        db = applyWhole(db, journal, entry, temp);
      }
      applied += 1;
      if (onProgress !== undefined && performance.now() - reportedAt >= 100) {
        reportedAt = performance.now();
        onProgress({ applied, total, seq: entry.seq });
      }
    }
    batch.apply(db);
    onProgress?.({ applied, total, seq: to });
  } finally {
    if (db.isTransaction) db.exec('ROLLBACK');
    db.close();
  }
  return applied;
}

/** Consecutive write entries waiting to be applied together. */
class WriteBatch {
  #changesets: Uint8Array[] = [];
  #rowids = new RowidMerge();
  #hasRowids = false;
  #bytes = 0;
  #entries = 0;
  #lastSeq = 0;

  add(entry: JournalEntry): void {
    if (entry.changeset.byteLength > 0) this.#changesets.push(entry.changeset);
    if (entry.rowids !== undefined) {
      this.#rowids.add(entry.rowids, { file: entry.file, offset: entry.offset, seq: entry.seq });
      this.#hasRowids = true;
    }
    this.#bytes += entry.changeset.byteLength;
    this.#entries += 1;
    this.#lastSeq = entry.seq;
  }

  full(): boolean {
    return this.#entries >= BATCH_ENTRY_COUNT_MAX || this.#bytes >= BATCH_BYTES_MAX;
  }

  apply(db: DatabaseSync): void {
    if (this.#entries === 0) return;
    const changeset = this.#changesets.length === 1 ? this.#changesets[0]! : combineChangesets(this.#changesets);
    const rowids = this.#hasRowids ? this.#rowids.encode() : undefined;
    db.exec('BEGIN IMMEDIATE');
    try {
      applyChangesetExactlyInTransaction(db, changeset, { seq: this.#lastSeq, ...(rowids === undefined ? {} : { rowids }) });
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
    this.#changesets = [];
    this.#rowids = new RowidMerge();
    this.#hasRowids = false;
    this.#bytes = 0;
    this.#entries = 0;
  }
}

/** The replay guard's connection (journal SQL is untrusted), with foreign keys off for the whole replay. */
function openTarget(path: string): DatabaseSync {
  const db = openReplayDatabase(path);
  db.exec('PRAGMA foreign_keys = OFF; PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF');
  return db;
}

/** A schema entry (replayed in its own transaction) or a resync entry (the state becomes its snapshot). */
function applyWhole(db: DatabaseSync, journal: JournalSource, entry: JournalEntry, temp: string): DatabaseSync {
  if (entry.kind === 'schema') {
    applyEntryExactly(db, { kind: 'schema', changeset: entry.changeset, sql: entry.sql ?? '', seq: entry.seq, ...(entry.rowids === undefined ? {} : { rowids: entry.rowids }) });
    return db;
  }
  const snapshot = entry.snapshot!;
  verifySnapshot(journal.journalDir, snapshot.file, snapshot.sha256, snapshot.size);
  db.close();
  copyFileSync(join(journal.journalDir, snapshot.file), temp);
  return openTarget(temp);
}

/** integrity_check, then back to an ordinary rollback-journal database. */
function finish(temp: string): void {
  const db = new DatabaseSync(temp);
  try {
    const problems = db.prepare('PRAGMA integrity_check').all().map((row) => String(row.integrity_check));
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new ChangetrailError('INTEGRITY_CHECK_FAILED', `restore: integrity_check of the result failed: ${problems.slice(0, 3).join('; ')}`, { path: temp, problems: problems.slice(0, 100) });
    }
    db.exec('PRAGMA journal_mode = DELETE');
  } finally {
    db.close();
  }
}
