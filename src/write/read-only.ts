/**
 * `openTrailReader`: a tracked database opened for reading only, as `log`, `show`, `status` and `verify`
 * use it. The database is opened for reading only (openDatabaseReader: `readOnly`, or `query_only` where that
 * is what leaves no -wal/-shm behind) and its journal mode is never set; journal files
 * are opened read-only; nothing is repaired (no truncation of an uncommitted tail, no head-marker
 * republishing). Read access to the database, its directory and the journal is enough.
 *
 * State only a writer may repair is reported instead (RECOVERY_NEEDED). Bytes past the committed head
 * (an uncommitted frame of a crashed writer) are never read: every read is anchored to the head row.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { openDatabaseReader } from '../journal/database-reader.js';
import { checkJournalFiles, io } from '../journal/files.js';
import { verifyStartingState } from '../journal/retention-checkpoints.js';
import { listSegments } from '../journal/journal-reader.js';
import { openJournal, type EntryRange, type Journal } from '../journal/journal.js';
import { readOutbox, type OutboxFrame } from '../journal/outbox.js';
import { positionOf } from '../journal/position.js';
import { SegmentFile } from '../journal/segment-file.js';
import { digestTables } from '../apply/digest.js';
import { replayJournal, verifySnapshot } from '../apply/replay.js';
import { inspectLock } from '../admission/lock.js';
import { toEntryWithChangeset, type EntryWithChangeset } from './entry-view.js';
import { readHead, type HeadRow } from './head-row.js';
import { SQLITE_BUSY, sqliteErrcode } from './sqlite-errors.js';
import { BEHIND_CHECK_ATTEMPTS, databaseBehind, inspectBeyondHead, verifyCommittedTail, type BeyondHead } from './reconcile.js';
import { canonicalDatabasePath, type TrailStatus, type VerifyReport } from './trail.js';

/** Default busy timeout of a reader: how long it waits for a writer's exclusive lock at COMMIT. */
const BUSY_TIMEOUT_MS = 5_000;
/** SQLITE_READONLY: its extended codes (ROLLBACK 776, RECOVERY 264, CANTINIT 1288...) mean "a writer must repair this first". */
const SQLITE_READONLY = 8;
/** SQLITE_NOTADB: the file is not a database (reported at the first read, not at open). */
const SQLITE_NOTADB = 26;

export interface TrailReaderOptions {
  journalDir?: string;
  busyTimeoutMs?: number;
}

export interface ReaderVerifyOptions {
  /** Also rebuild the database from the journal in a scratch file and compare every table. */
  replay?: boolean;
  /** Where the scratch directory for --replay goes (default: the OS temp directory). Removed afterwards. */
  scratchDir?: string;
  /** Aborting stops the replay and removes the scratch directory; the promise rejects with the reason. */
  signal?: AbortSignal;
}

/**
 * Opens a tracked database for reading only.
 *
 * @throws ChangetrailError JOURNAL_MISMATCH (not tracked, or the journal is missing or another one),
 *   RECOVERY_NEEDED (a crashed writer's hot journal), JOURNAL_BEHIND_DATABASE, JOURNAL_CHAIN_BROKEN, SQLITE_ERROR, IO_ERROR.
 */
export async function openTrailReader(path: string, options: TrailReaderOptions = {}): Promise<TrailReader> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('openTrailReader: path must be a non-empty string');
  const databasePath = io('resolve database path', path, () => canonicalDatabasePath(path));
  const journalDir = resolve(options.journalDir ?? `${databasePath}.changes`);
  const busyTimeoutMs = options.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
  const db = openReadOnly(databasePath, busyTimeoutMs);
  try {
    const reader = new TrailReader(db, databasePath, journalDir, busyTimeoutMs);
    reader.check();
    return reader;
  } catch (error) {
    db.close();
    throw error;
  }
}

function openReadOnly(databasePath: string, timeout: number): DatabaseSync {
  try {
    return openDatabaseReader(databasePath, { timeoutMs: timeout });
  } catch (error) {
    throw readError(databasePath, 'open', error, timeout);
  }
}

