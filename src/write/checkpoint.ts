/**
 * Checkpoints (issue 16, journal/FORMAT.md §11): a snapshot of the user's tables as of entry N, bound into
 * the chain by a `checkpoint` entry naming N, N's hash and the snapshot's digest, so that verification,
 * restore and new replicas can start at N instead of at genesis, and history before N can be pruned.
 *
 * The snapshot is taken without the admission lock, by a read-only connection (`VACUUM INTO`, one read
 * transaction): the copy carries the head row as it was in that transaction, which names exactly the
 * entry N the copied tables are the state of. Only then is the lock taken, for a write as small as any
 * other: check that N is still in this history, rename the snapshot to `checkpoint-<seq>.db`, append the
 * entry. Writers go on while the copy is made (in WAL mode; in rollback-journal mode SQLite's own shared
 * lock holds their COMMIT for the copy's duration, as it does for any reader).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { crashpointNamed } from '../crashpoint.js';
import { ChangetrailError } from '../errors.js';
import { fromHex, toHex } from '../journal/bytes.js';
import { checkpointFileName, type JsonValue, type SnapshotRef } from '../journal/entry.js';
import { fsyncDirectory, fsyncFile, io, journalFileMode } from '../journal/files.js';
import type { Journal } from '../journal/journal.js';
import { positionOf, type Position } from '../journal/position.js';
import { digestSnapshotFile } from '../apply/snapshot-digest.js';
import type { CommitRequest } from './commit.js';
import type { Entry } from './entry-view.js';
import { HEAD_TABLE, readHead } from './head-row.js';

/** Crash points of a checkpoint, in the order it reaches them (test/write/checkpoint-crash.test.ts). */
export const CHECKPOINT_CRASH_POINTS = ['checkpoint-after-copy', 'checkpoint-after-prepare', 'checkpoint-after-install'] as const;

/** Temporary snapshot files of checkpoints in progress (or of killed ones: prune removes old ones). */
export const CHECKPOINT_TEMP = /^\.checkpoint\.(\d{1,10})\.[0-9a-f]{12}\.tmp$/;

export interface CheckpointOptions {
  actor?: string | null;
  message?: string | null;
  meta?: Record<string, JsonValue> | null;
}

/** What `trail.checkpoint()` made: its entry, the state it holds (`at`) and the snapshot file. */
export interface CheckpointResult {
  readonly entry: Entry;
  /** The entry whose state the snapshot holds. */
  readonly at: Position;
  readonly snapshot: { readonly file: string; readonly sha256: string; readonly size: number };
}

/** What the trail lends a checkpoint: its files, its admitted-write path and its journal at a head. */
export interface CheckpointContext {
  readonly path: string;
  readonly journalDir: string;
  readonly defaultActor: string | null;
  /** Runs `request` as an admitted write (`Trail.#admitted`). */
  commit(request: CommitRequest): Promise<Entry | null>;
  /** The journal anchored to the head committed in `db` now. */
  journalAt(db: DatabaseSync): Journal;
  /** The newest checkpoint (its entry's seq and the seq whose state it holds), or null (read without the lock). */
  newestCheckpoint(): { entrySeq: number; atSeq: number } | null;
  /** The committed head, read without the lock. */
  committedHead(): Position;
}

/** A snapshot made outside the lock, waiting to be bound. */
interface PreparedSnapshot {
  readonly temp: string;
  readonly at: Position;
  readonly sha256: Uint8Array;
  readonly size: number;
}

/**
 * Takes a checkpoint: snapshot without the lock, then bind with one small admitted write. Returns null
 * when there is nothing new to record: no entry yet (genesis is the state at 0), or the newest checkpoint
 * already holds the committed head.
 *
 * @throws ChangetrailError FOREIGN_WRITE_DETECTED (the database was changed outside changetrail: resync
 *   first), POSITION_MISMATCH (the database was replaced meanwhile), the errors of `write`, IO_ERROR.
 */
export async function takeCheckpoint(context: CheckpointContext, options: CheckpointOptions = {}): Promise<CheckpointResult | null> {
  const head = context.committedHead();
  const newest = context.newestCheckpoint();
  // Checkpoint entries change nothing: one at the head holds the head's state already.
  const holds = (seq: number) => seq === 0 || (newest !== null && (newest.entrySeq === seq || newest.atSeq >= seq));
  if (holds(head.seq)) return null;
  const prepared = await prepareSnapshot(context.path, context.journalDir);
  try {
    if (holds(prepared.at.seq)) return null;
    let installed: SnapshotRef | null = null;
    const entry = await context.commit({
      kind: 'checkpoint', bodyMode: 'internal', at: { seq: prepared.at.seq, hash: fromHex(prepared.at.hash) },
      actor: options.actor === undefined ? context.defaultActor : options.actor, message: options.message ?? null, meta: options.meta ?? null,
      run: (db) => checkStillInHistory(context.journalAt(db), db, prepared.at),
      snapshot: (seq) => (installed = install(context.journalDir, prepared, seq)),
    });
    if (entry === null || installed === null) throw new Error('checkpoint: the entry was not journaled');
    const ref: SnapshotRef = installed;
    return { entry, at: prepared.at, snapshot: { file: ref.file, sha256: toHex(ref.sha256), size: ref.size } };
  } finally {
    rmSync(prepared.temp, { force: true });
  }
}

