/**
 * Applies journal entries to the replica, exactly once: every transaction that changes rows also moves
 * the position row (position-table.ts), so a crash anywhere leaves both at the same entry. Before each
 * transaction the file's change counter and the connection's `data_version` are compared with what the
 * follower's own last commit left: anything else that committed is a foreign write, and nothing is applied.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { applyChangesetExactlyInTransaction, applyEntryExactly } from '../apply/apply-entry.js';
import { ChangeCounterReader, nextChangeCounter } from '../apply/change-counter.js';
import { ChangetrailError } from '../errors.js';
import { replicaCrashpoint } from './crashpoints.js';
import { PositionStore } from './position-table.js';
import type { Position } from '../journal/position.js';
import type { SourceEntry } from './source.js';

/**
 * Changeset bytes of consecutive entries applied as one (copied end to end as they come, so memory is
 * bounded by twice this).
 */
const COMBINED_BYTES_MAX = 8 * 1024 * 1024;

/**
 * The changesets of a run of write entries, copied end to end as they come, with each entry's seq and
 * where its bytes end. Holding the entries themselves until the batch committed kept 5,000 objects alive
 * through every garbage collection of a catch-up (GC was 19% of its CPU time, measured).
 */
const PENDING_BYTES_INITIAL = 64 * 1024;
/** A run's buffer larger than this is not kept for the next run (a follower's runs are an entry or a few). */
const PENDING_BYTES_KEPT = 1024 * 1024;

class PendingRun {
  #bytes = new Uint8Array(0);
  #byteLength = 0;
  #seqs: number[] = [];
  #ends: number[] = [];

  get count(): number {
    return this.#seqs.length;
  }

  get byteLength(): number {
    return this.#byteLength;
  }