/** A SQLite failure of a read-only connection as a coded error. */
function readError(databasePath: string, operation: string, error: unknown, busyTimeoutMs: number): unknown {
  if (error instanceof ChangetrailError || error instanceof TypeError || error instanceof RangeError) return error;
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  const message = (error as Error)?.message ?? String(error);
  if (typeof errcode === 'number' && (errcode & 0xff) === SQLITE_READONLY && errcode !== SQLITE_READONLY) {
    return new ChangetrailError('RECOVERY_NEEDED',
      `${operation} ${databasePath}: a writer crashed and left changes that must be rolled back (${message}); reading commands never write, so nothing was changed`,
      { path: databasePath, reason: message }, { cause: error });
  }
  if (typeof errcode === 'number' && (errcode & 0xff) === SQLITE_NOTADB) {
    // As openTrail says it; SQLite only notices at the first read, not at open.
    return new ChangetrailError('NOT_A_DATABASE', `${operation} ${databasePath}: the file is not a SQLite database`, { path: databasePath, reason: 'not a SQLite database' }, { cause: error });
  }
  if (sqliteErrcode(error) === SQLITE_BUSY) {
    return new ChangetrailError('DATABASE_BUSY',
      `${operation} ${databasePath}: another connection held SQLite's lock on the database for the whole busy timeout (${busyTimeoutMs} ms); nothing was read`,
      { path: databasePath, waitedMs: busyTimeoutMs, operation }, { cause: error });
  }
  return new ChangetrailError('SQLITE_ERROR', `${operation} ${databasePath}: ${message}`, { operation, ...(typeof errcode === 'number' ? { errcode } : {}) }, { cause: error });
}

export class TrailReader {
  readonly path: string;
  readonly journalDir: string;
  readonly #db: DatabaseSync;
  readonly #busyTimeoutMs: number;

  /** @internal Use `openTrailReader`. */
  constructor(db: DatabaseSync, path: string, journalDir: string, busyTimeoutMs: number) {
    this.#db = db;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.path = path;
    this.journalDir = journalDir;
  }

  /** The read-only connection (for rendering schemas). */
  get database(): DatabaseSync {
    return this.#db;
  }