/**
 * `VACUUM INTO` a temporary file of the journal directory from a read-only connection (one read
 * transaction), then read which entry the copy is the state of from its own head row and drop the row:
 * snapshots hold user tables only, like genesis.db.
 */
async function prepareSnapshot(databasePath: string, dir: string): Promise<PreparedSnapshot> {
  // Named with the pid: a prune removes the temporary file of a killed checkpoint at once (prune.ts).
  const temp = join(dir, `.checkpoint.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await vacuumInto(databasePath, temp);
  } catch (cause) {
    rmSync(temp, { force: true });
    throw new ChangetrailError('IO_ERROR', `checkpoint: snapshot ${databasePath}: ${(cause as Error).message}`, { operation: 'checkpoint snapshot', path: temp }, { cause });
  }
  try {
    crashpointNamed('checkpoint-after-copy');
    const at = headOfCopy(temp);
    io('checkpoint snapshot', temp, () => {
      chmodSync(temp, journalFileMode(dir)); // SQLite creates it 0644: no wider than the database (issue 9 §2.3)
      fsyncFile(temp);
    });
    crashpointNamed('checkpoint-after-prepare');
    return { temp, at, ...digestSnapshotFile(temp) };
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

/**
 * The copy runs in a worker thread: node:sqlite is synchronous, and copying a large database on the main
 * thread would stall every write this process queues meanwhile. A killed process takes the worker along.
 */
const VACUUM_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
let db;
try {
  db = new DatabaseSync(workerData.database, { readOnly: true, timeout: workerData.timeoutMs });
  db.prepare('VACUUM INTO ?').run(workerData.target);
  parentPort.postMessage({ ok: true });
} catch (error) {
  parentPort.postMessage({ ok: false, message: String(error && error.message) });
} finally {
  if (db !== undefined) db.close();
}`;

function vacuumInto(database: string, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(VACUUM_WORKER, { eval: true, workerData: { database, target, timeoutMs: 5_000 } });
    worker.once('message', (message: { ok: boolean; message?: string }) => (message.ok ? resolve() : reject(new Error(message.message))));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the snapshot worker exited (${code})`)));
  });
}

function headOfCopy(path: string): Position {
  const copy = new DatabaseSync(path);
  try {
    const row = copy.prepare(`SELECT journal_id, seq, hash FROM ${HEAD_TABLE} WHERE id = 1`).get();
    if (row === undefined || typeof row.journal_id !== 'string' || typeof row.seq !== 'number' || !(row.hash instanceof Uint8Array)) {
      throw new ChangetrailError('JOURNAL_MISMATCH', `checkpoint: the database has no ${HEAD_TABLE} row`, { databaseJournalId: null, journalJournalId: null, reason: 'head row missing or malformed' });
    }
    // No VACUUM: the table's one freed page is not worth rewriting a large snapshot (as genesis.ts).
    copy.exec(`DROP TABLE ${HEAD_TABLE}`);
    return positionOf(row.journal_id, row.seq, row.hash);
  } finally {
    copy.close();
  }
}

/**
 * Under the lock: entry `at` must still be this database's history (the database was not replaced or
 * restored from another copy since the snapshot). Costs reading the entries committed since the snapshot.
 */
function checkStillInHistory(journal: Journal, db: DatabaseSync, at: Position): void {
  const head = readHead(db);
  const found = head.journalId !== at.journalId || head.seq < at.seq ? null : journal.positionAt(at.seq).hash;
  if (found !== at.hash) {
    throw new ChangetrailError('POSITION_MISMATCH', `checkpoint: entry ${at.seq} is no longer the database's history (it was replaced while the snapshot was taken)`, {
      seq: at.seq, expectedHash: at.hash, foundHash: found ?? '',
    });
  }
}

/** Inside the binding transaction: the snapshot becomes `checkpoint-<seq>.db`, durably. */
function install(dir: string, prepared: PreparedSnapshot, seq: number): SnapshotRef {
  const file = checkpointFileName(seq);
  io('install checkpoint', join(dir, file), () => renameSync(prepared.temp, join(dir, file)));
  fsyncDirectory(dir);
  crashpointNamed('checkpoint-after-install');
  return { file, sha256: prepared.sha256, size: prepared.size };
}