  add(seq: number, changeset: Uint8Array): void {
    const end = this.#byteLength + changeset.byteLength;
    if (end > this.#bytes.byteLength) {
      const grown = new Uint8Array(Math.max(end, this.#bytes.byteLength * 2, PENDING_BYTES_INITIAL));
      grown.set(this.#bytes.subarray(0, this.#byteLength));
      this.#bytes = grown;
    }
    this.#bytes.set(changeset, this.#byteLength);
    this.#byteLength = end;
    this.#seqs.push(seq);
    this.#ends.push(end);
  }

  /** Forgets the entries; keeps the buffer unless it grew large (a catch-up's run). */
  clear(): void {
    if (this.#bytes.byteLength > PENDING_BYTES_KEPT) this.#bytes = new Uint8Array(0);
    this.#byteLength = 0;
    this.#seqs = [];
    this.#ends = [];
  }

  /** The entries' changesets end to end. */
  combined(): Uint8Array {
    return this.#bytes.subarray(0, this.#byteLength);
  }

  seq(index: number): number {
    return this.#seqs[index]!;
  }

  changeset(index: number): Uint8Array {
    return this.#bytes.subarray(index === 0 ? 0 : this.#ends[index - 1]!, this.#ends[index]!);
  }
}

function applyOne(db: DatabaseSync, entry: SourceEntry): void {
  applyChangesetExactlyInTransaction(db, entry.changeset, { seq: entry.seq, ...(entry.rowids === undefined ? {} : { rowids: entry.rowids }) });
}

/** An entry without rowids: its changeset alone. */
function applyPlain(db: DatabaseSync, seq: number, changeset: Uint8Array): void {
  applyChangesetExactlyInTransaction(db, changeset, { seq });
}

export class Applier {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #store: PositionStore;
  readonly #counter: ChangeCounterReader;
  readonly #dataVersion: StatementSync;
  /** What the follower's last commit left: the file's change counter (null: untracked) and data_version. */
  #expectedCounter: number | null;
  #expectedDataVersion: number;
  #position: Position;
  #resume: string | null;
  /** The change counter read before the open batch began; undefined when no batch is open. */
  #batchCounter: number | null | undefined = undefined;
  /** Write entries of the open batch not applied yet (to be combined). */
  readonly #pending = new PendingRun();

  constructor(db: DatabaseSync, path: string, position: Position, resume: string | null, expectedCounter: number | null) {
    this.#db = db;
    this.#path = path;
    this.#store = new PositionStore(db);
    this.#counter = new ChangeCounterReader(path, 'delete');
    this.#dataVersion = db.prepare('PRAGMA data_version');
    this.#position = position;
    this.#resume = resume;
    this.#expectedCounter = expectedCounter;
    this.#expectedDataVersion = this.#readDataVersion();
  }

  get position(): Position {
    return this.#position;
  }

  /** The source's resume token stored with {@link position}. */
  get resume(): string | null {
    return this.#resume;
  }

  /**
   * Checks that nothing but this follower committed to the replica since its last commit.
   * @throws ChangetrailError REPLICA_FOREIGN_WRITE.
   */
  checkUntouched(): number | null {
    const counter = this.#counter.read();
    if (counter !== null && this.#expectedCounter !== null && counter !== this.#expectedCounter) {
      throw this.#foreign(`the file's change counter is ${counter}; the follower's last commit left ${this.#expectedCounter}`);
    }
    if (this.#readDataVersion() !== this.#expectedDataVersion) throw this.#foreign('another connection committed to the replica (data_version moved)');
    return counter;
  }

  /** True while a batch of write entries is open (between {@link begin} and {@link commit}). */
  get inBatch(): boolean {
    return this.#batchCounter !== undefined;
  }

  /**
   * Opens a batch: one transaction that several write entries are applied in, committed with the last
   * one's position. Checks for foreign writes first.
   * @throws ChangetrailError REPLICA_FOREIGN_WRITE (nothing begun).
   */
  begin(): void {
    if (this.inBatch) throw new TypeError('replica apply: a batch is already open');
    const counter = this.#beforeTransaction();
    this.#db.exec('BEGIN IMMEDIATE');
    this.#batchCounter = counter;
    replicaCrashpoint('replica-after-begin');
  }

  /**
   * Applies one write entry (data, or an undo) inside the open batch. Consecutive entries without rowids
   * are applied as one changeset, their concatenation (a changeset may repeat a table's group; SQLite's
   * apply keeps its prepared statements across repeats), when the batch commits or grows past
   * {@link COMBINED_BYTES_MAX}: the shape check, trigger suspension and apply then run once per run of
   * entries instead of once per entry. Concatenating is a copy: merging them by changegroup rules first
   * cost 8.1 µs per one-row entry in all, concatenating 2.7 µs (measured on a loaded 2-core machine). See
   * {@link #applyPending} for why the result is the entries' own. Entries with rowids (the only ones whose
   * effect depends on the order rows are inserted in) are applied on their own, and so is a changeset of
   * {@link COMBINED_BYTES_MAX} or more (as it is, not copied). On error the batch is rolled back.
   */
  applyWrite(entry: SourceEntry): void {
    if (!this.inBatch) throw new TypeError('replica apply: no batch is open');
    try {
      if (entry.rowids === undefined && entry.changeset.byteLength < COMBINED_BYTES_MAX) {
        this.#pending.add(entry.seq, entry.changeset);
        if (this.#pending.byteLength >= COMBINED_BYTES_MAX) this.#applyPending();
      } else {
        // Rowids, or a changeset large enough on its own (applied as it is, not copied).
        this.#applyPending();
        applyOne(this.#db, entry);
      }
    } catch (error) {
      this.rollback();
      throw error;
    }
    replicaCrashpoint('replica-mid-batch');
  }

  /**
   * Applies the pending entries as one changeset. Exactness: the concatenation holds exactly the entries'
   * changes, in their order. With every conflict answered ABORT, SQLite's apply either applies each change
   * once or fails; the only reordering it does is to retry a change that hit a constraint (UNIQUE, CHECK,
   * NOT NULL) after the rest of its table's run. When every change applies, the order does not matter:
   * changes to different rows commute (triggers are suspended, foreign keys off, and rowid-sensitive
   * entries are not in the run), and the changes to one row each name the old value of every column they
   * change, so in any order that succeeds each column passes through the same (old → new) steps and ends
   * on the same value. So success gives the rows applying the entries one by one gives. On a conflict the
   * savepoint is rolled back and the entries are applied one by one, in the same transaction: a retried
   * change that needed a later entry's effect succeeds there, and a real conflict names its entry (as
   * does a malformed changeset).
   */
  #applyPending(): void {
    const pending = this.#pending;
    try {
      if (pending.count === 0) return;
      if (pending.count === 1) return applyPlain(this.#db, pending.seq(0), pending.changeset(0));
      try {
        applyChangesetExactlyInTransaction(this.#db, pending.combined(), { seq: pending.seq(pending.count - 1) });
      } catch (error) {
        // A table whose groups disagree on shape is CHANGESET_MALFORMED for the concatenation; entry by
        // entry it is the conflict (or malformation) of the entry that differs from the replica.
        if (!ChangetrailError.is(error, 'CHANGESET_CONFLICT') && !ChangetrailError.is(error, 'CHANGESET_MALFORMED')) throw error;
        for (let i = 0; i < pending.count; i++) applyPlain(this.#db, pending.seq(i), pending.changeset(i));
      }
    } finally {
      pending.clear();
    }
  }

  /** Moves the position to `last` and commits the batch. */
  commit(last: Position, resume: string | null): void {
    const counter = this.#batchCounter;
    if (counter === undefined) throw new TypeError('replica apply: no batch is open');
    try {
      this.#applyPending();
      this.#recordPosition(last, resume, counter);
      this.#db.exec('COMMIT');
    } catch (error) {
      this.rollback();
      throw error;
    }
    this.#batchCounter = undefined;
    this.#afterCommit(last, resume, counter);
  }

  /** Abandons the open batch, if any (the replica stays at its last committed position). */
  rollback(): void {
    this.#batchCounter = undefined;
    this.#pending.clear();
    if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK');
  }

  /** Replays a schema entry (its migration SQL and data changes) and moves the position, in one transaction. */
  applySchema(entry: SourceEntry, position: Position): void {
    const resume = entry.resume;
    if (this.inBatch) throw new TypeError('replica apply: commit the open batch first');
    const counter = this.#beforeTransaction();
    applyEntryExactly(this.#db, {
      kind: 'schema', changeset: entry.changeset, sql: entry.sql ?? '', seq: entry.seq, ...(entry.rowids === undefined ? {} : { rowids: entry.rowids }),
    }, {
      beforeCommit: () => this.#recordPosition(position, resume, counter),
    });
    this.#afterCommit(position, resume, counter);
  }

  /**
   * After the file was replaced wholesale by another connection (a rebase onto a snapshot through the
   * backup API), the new state and what it left become the baseline.
   */
  rebased(position: Position, expectedCounter: number | null): void {
    this.#position = position;
    this.#resume = null;
    this.#expectedCounter = expectedCounter;
    this.#expectedDataVersion = this.#readDataVersion();
    // FTS5 and other virtual tables cache per-connection state: drop it (REPLAY.md, write step 10).
    this.#db.exec('PRAGMA writable_schema = RESET');
  }

  #beforeTransaction(): number | null {
    replicaCrashpoint('replica-before-apply');
    return this.checkUntouched();
  }

  #recordPosition(position: Position, resume: string | null, counter: number | null): void {
    replicaCrashpoint('replica-before-position');
    this.#store.update(position, resume, counter === null ? null : nextChangeCounter(counter), Date.now());
    replicaCrashpoint('replica-after-position');
  }

  #afterCommit(position: Position, resume: string | null, counter: number | null): void {
    this.#position = position;
    this.#resume = resume;
    this.#expectedCounter = counter === null ? null : nextChangeCounter(counter);
    // This connection's own commits do not move its data_version; read it anyway (cheap) to stay exact.
    this.#expectedDataVersion = this.#readDataVersion();
    replicaCrashpoint('replica-after-commit');
  }

  #readDataVersion(): number {
    return Number(this.#dataVersion.get()?.data_version);
  }

  #foreign(evidence: string): ChangetrailError<'REPLICA_FOREIGN_WRITE'> {
    return new ChangetrailError('REPLICA_FOREIGN_WRITE',
      `apply to ${this.#path}: the replica was changed by something other than its follower after entry ${this.#position.seq} (${evidence}). ` +
      'Its rows can no longer be trusted to equal the primary\'s; rebuild it (changetrail replicate --rebuild).',
      { replica: this.#path, appliedSeq: this.#position.seq, evidence });
  }
}
