/**
 * `openTrail` and the `Trail` class: an ordinary SQLite file whose every admitted write is recorded as a
 * journal entry in `<db>.changes/`.
 */
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { hostname, tmpdir, userInfo } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { checkJournalFiles, io, journalDirectoryMode, restrictJournalPermissions } from '../journal/files.js';
import { listSegments, readManifest, type JournalIdentity } from '../journal/journal-reader.js';
import { readOutbox } from '../journal/outbox.js';
import { openJournal, type Journal, type JournalEntry } from '../journal/journal.js';
import { positionOf, type Position } from '../journal/position.js';
import { checkJournalShape } from '../journal/journal-shape.js';
import { SEGMENT_BYTES_TARGET } from '../journal/format.js';
import { digestTables } from '../apply/digest.js';
import { replayJournal, verifySnapshot } from '../apply/replay.js';
import { describeUndo, findLaterChanges, undoEntryInTransaction, type UndoConflict, type UndoReport } from '../apply/undo.js';
import { ChangeCounterReader, nextChangeCounter } from '../apply/change-counter.js';
import { GROUP_ENTRY_COUNT_MAX, JournalWriter, type Admission, type CommitGuards, type CommitRequest } from './commit.js';
import { WriteGroups, type PendingWrite } from './group.js';
import { toEntryWithChangeset, type Entry, type EntryWithChangeset } from './entry-view.js';
import { finishStart, snapshotDatabase, startJournal } from './genesis.js';
import { headTableExists, readHead, type HeadRow } from './head-row.js';
import { checkFilesystem, inspectLock, validateLockTimings, type AdmissionLock, type LockInspection } from '../admission/lock.js';
import { Tenure } from '../admission/tenure.js';
import { entriesOptionsSchema, openTrailOptionsSchema, parseOptions, parseWriteOptions, resyncOptionsSchema, type EntriesOptions, type OpenTrailOptions, type ResyncOptions, type WriteOptions } from './options.js';
import { BEHIND_CHECK_ATTEMPTS, databaseBehind } from './reconcile.js';
import { sqliteErrcode, wrapSqliteError } from './sqlite-errors.js';
import { WriteGuards } from './write-guards.js';
import { runOptimisticWrite, type OptimisticPlan, type OptimisticResult, type OptimisticWriteOptions } from './optimistic.js';
import { takeCheckpoint, type CheckpointContext, type CheckpointOptions, type CheckpointResult } from './checkpoint.js';
import { newestCheckpoint, verifyStartingState } from '../journal/retention-checkpoints.js';
import { prune, type PruneOptions, type PruneResult } from './prune.js';
import { RetentionRunner, type RetentionState } from './retention-runner.js';
import type { RetentionPass } from './retention-policy.js';

export type { OpenTrailOptions, WriteOptions, EntriesOptions, ResyncOptions };

/** Default busy timeout: how long SQLite waits for readers (and foreign writers) before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5_000;

export interface VerifyReport {
  headSeq: number;
  headHash: string;
  /** The committed head as a {@link Position} (same seq and hash as `headSeq`/`headHash`). */
  head: Position;
  /** Entries read and verified. */
  entries: number;
  /** Whether the database was also compared with a replay of the journal. */
  replayed: boolean;
  /** A pruned journal only (FORMAT.md §11): verification started from the state after this entry, its base checkpoint's. */
  retainedAfter?: number;
}

/** What {@link Trail.previewUndo} answers. */
export interface UndoPreview extends UndoReport {
  /** Whether `undo(seq)` would succeed now. */
  possible: boolean;
  /** When refused: every row being restored that a later entry changed (oldest change first, one per row). */
  conflicts: UndoConflict[];
  /** When refused: the error `undo(seq)` would throw (CHANGESET_CONFLICT or UNDO_UNSUPPORTED), as JSON. */
  refusal: { name: string; code: string; message: string; details: unknown } | null;
}

export interface TrailStatus {
  database: string;
  journalDir: string;
  journalId: string;
  journalMode: 'delete' | 'wal';
  headSeq: number;
  headHash: string;
  /** The committed head as a {@link Position} (same seq and hash as `headSeq`/`headHash`). */
  head: Position;
  epoch: number;
  holder: string | null;
  segments: number;
  lock: LockInspection | null;
}