  /** @internal The cheap open check: the journal is this database's and holds the committed tail. */
  check(): void {
    for (let attempt = 1; ; attempt++) {
      const head = this.#read(() => readHead(this.#db));
      checkJournalFiles(this.journalDir);
      const { identity } = this.#journal(head);
      const tail = SegmentFile.open(this.journalDir, head.segment, false);
      if (tail === null) {
        throw new ChangetrailError('JOURNAL_BEHIND_DATABASE', `open journal: segment ${head.segment} holding committed entries up to ${head.seq} is missing`,
          { databaseSeq: head.seq, journalSeq: head.segment - 1, file: String(head.segment) });
      }
      let beyond: BeyondHead;
      try {
        verifyCommittedTail(tail, head, () => this.#read(() => readOutbox(this.#db)));
        beyond = inspectBeyondHead(this.journalDir, tail, head, identity);
      } finally {
        tail.close();
      }
      if (!beyond.behind) return;
      // A writer may have committed since the head was read; a database really behind cannot move.
      if (attempt < BEHIND_CHECK_ATTEMPTS && this.#read(() => readHead(this.#db)).seq !== head.seq) continue;
      throw databaseBehind(this.journalDir, head.seq, beyond.journalSeq);
    }
  }

  /** Committed entries `from..to`, each proven to chain to the committed head. */
  *entries(range: EntryRange = {}): Generator<EntryWithChangeset> {
    const journal = this.#journal(this.#read(() => readHead(this.#db)));
    for (const entry of journal.entries(range)) yield toEntryWithChangeset(entry, entry.hash);
  }

  /** Head, journal and lock state, as `Trail.status()`. */
  async status(): Promise<TrailStatus> {
    const { head, mode } = this.#read(() => ({ head: readHead(this.#db), mode: String(this.#db.prepare('PRAGMA journal_mode').get()?.journal_mode) }));
    return {
      database: this.path, journalDir: this.journalDir, journalId: head.journalId, journalMode: mode === 'wal' ? 'wal' : 'delete',
      headSeq: head.seq, headHash: toHex(head.hash), head: positionOf(head.journalId, head.seq, head.hash), epoch: head.epoch, holder: head.holder,
      segments: listSegments(this.journalDir).length, lock: await inspectLock(this.journalDir),
    };
  }

  /** As `Trail.verify`, without writing anything but the scratch directory of `replay`. */
  async verify(options: ReaderVerifyOptions = {}): Promise<VerifyReport> {
    const { head, digests } = this.#read(() => ({ head: readHead(this.#db), digests: options.replay ? digestTables(this.#db) : null }));
    const journal = this.#journal(head);
    const retainedAfter = verifyStartingState(journal, (file, sha256, size) => verifySnapshot(this.journalDir, file, sha256, size));
    let entries = 0;
    for (const entry of journal.entries()) {
      if (entry.snapshot !== undefined) verifySnapshot(this.journalDir, entry.snapshot.file, entry.snapshot.sha256, entry.snapshot.size);
      entries += 1;
      options.signal?.throwIfAborted();
    }
    if (digests !== null) await compareReplay(journal, digests, options, this.#read(() => readOutbox(this.#db)));
    return { headSeq: head.seq, headHash: toHex(head.hash), head: journal.head, entries, replayed: digests !== null, ...(retainedAfter === 0 ? {} : { retainedAfter }) };
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  #journal(head: HeadRow): Journal {
    return openJournal(this.journalDir, positionOf(head.journalId, head.seq, head.hash), { outbox: () => this.#read(() => readOutbox(this.#db)) });
  }

  /** Runs `fn` in one read transaction (a consistent snapshot of the database). */
  #read<T>(fn: () => T): T {
    try {
      this.#db.exec('BEGIN');
      try {
        return fn();
      } finally {
        if (this.#db.isTransaction) this.#db.exec('COMMIT');
      }
    } catch (error) {
      throw readError(this.path, 'read', error, this.#busyTimeoutMs);
    }
  }
}

/**
 * Rebuilds the database from the journal in a scratch directory and compares table digests. The replay
 * runs in a worker thread when the built package has one, so an abort (Ctrl-C) is handled at once and
 * the scratch directory is removed; otherwise in this thread.
 */
async function compareReplay(journal: Journal, digests: Map<string, string>, options: ReaderVerifyOptions, outbox: readonly OutboxFrame[]): Promise<void> {
  const dir = io('create scratch directory', options.scratchDir ?? tmpdir(), () => mkdtempSync(join(resolve(options.scratchDir ?? tmpdir()), 'changetrail-verify-')));
  try {
    const replayed = await replayDigests(journal, join(dir, 'replay.db'), options.signal, outbox);
    const differing = [...new Set([...digests.keys(), ...replayed.keys()])].filter((t) => digests.get(t) !== replayed.get(t)).sort();
    if (differing.length > 0) {
      throw new ChangetrailError('FOREIGN_WRITE_DETECTED',
        `verify: replaying entries 1..${journal.head.seq} does not reproduce ${differing.join(', ')}: the database was changed outside changetrail; record its current state with a resync entry`,
        { headSeq: journal.head.seq, evidence: `tables differ from the replayed journal: ${differing.join(', ')}` });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const WORKER_URL = new URL('./replay-worker.js', import.meta.url);

function replayDigests(journal: Journal, target: string, signal: AbortSignal | undefined, outbox: readonly OutboxFrame[]): Promise<Map<string, string>> {
  signal?.throwIfAborted();
  if (import.meta.url.endsWith('.ts')) return Promise.resolve(replayInThread(journal, target));
  return new Promise((resolvePromise, reject) => {
    const worker = new Worker(WORKER_URL, { workerData: { dir: journal.dir, head: journal.head, target, outbox } });
    const onAbort = (): void => {
      void worker.terminate();
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (message: { digests?: [string, string][]; error?: { code: string; message: string; details: never } }) => {
      signal?.removeEventListener('abort', onAbort);
      if (message.digests !== undefined) resolvePromise(new Map(message.digests));
      else reject(new ChangetrailError(message.error!.code as never, message.error!.message, message.error!.details));
    });
    worker.once('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
  });
}

/** The replay itself: `target` built from the journal, its tables digested. */
export function replayInThread(journal: Journal, target: string): Map<string, string> {
  replayJournal(journal, target);
  const replica = new DatabaseSync(target, { readOnly: true });
  try {
    return digestTables(replica);
  } finally {
    replica.close();
  }
}
