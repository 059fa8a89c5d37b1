/**
 * The synchronous heart of an admitted write (write-admission.md §5.4, journal/LOCK.md "Write protocol"),
 * run while this process holds the admission lock:
 *
 *   BEGIN IMMEDIATE → read head → fence (epoch) → reconcile journal (complete it from the outbox) →
 *   session + body → changeset → frame INSERTed into the outbox, durable rows deleted, head row updated
 *   → COMMIT → frame appended to its segment → head marker → segment fdatasync'd in the background.
 *
 * The entry is durable at COMMIT, through the database's own fsync: no fsync of the journal precedes it
 * (outbox-writer.ts). Frames above OUTBOX_FRAME_BYTES_MAX are instead written and fsynced at the committed
 * offset before COMMIT (the direct path), which can leave one uncommitted frame for the next writer to
 * truncate. Everything between BEGIN and COMMIT runs under SQLite's RESERVED lock, so a writer that lost
 * its admission is refused before it touches the database or the journal; the append after COMMIT
 * writes exactly the committed bytes at their committed offset, so a late one changes nothing.
 */
import { closeSync, constants, existsSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { readSchemaVersion } from '../apply/schema.js';
import { summarizeChangeset } from '../changeset/index.js';
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { encodeEntryBody, hashEntryBody, type CheckpointAt, type EntryBody, type EntryKind, type JsonValue, type SnapshotRef } from '../journal/entry.js';
import { fsyncDirectory, io, journalFileMode, openJournalFile, writeAllAt } from '../journal/files.js';
import { HEAD_FILE, SEGMENT_HEADER_SIZE } from '../journal/format.js';
import { encodeFrame } from '../journal/frame.js';
import { encodeHead } from '../journal/head.js';
import type { JournalIdentity } from '../journal/journal-reader.js';
import type { JournalEntry } from '../journal/journal.js';
import { SegmentFile } from '../journal/segment-file.js';
import { formatSegmentName } from '../journal/segment.js';
import { ChangeCounterReader, nextChangeCounter } from '../apply/change-counter.js';
import { crashesHere, crashNow, crashpoint, faultpoint } from './crashpoint.js';
import { toEntry, type Entry } from './entry-view.js';
import { HeadStore, type HeadRow } from './head-row.js';
import { findFramesBeyondHead, readForwardEntry } from './roll-forward.js';
import { databaseBehind, inspectBeyondHead, openTailSegment, repairUncommittedTail, verifyCommittedTail, type BeyondHead } from './reconcile.js';
import { nonNegativeInteger, OUTBOX_FRAME_BYTES_MAX, OutboxWriter, type PendingAppend } from './outbox-writer.js';
import { RowidCapture } from './rowid-capture.js';
import { collectMigrationRowids, readTableRoots } from './migration-rowids.js';
import { encodeRowids } from '../journal/rowids.js';
import { SQLITE_BUSY, sqliteErrcode, wrapSqliteError } from './sqlite-errors.js';
import { MEMBER_SAVEPOINT } from './capture-guard.js';

/** What the caller asks to be journaled. `run` executes inside the transaction under a session. */
export interface CommitRequest {
  kind: EntryKind;
  run: (db: DatabaseSync) => unknown;
  actor: string | null;
  message: string | null;
  meta: Record<string, JsonValue> | null;
  sql?: string;
  undoes?: number;
  /** How the body runs under the capture guard: user bodies in 'write'; changetrail's own (undo) in 'internal'. */
  bodyMode?: 'write' | 'internal';
  /** Run with foreign keys off (they cannot change inside a transaction): migrations and undo. */
  foreignKeysOff?: boolean;
  /** resync entries: takes the snapshot that becomes the new base state (inside the transaction); checkpoint entries: installs the one taken before. */
  snapshot?: (seq: number) => SnapshotRef;
  /** checkpoint entries: the entry whose state the snapshot holds (src/write/checkpoint.ts). */
  at?: CheckpointAt;
  /**
   * resync entries: when it returns true (the database equals its replayed journal), nothing is journaled;
   * only the file's change counter is recorded, acknowledging a change that changed no row.
   */
  unchanged?: (head: HeadRow) => boolean;
}

/** The admission this process holds: its owner id and, once fenced in, its epoch. Mutated by commit. */
export interface Admission {
  ownerId: string;
  epoch: number | null;
}

/** Hooks that check the body's effects before anything is journaled (capture rules, foreign writes). */
export interface CommitGuards {
  /** Runs the request's body (e.g. under an authorizer). */
  runBody(request: CommitRequest, db: DatabaseSync): unknown;
  /**
   * Called inside the transaction before anything is written, with the file's change counter (or null)
   * and the connection's `PRAGMA data_version` as the transaction read it.
   */
  beforeBody(head: HeadRow, request: CommitRequest, changeCounter: number | null, dataVersion: number): void;
  /** Called after COMMIT. */
  afterCommit(head: HeadRow): void;
}

interface Appended {
  body: EntryBody;
  head: HeadRow;
  previous: HeadRow;
  /** The segment the frame is in. */
  tail: SegmentFile;
  /** That segment, when this entry created it. */
  rotated: SegmentFile | null;
  /** Written (and fsynced) before COMMIT: a crash may leave it past the committed head. */
  direct: boolean;
  frameSize: number;
  /** Outbox path: the frame to append after COMMIT. Null on the direct path (written before COMMIT). */
  pending: PendingAppend | null;
}

/** An entry encoded, not yet written. */
interface Prepared {
  body: EntryBody;
  bodyBytes: Uint8Array;
}

/** What became of one request of a group. */
export type MemberOutcome = { ok: true; entry: Entry | null } | { ok: false; error: unknown };

/** A group's outcomes, one per request it ran (a prefix of the requests it was given). */
export interface GroupResult {
  outcomes: MemberOutcome[];
}

/** Requests that need a transaction of their own (foreign keys off, a snapshot, or a pre-check). */
export function runsAlone(request: CommitRequest): boolean {
  return request.kind !== 'write' || request.foreignKeysOff === true || request.undoes !== undefined
    || request.bodyMode !== undefined || request.unchanged !== undefined || request.snapshot !== undefined;
}

/**
 * Bounds of a group. 128 entries: with 64 writes in flight the fsync and COMMIT are already shared 64
 * ways; more only lengthens the time RESERVED is held (readers of a rollback-journal database wait on
 * COMMIT, other processes on the lock). 4 MiB of frames: the group's bytes stay in one write burst.
 */
export const GROUP_ENTRY_COUNT_MAX = 128;
export const GROUP_BYTES_MAX = 4 * 1024 * 1024;
/**
 * A group also stops taking members once its bodies have run this long: by then its COMMIT is amortised
 * (one commit costs 1-20 ms on the test machine), and a group is the unit in which the lock is handed
 * over — 128 slow bodies (0.7 ms each, and several ms of CPU per write on a loaded machine) held it for
 * over 2 s, past a waiter's lock timeout. Tests that need a group's size fixed set CHANGETRAIL_GROUP_TIME_MS.
 */
export const GROUP_TIME_MAX_MS = nonNegativeInteger(process.env.CHANGETRAIL_GROUP_TIME_MS, 50);


/** Number of COMMIT attempts while readers keep SQLite busy (each waits up to the busy timeout). */
const COMMIT_ATTEMPTS = 3;

export class JournalWriter {
  readonly #db: DatabaseSync;
  readonly #databasePath: string;
  readonly #dir: string;
  readonly #identity: JournalIdentity;
  /** The manifest's journal id as the head row stores it (hex), computed once. */
  readonly #journalIdHex: string;
  readonly #heads: HeadStore;
  readonly #segmentBytesTarget: number;
  readonly #changeCounter: ChangeCounterReader;
  readonly #rowids: RowidCapture;
  readonly #outbox: OutboxWriter;
  #tail: SegmentFile | null = null;
  /** The tail as opened ends before the committed head; the outbox holds the rest. */
  #tailShort = false;
  /** The head the open transaction started from: every frame up to it is in its segment (completed). */
  #inSegmentsThrough = 0;
  #headFd: number | null = null;
  /**
   * The admission and head of this writer's last commit. While the database's head is still that one and
   * the epoch still this admission's, no other writer has touched the journal since (every other writer
   * bumps the epoch first), so the tail checks of the first write of an admission need not run again.
   */
  #trusted: { admission: Admission; seq: number } | null = null;
  /** `PRAGMA data_version` as the open transaction read it (HeadStore.current). */
  #dataVersion = 0;

  constructor(db: DatabaseSync, databasePath: string, dir: string, identity: JournalIdentity, segmentBytesTarget: number, changeCounter: ChangeCounterReader) {
    this.#db = db;
    this.#databasePath = databasePath;
    this.#dir = dir;
    this.#identity = identity;
    this.#journalIdHex = toHex(identity.manifest.journalId);
    this.#heads = new HeadStore(db);
    this.#segmentBytesTarget = segmentBytesTarget;
    this.#changeCounter = changeCounter;
    this.#rowids = new RowidCapture(db);
    this.#outbox = new OutboxWriter(db, dir, identity.manifest.journalId);
  }

  /** Runs one admitted write. Returns null (and journals nothing) when the body changed nothing. */
  commit(request: CommitRequest, admission: Admission, guards: CommitGuards): Entry | null {
    const [outcome] = this.commitGroup([request], admission, guards).outcomes;
    assert(outcome !== undefined, 'a group runs its first member');
    if (!outcome.ok) throw outcome.error;
    return outcome.entry;
  }

  /**
   * Runs admitted writes as one group (group commit): one transaction, in which each request's body runs
   * in its own savepoint under its own session and becomes its own entry, then one COMMIT. A body that
   * throws (or is refused) rolls back only its savepoint: its outcome carries the error and the others
   * commit. Failures of the transaction itself (I/O, the fence, COMMIT) throw, and nothing of the group
   * commits. Returns the outcomes of the first `outcomes.length` requests, in order, after the COMMIT that
   * made them durable; the group stops early (leaving the rest to the caller's next group) once its
   * frames reach GROUP_BYTES_MAX, once its bodies have run GROUP_TIME_MAX_MS, or after a frame written
   * before COMMIT (at most one such frame may be uncommitted at a crash: journal/FORMAT.md §7). Requests that must run alone ({@link runsAlone}) are
   * given one at a time.
   */
  commitGroup(requests: readonly CommitRequest[], admission: Admission, guards: CommitGuards): GroupResult {
    assert(requests.length > 0, 'a group has a member');
    assert(requests.length <= GROUP_ENTRY_COUNT_MAX, 'a group is bounded');
    const first = requests[0]!;
    assert(requests.length === 1 || !requests.some(runsAlone), 'migrations, undo and resync run alone');
    // Migrations run with foreign keys off (they cannot change inside a transaction), so FK actions
    // do not cascade during table rebuilds; replay does the same (journal/REPLAY.md).
    const foreignKeys = first.kind === 'schema' || first.foreignKeysOff === true ? this.#setForeignKeys(false) : null;
    try {
      return this.#commitGroup(requests, admission, guards);
    } finally {
      if (foreignKeys !== null) this.#setForeignKeys(foreignKeys);
    }
  }

  #commitGroup(requests: readonly CommitRequest[], admission: Admission, guards: CommitGuards): GroupResult {
    crashpoint('before-begin');
    this.#exec('BEGIN IMMEDIATE', 'begin');
    const epochBefore = admission.epoch;
    const appended: Appended[] = [];
    try {
      crashpoint('after-begin');
      let head = this.#begin(requests[0]!, admission, guards);
      if (requests[0]!.unchanged?.(head) === true) return this.#commitEmpty(head, admission, epochBefore, guards, [{ ok: true, entry: null }]);
      const outcomes: MemberOutcome[] = [];
      let bytes = 0;
      const startedMs = performance.now();
      for (const request of requests) {
        if (outcomes.length > 0 && performance.now() - startedMs >= GROUP_TIME_MAX_MS) break;
        const tail = appended.at(-1)?.rotated ?? appended.at(-1)?.tail ?? this.#tail!;
        const member = this.#runMember(request, head, tail, admission, guards, requests.length > 1, appended.length === 0);
        outcomes.push(member.outcome);
        if (member.appended === null) continue;
        appended.push(member.appended);
        head = member.appended.head;
        bytes += member.appended.frameSize;
        if (member.appended.direct || bytes >= GROUP_BYTES_MAX) break;
      }
      if (!outcomes.some((outcome) => outcome.ok)) {
        // The fence's epoch bump is rolled back with the rest: the admission must not keep it.
        admission.epoch = epochBefore;
        this.#db.exec('ROLLBACK');
        return { outcomes };
      }
      if (appended.length === 0) return this.#commitEmpty(head, admission, epochBefore, guards, outcomes);
      this.#outbox.dropDurable();
      crashpoint('after-head-update');
      this.#commitTransaction();
      this.#heads.committed(head, this.#dataVersion);
      this.#outbox.committed();
      crashpoint('after-commit');
      for (const entry of appended) this.#adoptTail(entry);
      const inSegments = this.#appendCommitted(appended);
      // A failed append left the tail short: the next write inspects it (and completes it from the outbox).
      if (inSegments) this.#trust(admission, head);
      guards.afterCommit(head);
      // Followers that read only the directory wait for the marker; it never names a frame not yet appended.
      if (inSegments) this.publishHead(head);
      crashpoint('after-publish');
      return { outcomes };
    } catch (error) {
      admission.epoch = epochBefore;
      this.#heads.forget();
      this.#outbox.rolledBack();
      this.#abort(appended);
      throw wrapSqliteError('write', this.#databasePath, error);
    }
  }

  /**
   * After BEGIN: the head, checked against the journal (repaired under RESERVED when a crashed writer left
   * bytes past it) and the fence; the guards' checks (foreign writes) see the group's first request.
   */
  #begin(first: CommitRequest, admission: Admission, guards: CommitGuards): HeadRow {
    this.#dataVersion = this.#heads.dataVersion();
    const head = this.#heads.current(this.#dataVersion);
    this.#checkJournalId(head);
    // A database behind its journal (restored from an older copy) is refused before anything else: its
    // change counter differs too, but a foreign write is not what happened.
    const trusted = this.#isTrusted(head, admission);
    this.#trusted = null;
    const repair = !trusted && this.#inspectTail(head);
    const counter = trusted ? this.#changeCounter.readAgain() : this.#changeCounter.read();
    guards.beforeBody(head, first, counter, this.#dataVersion);
    // Whatever this transaction commits bumps the file's counter once: record the value it will leave.
    head.changeCounter = counter === null ? null : nextChangeCounter(counter);
    const admitted = admission.epoch === null;
    this.#fence(head, admission);
    this.#outbox.ensureTable();
    this.#complete(head, admitted);
    if (repair) this.#repair(head);
    this.#inSegmentsThrough = head.seq;
    return head;
  }

  /**
   * Nothing to journal, yet the bodies may have changed pages and changed them back (insert + delete):
   * SQLite still commits, and the commit bumps the file's change counter. Writing the head row makes that
   * bump certain and records the value it leaves, so the next admission does not take it for a foreign one.
   * Without a counter (WAL) other processes see the commit only as a data_version move: a new epoch moves
   * the head row with it (unless the fence just bumped it, `epochBefore` null). The same holds for
   * `resync --if-changed`, which must acknowledge an outside commit for every process.
   */
  #commitEmpty(head: HeadRow, admission: Admission, epochBefore: number | null, guards: CommitGuards, outcomes: MemberOutcome[]): GroupResult {
    if (head.changeCounter === null && epochBefore !== null) this.#renewEpoch(head, admission);
    this.#heads.updateChangeCounter(head.changeCounter);
    this.#commitTransaction();
    this.#heads.committed(head, this.#dataVersion);
    this.#trust(admission, head);
    guards.afterCommit(head);
    return { outcomes };
  }

  /**
   * One member of a group: its body under a session, its entry appended after `head` and the head row
   * moved to it. With `isolated` the member runs in a savepoint, so a failure of its own (the body threw,
   * the capture guard refused, its entry is invalid) rolls back only what it did; without, the caller
   * rolls the transaction back. A failure after its frame is written, or one that ended the transaction,
   * is the group's and is thrown.
   */
  #runMember(request: CommitRequest, head: HeadRow, tail: SegmentFile, admission: Admission, guards: CommitGuards, isolated: boolean, first: boolean): { outcome: MemberOutcome; appended: Appended | null } {
    if (isolated) this.#db.exec(`SAVEPOINT ${MEMBER_SAVEPOINT}`);
    let prepared: Prepared | null;
    try {
      prepared = this.#prepareEntry(request, head, admission, guards);
    } catch (error) {
      if (!isolated || !this.#db.isTransaction) throw error;
      this.#db.exec(`ROLLBACK TO ${MEMBER_SAVEPOINT}; RELEASE ${MEMBER_SAVEPOINT}`);
      return { outcome: { ok: false, error: wrapSqliteError('write', this.#databasePath, error) }, appended: null };
    }
    const appended = prepared === null ? null : this.#append(head, prepared, tail, first);
    if (appended !== null) this.#heads.updatePosition(appended.head);
    if (isolated) this.#db.exec(`RELEASE ${MEMBER_SAVEPOINT}`);
    return { outcome: { ok: true, entry: appended === null ? null : toEntry(appended.body, appended.head.hash) }, appended };
  }

  /** Runs the body and encodes its entry; null when it changed nothing. */
  #prepareEntry(request: CommitRequest, head: HeadRow, admission: Admission, guards: CommitGuards): Prepared | null {
    const schemaVersion = request.kind === 'schema' ? readSchemaVersion(this.#db) : null;
    const { changeset, rowids } = this.#capture(request, guards);
    crashpoint('after-changeset');
    const schemaChanged = schemaVersion !== null && readSchemaVersion(this.#db) !== schemaVersion;
    if (changeset.byteLength === 0 && rowids === null && !schemaChanged && request.kind !== 'resync' && request.kind !== 'checkpoint') return null;
    const body = buildBody(head, request, changeset, admission);
    if (rowids !== null) body.rowids = rowids;
    if (request.snapshot !== undefined) body.snapshot = request.snapshot(body.seq);
    return { body, bodyBytes: encodeEntryBody(body) };
  }

  /**
   * Rolls a database that is behind its journal forward (`Trail.rollForward`): in one transaction,
   * `apply` runs for each committed entry past the head, in order, then the head row moves to the last of
   * them. Returns the range applied, or null when the journal holds nothing past the head.
   */
  rollForward(admission: Admission, guards: CommitGuards, apply: (db: DatabaseSync, entry: JournalEntry) => void): { from: number; to: number } | null {
    // Entries hold the effects of cascades and triggers already: they are applied with foreign keys off
    // (which cannot change inside a transaction), as replay does (journal/REPLAY.md).
    const foreignKeys = this.#setForeignKeys(false);
    try {
      return this.#rollForward(admission, guards, apply);
    } finally {
      this.#setForeignKeys(foreignKeys);
    }
  }

  #rollForward(admission: Admission, guards: CommitGuards, apply: (db: DatabaseSync, entry: JournalEntry) => void): { from: number; to: number } | null {
    this.#exec('BEGIN IMMEDIATE', 'begin');
    const epochBefore = admission.epoch;
    this.#heads.forget();
    try {
      const head = this.#heads.read();
      this.#checkJournalId(head);
      this.#openTail(head);
      const frames = findFramesBeyondHead(this.#dir, head, this.#identity);
      if (frames.length === 0) {
        this.#db.exec('ROLLBACK');
        return null;
      }
      const counter = this.#changeCounter.read();
      head.changeCounter = counter === null ? null : nextChangeCounter(counter);
      this.#fence(head, admission);
      for (const frame of frames) apply(this.#db, readForwardEntry(this.#dir, frame));
      const last = frames.at(-1)!;
      const next: HeadRow = { ...head, seq: last.seq, hash: last.hash, segment: last.segment, tailOffset: last.offset, segmentSize: last.offset + last.size };
      this.#heads.updatePosition(next);
      this.#commitTransaction();
      guards.afterCommit(next);
      this.publishHead(next);
      return { from: head.seq + 1, to: last.seq };
    } catch (error) {
      admission.epoch = epochBefore;
      this.#outbox.rolledBack();
      this.#abort([]);
      throw wrapSqliteError('recover', this.#databasePath, error);
    }
  }

  /** Writes the committed head to the advisory head marker (no fsync: recovery republishes it). */
  publishHead(head: HeadRow): void {
    const bytes = encodeHead({ journalId: this.#identity.manifest.journalId, seq: head.seq, hash: head.hash });
    try {
      // Never through a symlink planted as `head` (it would overwrite the link's target): issue 9 §2.4.
      this.#headFd ??= openJournalFile(join(this.#dir, HEAD_FILE), constants.O_RDWR | constants.O_CREAT, journalFileMode(this.#dir));
      if (this.#headFd === null) return;
      writeAllAt(this.#headFd, bytes, 0);
    } catch {
      // Advisory only: readers that trust the database are unaffected, and the next commit retries.
      this.#closeHeadFd();
    }
  }

  /**
   * Verifies the committed tail without modifying anything (used at open), and returns what the journal
   * holds past the head: `behind` when the database is older than its journal.
   */
  verify(head: HeadRow): BeyondHead {
    this.#checkJournalId(head);
    const tail = this.#openTail(head);
    return inspectBeyondHead(this.#dir, tail, head, this.#identity);
  }

  close(): void {
    if (this.#tail !== null) this.#outbox.release(this.#tail);
    this.#tail = null;
    this.#closeHeadFd();
  }

  #checkJournalId(head: HeadRow): void {
    const journalId = this.#journalIdHex;
    if (head.journalId !== journalId) {
      throw new ChangetrailError('JOURNAL_MISMATCH',
        `open journal: the database belongs to journal ${head.journalId} but ${this.#dir} is journal ${journalId}`,
        { databaseJournalId: head.journalId, journalJournalId: journalId, reason: 'journal ids differ' });
    }
  }

  /** The first write of an admission bumps the epoch; every later one checks it (the fence). */
  /**
   * A new epoch for the admission this process holds: every changetrail commit then moves the head row,
   * which is what tells other processes' data_version check (write-guards.ts) a changetrail commit from a
   * foreign one. The lock is unchanged; a stale writer is fenced out by the new epoch as by the old one.
   */
  #renewEpoch(head: HeadRow, admission: Admission): void {
    head.epoch += 1;
    this.#heads.updateEpoch(head.epoch, admission.ownerId, head.changeCounter);
    admission.epoch = head.epoch;
  }

  #fence(head: HeadRow, admission: Admission): void {
    if (admission.epoch === null) {
      head.epoch += 1;
      head.holder = admission.ownerId;
      this.#heads.updateEpoch(head.epoch, admission.ownerId, head.changeCounter);
      admission.epoch = head.epoch;
      return;
    }
    if (head.epoch !== admission.epoch || head.holder !== admission.ownerId) {
      throw new ChangetrailError('LOCK_COMPROMISED',
        `write: this process was admitted in epoch ${admission.epoch}, but ${head.holder ?? 'another writer'} was admitted since (epoch ${head.epoch})`,
        { epoch: admission.epoch, currentEpoch: head.epoch, currentHolder: head.holder });
    }
  }

  #isTrusted(head: HeadRow, admission: Admission): boolean {
    const trusted = this.#trusted;
    return trusted !== null && trusted.admission === admission && trusted.seq === head.seq && admission.epoch === head.epoch
      && this.#tail !== null && this.#tail.firstSeq === head.segment;
  }

  #trust(admission: Admission, head: HeadRow): void {
    this.#trusted = { admission, seq: head.seq };
  }

  /**
   * Under RESERVED: whether the journal holds anything past the committed head (then `#repair` removes it),
   * refusing a database that is behind its journal. Costs one fstat and one stat when nothing is there.
   */
  #inspectTail(head: HeadRow): boolean {
    const tail = this.#openTail(head);
    // Committed frames not in the segment yet (a writer crashed after COMMIT): the outbox must hold them.
    if (tail.size() < head.segmentSize) this.#tailShort = verifyCommittedTail(tail, head, () => this.#outbox.rows()) === 'short';
    if (this.#tailShort) return false;
    const orphan = head.segment !== head.seq + 1 && existsQuietly(join(this.#dir, formatSegmentName(head.seq + 1)));
    if (tail.size() === head.segmentSize && !orphan) return false;
    const beyond = inspectBeyondHead(this.#dir, tail, head, this.#identity);
    if (beyond.behind) throw databaseBehind(this.#dir, head.seq, beyond.journalSeq);
    return true;
  }

  #repair(head: HeadRow): void {
    repairUncommittedTail(this.#dir, this.#openTail(head), head, this.#identity);
    this.publishHead(head);
  }

  #openTail(head: HeadRow): SegmentFile {
    if (this.#tail !== null && this.#tail.firstSeq === head.segment && this.#tail.isStillAtPath()) return this.#tail;
    this.#dropTail();
    const tail = openTailSegment(this.#dir, head);
    try {
      this.#tailShort = verifyCommittedTail(tail, head, () => this.#outbox.rows()) === 'short';
    } catch (error) {
      tail.close();
      throw error;
    }
    this.#tail = tail;
    return tail;
  }

  /**
   * Under RESERVED, after the fence: writes into the segments every outbox frame they lack — what a
   * writer that crashed after COMMIT did not append. Checked at every admission (another process may have
   * left rows), and whenever the tail is short; within one admission this process's own appends keep them
   * complete. Readers never do this: they read the missing frames from the outbox instead.
   */
  #complete(head: HeadRow, admitted: boolean): void {
    if (!admitted && !this.#tailShort && !this.#outbox.mustRewrite) return;
    const tail = this.#tail!;
    this.#outbox.complete(tail);
    this.#tailShort = false;
    verifyCommittedTail(tail, head);
  }

  /**
   * Runs the body under a session. Data writes (undo included) also record rowids of keyed rowid tables
   * (rowid-capture.ts); migrations run without the capture triggers, which a table rebuild could break,
   * and record the rowids of the rows they leave in new, rebuilt or inserted-into tables (migration-rowids.ts).
   * Measured capture cost: `npm run bench -- rowids`.
   */
  #capture(request: CommitRequest, guards: CommitGuards): { changeset: Uint8Array; rowids: Uint8Array | null } {
    const recordRowids = request.kind === 'write';
    if (recordRowids) this.#rowids.begin();
    else this.#rowids.suspend();
    // Migrations record where their rows end instead (migration-rowids.ts).
    const roots = request.kind === 'schema' ? readTableRoots(this.#db) : null;
    const session = this.#db.createSession();
    try {
      const result = guards.runBody(request, this.#db);
      if (isThenable(result)) {
        (result as PromiseLike<unknown>).then(undefined, () => undefined);
        throw new TypeError('write: the body returned a promise; a transaction cannot span an await, so write bodies must be synchronous');
      }
      const changeset = this.#changeset(session, request);
      const rowids = recordRowids ? this.#rowids.collect() : roots !== null ? collectMigrationRowids(this.#db, roots, changeset) : [];
      return { changeset, rowids: rowids.length === 0 ? null : encodeRowids(rowids) };
    } finally {
      session.close();
    }
  }

  /**
   * A migration that renames or drops a table it also wrote makes the session fail with SQLITE_SCHEMA
   * (Node reports errcode 0, "not an error"). No session can record those rows, on the source or on a
   * replica; the entry then carries an empty changeset and replay relies on re-running its SQL.
   */
  #changeset(session: { changeset(): Uint8Array }, request: CommitRequest): Uint8Array {
    try {
      return session.changeset();
    } catch (error) {
      if (request.kind === 'schema' && sqliteErrcode(error) === 0) return new Uint8Array(0);
      throw error;
    }
  }

  #setForeignKeys(on: boolean): boolean {
    const before = Number(this.#db.prepare('PRAGMA foreign_keys').get()?.foreign_keys) === 1;
    this.#db.exec(`PRAGMA foreign_keys = ${on ? 'ON' : 'OFF'}`);
    return before;
  }

  /**
   * Places the entry's frame at the head's offset (in a new segment when the tail is full). Frames up to
   * OUTBOX_FRAME_BYTES_MAX go into the outbox, to be appended after COMMIT. A larger one, when it is the
   * group's first entry, is written and fsynced now (the direct path) and closes its group; later in a
   * group it goes through the outbox too, since the frames before it are not in the segment yet.
   */
  #append(head: HeadRow, prepared: Prepared, current: SegmentFile, first: boolean): Appended {
    const { body, bodyBytes } = prepared;
    const frame = encodeFrame(body.seq, bodyBytes);
    let tail = current;
    let offset = head.segmentSize;
    let rotated: SegmentFile | null = null;
    // A checkpoint starts a segment: the ones before it then hold only entries a prune can drop (src/write/prune.ts).
    // Only a group's first entry rotates (a checkpoint runs alone): a segment created later in a group
    // would be, at a crash before COMMIT, a segment past the head not starting at head + 1, which is how a
    // database behind its journal shows (DATABASE_BEHIND_JOURNAL). The group's other entries stay in its
    // segment, which may pass its target by up to GROUP_BYTES_MAX and one frame; the next group rotates.
    if (first && offset > SEGMENT_HEADER_SIZE && (offset + frame.byteLength > this.#segmentBytesTarget || body.kind === 'checkpoint')) {
      this.#syncSegmentFrames(current);
      rotated = SegmentFile.create(this.#dir, { journalId: this.#identity.manifest.journalId, firstSeq: body.seq });
      crashpoint('after-rotate');
      tail = rotated;
      offset = SEGMENT_HEADER_SIZE;
    }
    const next: HeadRow = { ...head, seq: body.seq, hash: hashEntryBody(bodyBytes), segment: tail.firstSeq, tailOffset: offset, segmentSize: offset + frame.byteLength };
    if (frame.byteLength <= OUTBOX_FRAME_BYTES_MAX || !first) {
      if (this.#outbox.overdue && rotated === null) this.#syncSegmentFrames(current);
      this.#outbox.insert(body.seq, tail.firstSeq, offset, frame);
      return { body, previous: head, tail, rotated, direct: false, frameSize: frame.byteLength, head: next, pending: { seq: body.seq, tail, offset, frame } };
    }
    const appended: Appended = { body, previous: head, tail, rotated, direct: true, frameSize: frame.byteLength, head: next, pending: null };
    try {
      this.#writeFrame(tail, frame, offset);
    } catch (error) {
      this.#abortAppend(appended);
      throw error;
    }
    // Its fsync also made every earlier frame of the tail durable.
    this.#outbox.markDurable(this.#inSegmentsThrough);
    return appended;
  }

  /**
   * fdatasyncs a segment that holds every frame up to the transaction's starting head: before a rotation
   * (the background fsyncs follow the tail only), or when the outbox has grown past its bound.
   */
  #syncSegmentFrames(segment: SegmentFile): void {
    segment.sync();
    this.#outbox.markDurable(this.#inSegmentsThrough);
  }

  /**
   * After COMMIT: the group's outbox frames are appended now, in order; a segment the group leaves (a
   * rotation) is fsynced at once, the last one in the background. An I/O error here does not fail the
   * writes — they are committed — and leaves the segments short, which the outbox covers until the next
   * write completes them.
   */
  #appendCommitted(appended: readonly Appended[]): boolean {
    try {
      for (let i = 0; i < appended.length; i++) {
        const entry = appended[i]!;
        if (entry.pending === null) {
          this.#outbox.markDurable(entry.body.seq);
          continue;
        }
        const leaves = i + 1 < appended.length && appended[i + 1]!.tail !== entry.tail;
        this.#outbox.append(entry.pending, leaves ? 'now' : 'background');
      }
      return true;
    } catch {
      this.#dropTail();
      return false;
    }
  }

  #writeFrame(tail: SegmentFile, frame: Uint8Array, offset: number): void {
    if (crashesHere('mid-frame')) {
      tail.writeAt(frame.subarray(0, frame.byteLength >> 1), offset);
      tail.sync();
      crashNow();
    }
    io('append to segment', tail.path, () => faultpoint('journal-write'));
    tail.writeAt(frame, offset);
    crashpoint('after-frame-write');
    io('fsync segment', tail.path, () => faultpoint('journal-fsync'));
    tail.sync();
    crashpoint('after-fsync');
  }

  #commitTransaction(): void {
    for (let attempt = 1; ; attempt++) {
      try {
        faultpoint('commit');
        this.#db.exec('COMMIT');
        return;
      } catch (error) {
        // Readers holding SHARED make COMMIT busy; the transaction stays open and can be retried.
        const retry = sqliteErrcode(error) === SQLITE_BUSY && this.#db.isTransaction && attempt < COMMIT_ATTEMPTS;
        if (!retry) throw error;
      }
    }
  }

  #adoptTail(appended: Appended): void {
    if (appended.rotated === null) return;
    if (this.#tail !== null) this.#outbox.release(this.#tail);
    this.#tail = appended.rotated;
  }

  /** Undo a failed write. Only while the transaction is active do we hold RESERVED and may touch the journal. */
  #abort(appended: readonly Appended[]): void {
    if (!this.#db.isTransaction) {
      // SQLite rolled back on its own (IOERR, FULL): RESERVED is gone and another writer may already be
      // appending at our offset. Leave any orphan frame to the next writer's reconcile (§5.4 step 8).
      this.#dropTail();
      return;
    }
    if (appended.length > 0) this.#abortAppends(appended);
    try {
      this.#db.exec('ROLLBACK');
    } catch {
      // The rollback itself failed: SQLite will roll back the hot journal on the next open.
    }
  }

  #abortAppend(appended: Appended): void {
    this.#abortAppends([appended]);
  }

  /** Removes the frames of a group that will not commit: the segments it created, the bytes it added to the tail. */
  #abortAppends(appended: readonly Appended[]): void {
    try {
      const created = appended.flatMap((entry) => (entry.rotated === null ? [] : [entry.rotated]));
      for (const segment of created) {
        segment.close();
        rmSync(segment.path, { force: true });
      }
      if (created.length > 0) fsyncDirectory(this.#dir);
      // Only a direct-path frame (the group's first entry) was written before COMMIT.
      const first = appended[0]!;
      if (first.rotated === null && first.direct) this.#tail?.truncateDurably(first.previous.segmentSize);
    } catch {
      // Left for reconcile, which truncates anything past the committed head under RESERVED.
    } finally {
      for (const entry of appended) entry.rotated = null;
      this.#dropTail();
    }
  }

  /** After an I/O failure the descriptor is not trusted (a failed fsync may have lost pages): reopen. */
  #dropTail(): void {
    this.#trusted = null;
    if (this.#tail !== null) this.#outbox.release(this.#tail);
    this.#tail = null;
  }

  #exec(sql: string, operation: string): void {
    try {
      this.#db.exec(sql);
    } catch (error) {
      throw wrapSqliteError(operation, this.#databasePath, error);
    }
  }

  #closeHeadFd(): void {
    if (this.#headFd === null) return;
    try {
      closeSync(this.#headFd);
    } catch {
      // Nothing to do: the descriptor is gone either way.
    }
    this.#headFd = null;
  }
}

function buildBody(head: HeadRow, request: CommitRequest, changeset: Uint8Array, admission: Admission): EntryBody {
  const body: EntryBody = {
    seq: head.seq + 1, kind: request.kind, time: Date.now(), epoch: admission.epoch ?? head.epoch,
    actor: request.actor, message: request.message, meta: request.meta, prevHash: head.hash,
    tables: summarizeChangeset(changeset), changeset,
  };
  if (request.sql !== undefined) body.sql = request.sql;
  if (request.undoes !== undefined) body.undoes = request.undoes;
  if (request.at !== undefined) body.at = request.at;
  return body;
}

function isThenable(value: unknown): boolean {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}

function existsQuietly(path: string): boolean {
  return io('stat', path, () => existsSync(path));
}