/**
 * Opens (or creates) a SQLite database with a changetrail journal beside it. A database without a journal
 * is adopted non-destructively: its tables are untouched and a genesis snapshot records its state.
 *
 * @throws ChangetrailError UNSAFE_FILESYSTEM, JOURNAL_MISMATCH, JOURNAL_BEHIND_DATABASE, DATABASE_BEHIND_JOURNAL,
 *   JOURNAL_CHAIN_BROKEN, LOCK_TIMEOUT (adoption needs the write lock), IO_ERROR.
 */
export async function openTrail(path: string, options?: OpenTrailOptions): Promise<Trail> {
  return open(path, options, 'refuse');
}

/**
 * @internal For `changetrail recover` (src/export/recover.ts): opens a trail whose database is behind its
 * journal (restored from an older copy) instead of refusing it with DATABASE_BEHIND_JOURNAL. `trail.behind`
 * then says how far, and `trail.rollForward(apply)` replays the missing entries; writes stay refused until
 * it has. Any other state is opened (or refused) as by `openTrail`.
 */
export function openTrailForRecovery(path: string, options?: OpenTrailOptions): Promise<Trail> {
  return open(path, options, 'allow');
}

/** What opening does with a database behind its journal. */
type BehindPolicy = 'refuse' | 'allow';

/** How far a database is behind its journal. */
export interface BehindState {
  databaseSeq: number;
  journalSeq: number;
}

async function open(path: string, options: OpenTrailOptions | undefined, behind: BehindPolicy): Promise<Trail> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('openTrail: path must be a non-empty string');
  const parsed = parseOptions(openTrailOptionsSchema, options, 'openTrail');
  validateLockTimings(parsed.lock ?? {}, 'openTrail: lock');
  const databasePath = io('resolve database path', path, () => canonicalDatabasePath(path));
  checkFilesystem(dirname(databasePath), { allowUnsafe: parsed.allowUnsafeFilesystem ?? false });
  const journalDir = resolve(parsed.journalDir ?? `${databasePath}.changes`);
  refuseNonDatabasePath(databasePath);
  const db = openDatabase(databasePath, parsed);
  // Created only once the database opened: a failed init leaves no empty journal directory behind.
  // Journal files are never more readable or writable than the database (issue 9 §2.3).
  const databaseMode = io('stat database', databasePath, () => statSync(databasePath).mode);
  const created = io('create journal directory', journalDir, () => mkdirSync(journalDir, { recursive: true, mode: journalDirectoryMode(databaseMode) }));
  try {
    restrictJournalPermissions(journalDir, databaseMode);
    checkJournalFiles(journalDir);
    return await Trail.create(db, databasePath, journalDir, parsed, behind);
  } catch (error) {
    db.close();
    if (created !== undefined) removeIfEmpty(journalDir);
    throw error;
  }
}

/** A directory (or `.`) given as the database is refused before anything is created. */
function refuseNonDatabasePath(databasePath: string): void {
  if (io('stat database', databasePath, () => statSync(databasePath, { throwIfNoEntry: false })?.isDirectory() ?? false)) {
    throw new ChangetrailError('NOT_A_DATABASE', `open ${databasePath}: it is a directory, not a database file`, { path: databasePath, reason: 'directory' });
  }
}

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty (files of an interrupted start stay for the next open) or already gone.
  }
}

/** realpath of the database (or of its directory, for a file not yet created): one lock and journal per file. */
export function canonicalDatabasePath(path: string): string {
  const absolute = resolve(path);
  if (existsSync(absolute)) return realpathSync(absolute);
  return join(realpathSync(dirname(absolute)), basename(absolute));
}

function openDatabase(databasePath: string, options: OpenTrailOptions): DatabaseSync {
  const db = new DatabaseSync(databasePath, { timeout: options.busyTimeoutMs ?? BUSY_TIMEOUT_MS, enableForeignKeyConstraints: true });
  try {
    // The journal mode is the database's: WAL persists in the file and is kept; only an explicit option
    // changes it. The read also fails early for a file that is not a database.
    const mode = options.journalMode;
    const row = db.prepare(mode === undefined ? 'PRAGMA journal_mode' : `PRAGMA journal_mode = ${mode}`).get();
    if (mode !== undefined && String(row?.journal_mode).toLowerCase() !== mode) throw new Error(`journal_mode stayed ${String(row?.journal_mode)}`);
    db.exec('PRAGMA synchronous = FULL');
    // Shadow tables of FTS5/R*Tree become read-only to direct SQL; the capture guard relies on it.
    db.enableDefensive(true);
    // libuv fsyncs the journal with F_FULLFSYNC on macOS; give the database the same durability.
    if (process.platform === 'darwin') db.exec('PRAGMA fullfsync = ON');
    return db;
  } catch (error) {
    db.close();
    if (sqliteErrcode(error) === SQLITE_NOTADB) {
      throw new ChangetrailError('NOT_A_DATABASE', `open ${databasePath}: the file is not a SQLite database`, { path: databasePath, reason: 'not a SQLite database' }, { cause: error });
    }
    throw wrapSqliteError('open', databasePath, error);
  }
}

/** SQLite's result code for a file that is not a database. */
const SQLITE_NOTADB = 26;

/** The connection's journal mode as the change-counter reader needs it (rollback modes bump the counter). */
function journalModeOf(db: DatabaseSync): 'delete' | 'wal' {
  return String(db.prepare('PRAGMA journal_mode').get()?.journal_mode).toLowerCase() === 'wal' ? 'wal' : 'delete';
}

export class Trail {
  readonly path: string;
  readonly journalDir: string;
  readonly #db: DatabaseSync;
  readonly #options: OpenTrailOptions;
  readonly #defaultActor: string | null;
  readonly #changeCounter: ChangeCounterReader;
  #identity!: JournalIdentity;
  #writer!: JournalWriter;
  #guards!: WriteGuards;
  readonly #tenure: Tenure;
  readonly #groups: WriteGroups;
  readonly #retention = new RetentionRunner({
    journalDir: () => this.journalDir,
    journal: () => this.#openJournal(this.#guards.runRead(this.#db, () => readHead(this.#db))),
    checkpoint: () => this.checkpoint(),
    prune: (options) => this.prune(options),
  });
  #admission: Admission | null = null;
  #closing: Promise<void> | null = null;
  #behindPolicy: BehindPolicy = 'refuse';
  #behind: BehindState | null = null;

  private constructor(db: DatabaseSync, path: string, journalDir: string, options: OpenTrailOptions) {
    this.#db = db;
    this.path = path;
    this.journalDir = journalDir;
    this.#options = options;
    this.#defaultActor = options.actor ?? defaultActor();
    this.#changeCounter = new ChangeCounterReader(path, journalModeOf(db));
    this.#tenure = new Tenure(journalDir, options.lock ?? {});
    this.#groups = new WriteGroups((batch) => this.#tenure.enqueue(() => this.#commitBatch(batch)));
  }

  /** @internal Use `openTrail`. */
  static async create(db: DatabaseSync, path: string, journalDir: string, options: OpenTrailOptions, behind: BehindPolicy = 'refuse'): Promise<Trail> {
    const trail = new Trail(db, path, journalDir, options);
    trail.#behindPolicy = behind;
    if (!headTableExists(db)) await trail.#tenure.enqueue(() => trail.#start());
    else trail.#attach();
    return trail;
  }

  /**
   * Runs `fn(db)` as one admitted write: inside `BEGIN IMMEDIATE` under a SQLite session, journaled as one
   * entry. Returns the entry, or null when nothing changed. A thrown error rolls back and journals nothing.
   * `fn` must be synchronous: a transaction cannot span an `await`.
   *
   * Writes called while others are queued are committed together (group commit): each body runs in its
   * own savepoint under its own session, in call order, and becomes its own entry; a body that throws
   * rolls back only its own changes and rejects only its own promise; the group commits once and every
   * promise settles after that COMMIT. A failure of the transaction itself (I/O, disk full, a lost lock)
   * rejects every write of the group.
   *
   * @throws TypeError for an async `fn`. ChangetrailError LOCK_TIMEOUT, LOCK_COMPROMISED, SCHEMA_CHANGE_IN_WRITE,
   *   TABLE_NOT_CAPTURABLE, NULL_PRIMARY_KEY, FOREIGN_WRITE_DETECTED, JOURNAL_*, IO_ERROR, SQLITE_ERROR; errors
   *   thrown by `fn` itself propagate unchanged.
   */
  write(fn: (db: DatabaseSync) => unknown, options?: WriteOptions): Promise<Entry | null> {
    this.#checkOpen('write');
    checkSyncFunction(fn, 'write');
    const parsed = parseWriteOptions(options, 'write');
    return this.#groups.submit({
      kind: 'write', run: fn, actor: parsed.actor ?? this.#defaultActor, message: parsed.message ?? null, meta: parsed.meta ?? null,
    });
  }

  /**
   * Optimistic write: `plan(db)` runs in a read transaction without the admission lock and declares what
   * its decision read; its `value` (a promise is awaited outside any transaction) goes to `commit(db, value)`,
   * which runs as an admitted write only after checking, under the lock, that no entry since the plan
   * changed a declared row, table or query result. Re-plans on conflict. See src/write/optimistic.ts.
   *
   * @throws ChangetrailError OPTIMISTIC_CONFLICT (after `retries`), the errors of `write`; the signal's reason.
   */
  optimisticWrite<V, R>(plan: (db: DatabaseSync) => OptimisticPlan<V>, commit: (db: DatabaseSync, value: Awaited<V>) => R, options?: OptimisticWriteOptions): Promise<OptimisticResult<R>> {
    this.#checkOpen('optimisticWrite');
    return runOptimisticWrite(this, plan, commit, options);
  }

  /**
   * Runs `sql` (DDL, and any DML that goes with it) as one admitted write and journals it as a schema
   * entry in the same sequence as data writes, so consumers apply migrations in order. Foreign keys are
   * off while it runs (so table rebuilds do not cascade). Returns null when it changed nothing.
   *
   * @throws ChangetrailError as `write`; SQLITE_ERROR for invalid SQL (nothing is changed or journaled).
   */
  migrate(sql: string, options?: WriteOptions): Promise<Entry | null> {
    this.#checkOpen('migrate');
    if (typeof sql !== 'string' || sql.trim().length === 0) throw new TypeError('migrate: sql must be a non-empty string');
    const parsed = parseWriteOptions(options, 'migrate');
    return this.#admitted({
      kind: 'schema', run: (db) => db.exec(sql), sql, actor: parsed.actor ?? this.#defaultActor, message: parsed.message ?? null, meta: parsed.meta ?? null,
    });
  }

  /**
   * Reverses entry `seq` as a new entry (nothing is rewritten): its inverse changeset is applied exactly —
   * triggers suspended and foreign keys off, since the entry already holds their effects — and the new
   * entry records `undoes: seq`. When later writes changed the same rows, or the result would break a
   * foreign key, nothing is applied: CHANGESET_CONFLICT names the table and the conflict.
   *
   * @throws ChangetrailError ENTRY_NOT_FOUND, UNDO_UNSUPPORTED (schema and resync entries), CHANGESET_CONFLICT,
   *   and the errors of `write`.
   */
  undo(seq: number, options?: WriteOptions): Promise<Entry | null> {
    this.#checkOpen('undo');
    if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError('undo: seq must be a positive integer');
    const parsed = parseWriteOptions(options, 'undo');
    return this.#admitted({
      kind: 'write', undoes: seq, bodyMode: 'internal', foreignKeysOff: true,
      actor: parsed.actor ?? this.#defaultActor, message: parsed.message ?? `undo #${seq}`, meta: parsed.meta ?? null,
      run: (db) => {
        const target = this.#committedEntry(seq);
        if (target.kind !== 'write') {
          throw new ChangetrailError('UNDO_UNSUPPORTED', `undo: entry ${seq} is a ${target.kind} entry; only data writes can be undone`, { seq, kind: target.kind });
        }
        undoEntryInTransaction(db, target, () => this.#laterEntries(seq));
      },
    });
  }

  /**
   * Previews `undo(seq)` without changing anything: the rows it would restore, how it would treat the
   * indexes the entry wrote, and — when it would be refused — why, with the later entries and keys that
   * changed rows being restored. It runs the real undo inside an admitted write and rolls it back, so the
   * answer is the one `undo` would give now (it waits for the admission lock like a write).
   *
   * @example
   * const preview = await trail.previewUndo(3);
   * if (!preview.possible) console.log(preview.conflicts); // [{ table: 'p', key: { sku: 'a' }, laterSeq: 5 }]
   * @throws ChangetrailError ENTRY_NOT_FOUND, and the errors of `write` (LOCK_TIMEOUT, FOREIGN_WRITE_DETECTED, ...).
   */
  previewUndo(seq: number): Promise<UndoPreview> {
    this.#checkOpen('previewUndo');
    if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError('previewUndo: seq must be a positive integer');
    let preview: UndoPreview | null = null;
    const rollback = new Error('undo preview: roll back');
    return this.#admitted({
      kind: 'write', undoes: seq, bodyMode: 'internal', foreignKeysOff: true, actor: null, message: null, meta: null,
      run: (db) => {
        preview = this.#preview(db, seq);
        throw rollback;
      },
    }).then(() => {
      throw new TypeError('previewUndo: the preview was not rolled back');
    }, (error: unknown) => {
      if (error !== rollback || preview === null) throw error;
      return preview;
    });
  }

  #preview(db: DatabaseSync, seq: number): UndoPreview {
    const target = this.#committedEntry(seq);
    const later = () => this.#laterEntries(seq);
    try {
      if (target.kind !== 'write') {
        throw new ChangetrailError('UNDO_UNSUPPORTED', `undo: entry ${seq} is a ${target.kind} entry; only data writes can be undone`, { seq, kind: target.kind });
      }
      return { ...undoEntryInTransaction(db, target, later), possible: true, conflicts: [], refusal: null };
    } catch (error) {
      if (!ChangetrailError.is(error, 'CHANGESET_CONFLICT') && !ChangetrailError.is(error, 'UNDO_UNSUPPORTED')) throw error;
      const described = target.kind === 'write' ? describeUndo(db, target) : { seq, restores: [], derived: [] };
      const conflicts = target.kind === 'write' ? findLaterChanges(db, target, later) : [];
      return { ...described, possible: false, conflicts, refusal: error.toJSON() };
    }
  }

  /** Entries after `seq` up to the committed head (read under the caller's transaction). */
  *#laterEntries(seq: number): Generator<JournalEntry> {
    yield* this.#openJournal(readHead(this.#db)).entries({ from: seq + 1 });
  }

  /** Entry `seq` as committed (read under the caller's transaction). */
  #committedEntry(seq: number): JournalEntry {
    const journal = this.#openJournal(readHead(this.#db));
    if (seq > journal.head.seq) {
      throw new ChangetrailError('ENTRY_NOT_FOUND', `undo: entry ${seq} does not exist (the journal holds 1..${journal.head.seq})`, { seq, headSeq: journal.head.seq });
    }
    return journal.entry(seq);
  }

  /** The journal anchored to a head row read under the caller's transaction. */
  #openJournal(head: HeadRow): Journal {
    return openJournal(this.journalDir, positionOf(head.journalId, head.seq, head.hash), { outbox: () => readOutbox(this.#db) });
  }

  /**
   * Records the database exactly as it is now as the new base state: a resync entry referring to a fresh
   * snapshot in the journal directory (`snapshot-<seq>.db`). This is the recovery path after
   * FOREIGN_WRITE_DETECTED: changes made outside changetrail cannot be journaled row by row after the
   * fact, so replicas restart from the snapshot (journal/REPLAY.md). Audit keeps the evidence: the
   * entries before it, and the snapshot's digest in the chain.
   */
  resync(options?: ResyncOptions): Promise<Entry | null> {
    this.#checkOpen('resync');
    const parsed = parseOptions(resyncOptionsSchema, options, 'resync');
    return this.#admitted({
      kind: 'resync', run: () => undefined, actor: parsed.actor ?? this.#defaultActor, message: parsed.message ?? null, meta: parsed.meta ?? null,
      snapshot: (seq) => snapshotDatabase(this.path, this.journalDir, `snapshot-${seq}.db`),
      // Under the admission lock and RESERVED: nothing changes between the comparison and the commit.
      ...(parsed.ifChanged === true ? { unchanged: (head: HeadRow) => this.#differingFromReplay(this.#openJournal(head), digestTables(this.#db)).length === 0 } : {}),
    });
  }

  /**
   * Records the user's tables as of the committed head in `checkpoint-<seq>.db`, bound into the chain by a
   * checkpoint entry, so verify, restore and replicas can start there and `prune` can drop what is before
   * it. The snapshot is taken without the admission lock; binding it is one small write. Returns null when
   * the newest checkpoint already holds the head. See src/write/checkpoint.ts.
   */
  checkpoint(options?: CheckpointOptions): Promise<CheckpointResult | null> {
    this.#checkOpen('checkpoint');
    return takeCheckpoint(this.#retentionContext(), options);
  }

  /**
   * Removes the segments and snapshots wholly before the newest checkpoint at or before `options.before`
   * (a seq, `@<time>`, or 'checkpoint'), held back by registered followers and pins; afterwards history
   * starts at that checkpoint. See src/write/prune.ts.
   */
  prune(options: PruneOptions): Promise<PruneResult> {
    this.#checkOpen('prune');
    return prune(this.#retentionContext(), options);
  }

  /**
   * Runs one pass of the journal's retention policy now (`<db>.changes/retention.json`, set with
   * `changetrail retention`): a checkpoint if one is due, then a prune within the keep limits. Writers
   * also run it in the background after their writes. See src/write/retention-policy.ts.
   */
  applyRetention(): Promise<RetentionPass> {
    this.#checkOpen('applyRetention');
    return this.#retention.runNow();
  }

  /** The retention policy, where retained history begins, registered followers and the last background pass. */
  retentionState(): RetentionState {
    this.#checkOpen('retentionState');
    return this.#retention.state();
  }

  /** @internal What checkpoint and prune (src/write/checkpoint.ts, prune.ts) need of the trail. */
  #retentionContext(): CheckpointContext {
    const committed = () => this.#guards.runRead(this.#db, () => readHead(this.#db));
    return {
      path: this.path, journalDir: this.journalDir, defaultActor: this.#defaultActor,
      commit: (request) => this.#admitted(request),
      journalAt: (db) => this.#openJournal(readHead(db)),
      committedHead: () => { const head = committed(); return positionOf(head.journalId, head.seq, head.hash); },
      newestCheckpoint: () => {
        const found = newestCheckpoint(this.#openJournal(committed()));
        return found === null ? null : { entrySeq: found.entry.seq, atSeq: found.at.seq };
      },
    };
  }

  /**
   * Runs `fn(db)` in a read transaction and returns its result. The body must not write.
   */
  read<T>(fn: (db: DatabaseSync) => T): T {
    this.#checkOpen('read');
    checkSyncFunction(fn, 'read');
    return this.#guards.runRead(this.#db, fn);
  }

  /** Committed entries `from..to` with their changesets, verified against the hash chain as they are read. */
  async *entries(options?: EntriesOptions): AsyncGenerator<EntryWithChangeset> {
    this.#checkOpen('entries');
    const parsed = parseOptions(entriesOptionsSchema, options, 'entries');
    const journal = this.#openJournal(readHead(this.#db));
    for (const entry of journal.entries(parsed)) yield toEntryWithChangeset(entry, entry.hash);
  }

  /**
   * Verifies the whole journal: the genesis and resync snapshots against their digests, every frame's
   * checksum, contiguous sequence numbers, the hash chain, and that the last entry is the one the database
   * committed. With `replay: true` it also rebuilds the database from the journal in a temporary file and
   * compares every recorded table with the live database, which catches changes made outside changetrail
   * that the per-write check cannot see (e.g. between two other processes' writes).
   *
   * @throws ChangetrailError JOURNAL_CHECKSUM_MISMATCH, JOURNAL_CHAIN_BROKEN, JOURNAL_GAP, JOURNAL_MALFORMED,
   *   JOURNAL_BEHIND_DATABASE, FOREIGN_WRITE_DETECTED (replay differs: details name the tables).
   */
  async verify(options: { replay?: boolean } = {}): Promise<VerifyReport> {
    this.#checkOpen('verify');
    const { head, digests } = this.#guards.runRead(this.#db, () => ({
      head: readHead(this.#db), digests: options.replay ? digestTables(this.#db) : null,
    }));
    const journal = this.#openJournal(head);
    const retainedAfter = verifyStartingState(journal, (file, sha256, size) => verifySnapshot(this.journalDir, file, sha256, size));
    let entries = 0;
    for (const entry of journal.entries()) {
      if (entry.snapshot !== undefined) verifySnapshot(this.journalDir, entry.snapshot.file, entry.snapshot.sha256, entry.snapshot.size);
      entries += 1;
    }
    if (digests !== null) this.#compareReplay(journal, digests);
    return { headSeq: head.seq, headHash: toHex(head.hash), head: journal.head, entries, replayed: digests !== null, ...(retainedAfter === 0 ? {} : { retainedAfter }) };
  }

  /** The tables in which `digests` (of the live database) differ from a replay of `journal`. */
  #differingFromReplay(journal: Journal, digests: Map<string, string>): string[] {
    const dir = mkdtempSync(join(tmpdir(), 'changetrail-verify-'));
    try {
      const target = join(dir, 'replay.db');
      replayJournal(journal, target);
      const replica = new DatabaseSync(target, { readOnly: true });
      let replayed: Map<string, string>;
      try {
        replayed = digestTables(replica);
      } finally {
        replica.close();
      }
      return [...new Set([...digests.keys(), ...replayed.keys()])].filter((t) => digests.get(t) !== replayed.get(t)).sort();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  #compareReplay(journal: Journal, digests: Map<string, string>): void {
    const committed = journal.head;
    const differing = this.#differingFromReplay(journal, digests);
    if (differing.length > 0) {
      throw new ChangetrailError('FOREIGN_WRITE_DETECTED',
        `verify: replaying entries 1..${committed.seq} does not reproduce ${differing.join(', ')}: the database was changed outside changetrail. Record its current state with a resync entry (trail.resync()).`,
        { headSeq: committed.seq, evidence: `tables differ from the replayed journal: ${differing.join(', ')}` });
    }
  }

  /** Head, journal and lock state. */
  async status(): Promise<TrailStatus> {
    this.#checkOpen('status');
    const head = readHead(this.#db);
    const mode = String(this.#db.prepare('PRAGMA journal_mode').get()?.journal_mode);
    return {
      database: this.path, journalDir: this.journalDir, journalId: head.journalId, journalMode: mode === 'wal' ? 'wal' : 'delete',
      headSeq: head.seq, headHash: toHex(head.hash), head: positionOf(head.journalId, head.seq, head.hash), epoch: head.epoch, holder: head.holder,
      segments: listSegments(this.journalDir).length, lock: await inspectLock(this.journalDir, this.#tenure.lockOptions()),
    };
  }

  /** Waits for queued writes, releases the admission lock and closes the database. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#retention.close().then(() => this.#tenure.close(() => {
      this.#writer?.close();
      this.#guards?.uninstall();
      this.#db.close();
    }));
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** @internal For `changetrail recover`: how far the database is behind its journal (null when it is not). */
  get behind(): BehindState | null {
    return this.#behind === null ? null : { ...this.#behind };
  }

  /**
   * @internal For `changetrail recover` (src/export/recover.ts), on a trail from `openTrailForRecovery`:
   * under the admission lock and in one transaction, runs `apply(db, entry)` for every committed entry the
   * journal holds past the database's head, in order (each verified: checksum, contiguous seq, chained
   * to the head), then moves the head row to the last one. `apply` must reproduce each entry exactly (the
   * guarded replay of src/apply); it runs with changetrail's internal permissions, not under a session.
   * A throw rolls everything back. Returns the range applied, or null when nothing was missing; afterwards
   * the trail opens normally.
   */
  rollForward(apply: (db: DatabaseSync, entry: JournalEntry) => void): Promise<{ from: number; to: number } | null> {
    this.#checkOpen('rollForward');
    this.#groups.close();
    return this.#tenure.enqueue(async () => {
      const admission = await this.#admit();
      const range = this.#guards.internal(() => this.#writer.rollForward(admission, this.#guards, apply));
      this.#behind = null;
      return range;
    }).catch((error: unknown) => {
      if (ChangetrailError.is(error, 'LOCK_COMPROMISED')) this.#dropAdmission();
      throw error;
    });
  }

  /** @internal For the CLI and tests: the underlying connection. */
  get database(): DatabaseSync {
    return this.#db;
  }

  #attach(): void {
    const identity = readManifest(this.journalDir);
    const head = readHead(this.#db);
    if (identity === null) {
      throw new ChangetrailError('JOURNAL_MISMATCH',
        `open: the database records journal ${head.journalId} (entry ${head.seq}) but ${this.journalDir} has no manifest. Restore the journal directory.`,
        { databaseJournalId: head.journalId, journalJournalId: null, reason: 'journal directory missing' });
    }
    this.#setup(identity);
    for (let attempt = 1; ; attempt++) {
      const { head, beyond } = this.#guards.runRead(this.#db, () => {
        const head = readHead(this.#db);
        const beyond = this.#writer.verify(head);
        // Refuse a history that cannot be verified (issue 8 item 7): cheap shape check, see journal-shape.ts.
        checkJournalShape(this.journalDir, positionOf(head.journalId, head.seq, head.hash), { outbox: readOutbox(this.#db) });
        this.#guards.observe(head);
        return { head, beyond };
      });
      this.#behind = null;
      if (!beyond.behind) return;
      // A WAL reader sees a snapshot, and writers may have committed since it began. A database that is
      // really behind cannot move (every write is refused), so a head that moved proves it was not.
      if (attempt < BEHIND_CHECK_ATTEMPTS && this.#guards.runRead(this.#db, () => readHead(this.#db).seq) !== head.seq) continue;
      this.#behind = { databaseSeq: head.seq, journalSeq: beyond.journalSeq };
      if (this.#behindPolicy === 'allow') return;
      throw databaseBehind(this.journalDir, head.seq, beyond.journalSeq);
    }
  }

  async #start(): Promise<void> {
    const lock = await this.#tenure.acquire();
    this.#guards = new WriteGuards(this.#db, this.path);
    this.#guards.internal(() => this.#startInTransaction(lock));
  }

  #startInTransaction(lock: AdmissionLock): void {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      if (headTableExists(this.#db)) {
        this.#db.exec('ROLLBACK');
        return this.#attach();
      }
      this.#db.prepare('SELECT 1 FROM sqlite_schema LIMIT 1').get(); // take SHARED: a hot journal is rolled back first
      const counter = this.#changeCounter.read();
      const genesis = startJournal(this.#db, this.path, this.journalDir, lock.ownerId, counter === null ? null : nextChangeCounter(counter));
      this.#db.exec('COMMIT');
      finishStart(this.journalDir);
      this.#setup(genesis.identity);
      this.#admission = { ownerId: lock.ownerId, epoch: genesis.head.epoch };
      this.#writer.publishHead(genesis.head);
      this.#guards.observe(genesis.head);
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw wrapSqliteError('start journal', this.path, error);
    }
  }

  #setup(identity: JournalIdentity): void {
    this.#identity = identity;
    this.#writer = new JournalWriter(this.#db, this.path, this.journalDir, identity, this.#options.segmentBytesTarget ?? SEGMENT_BYTES_TARGET, this.#changeCounter);
    this.#guards ??= new WriteGuards(this.#db, this.path);
  }

  /** One request in a transaction of its own, queued after every write called before it. */
  #admitted(request: CommitRequest): Promise<Entry | null> {
    this.#groups.close();
    return this.#tenure.enqueue(async () => {
      const admission = await this.#admit();
      return this.#guards.internal(() => this.#writer.commit(request, admission, this.#guards as CommitGuards));
    }).then((entry) => {
      // The retention policy runs after the write resolves, never inside it (retention-runner.ts).
      this.#retention.afterWrite();
      return entry;
    }, (error: unknown) => {
      if (ChangetrailError.is(error, 'LOCK_COMPROMISED')) this.#dropAdmission();
      throw error;
    });
  }

  /**
   * One tenure task: the writes of `batch`, in groups of at most GROUP_ENTRY_COUNT_MAX, yielding the lock
   * between groups once other processes have waited a fair share. Settles every promise of the batch.
   */
  async #commitBatch(batch: PendingWrite[]): Promise<void> {
    this.#groups.closeIfOpen(batch);
    let next = 0;
    while (next < batch.length) {
      if (next > 0) await this.#tenure.pause();
      const group = batch.slice(next, next + GROUP_ENTRY_COUNT_MAX);
      try {
        const admission = await this.#admit();
        const { outcomes } = this.#guards.internal(() => this.#writer.commitGroup(group.map((write) => write.request), admission, this.#guards as CommitGuards));
        this.#tenure.handOverIfDue();
        outcomes.forEach((outcome, index) => (outcome.ok ? group[index]!.resolve(outcome.entry) : group[index]!.reject(outcome.error)));
        next += outcomes.length;
      } catch (error) {
        if (ChangetrailError.is(error, 'LOCK_COMPROMISED')) this.#dropAdmission();
        for (const write of group) write.reject(error);
        next += group.length;
      }
    }
    // The retention policy runs after the batch settles, never inside a write (retention-runner.ts).
    this.#retention.afterWrite();
  }

  /** Holds the admission lock (acquiring it if needed); the epoch is bumped by the next transaction. */
  async #admit(): Promise<Admission> {
    const { lock, fresh } = await this.#tenure.hold(this.#admission !== null);
    if (fresh || this.#admission === null) this.#admission = { ownerId: lock.ownerId, epoch: null };
    return this.#admission;
  }

  #dropAdmission(): void {
    this.#admission = null;
    this.#tenure.drop();
  }

  #checkOpen(operation: string): void {
    if (this.#closing !== null || !this.#db.isOpen) throw new TypeError(`${operation}: the trail is closed`);
  }
}

function checkSyncFunction(fn: unknown, operation: string): void {
  if (typeof fn !== 'function') throw new TypeError(`${operation}: expected a function`);
  const kind = fn.constructor?.name;
  if (kind === 'AsyncFunction' || kind === 'AsyncGeneratorFunction') {
    throw new TypeError(`${operation}: the body is async; a transaction cannot span an await, so bodies must be synchronous`);
  }
}

function defaultActor(): string | null {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return null;
  }
}

export type { HeadRow };
