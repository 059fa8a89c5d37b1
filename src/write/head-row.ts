/**
 * The authoritative head, stored in the database in a one-row table that changetrail owns. It is updated
 * in the same transaction as the user's changes, so database and journal agree at every commit: the
 * journal may only hold more bytes (an uncommitted frame, truncated by recovery), never fewer.
 */
import type { DatabaseSync, SQLOutputValue, StatementSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';

export const HEAD_TABLE = '_changetrail_head';
/**
 * Version of the head table's layout and protocol (journal/FORMAT.md §7): 2 = committed frames may be in
 * the outbox table (§7.1). Format 1 databases are read as they are and upgraded by their next writer.
 */
export const HEAD_TABLE_FORMAT = 2;
const HEAD_TABLE_FORMATS_READ: ReadonlySet<unknown> = new Set([1, 2]);

export interface HeadRow {
  journalId: string;
  seq: number;
  hash: Uint8Array;
  /** First sequence number of the tail segment. */
  segment: number;
  /** Offset of the last committed frame in the tail segment (0: the segment holds no frame yet). */
  tailOffset: number;
  /** Committed size of the tail segment in bytes. */
  segmentSize: number;
  /** Fencing token: bumped by every admission. */
  epoch: number;
  holder: string | null;
  /**
   * The database file's change counter as changetrail's last commit left it (null where it cannot be
   * read: WAL mode, non-Linux). Any other commit since makes the file's counter differ.
   */
  changeCounter: number | null;
}

export const CREATE_HEAD_TABLE = `CREATE TABLE ${HEAD_TABLE} (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  format INTEGER NOT NULL,
  journal_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hash BLOB NOT NULL,
  segment INTEGER NOT NULL,
  tail_offset INTEGER NOT NULL,
  segment_size INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  holder TEXT,
  change_counter INTEGER
)`;

const SELECT_HEAD = `SELECT format, journal_id, seq, hash, segment, tail_offset, segment_size, epoch, holder, change_counter FROM ${HEAD_TABLE} WHERE id = 1`;

export function headTableExists(db: DatabaseSync): boolean {
  return db.prepare(`SELECT 1 AS found FROM sqlite_schema WHERE type = 'table' AND name = ?`).get(HEAD_TABLE) !== undefined;
}

export function insertHead(db: DatabaseSync, head: HeadRow): void {
  db.prepare(`INSERT INTO ${HEAD_TABLE} (id, format, journal_id, seq, hash, segment, tail_offset, segment_size, epoch, holder, change_counter)
    VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
    HEAD_TABLE_FORMAT, head.journalId, head.seq, head.hash, head.segment, head.tailOffset, head.segmentSize, head.epoch, head.holder, head.changeCounter,
  );
}

/**
 * Reads and updates the head row through statements prepared once per connection, and remembers the head
 * this connection committed last.
 *
 * `PRAGMA data_version` changes, for a connection, exactly when another connection committed (in any
 * process; rolling back a crashed writer's hot journal counts too), never for its own commits. So while a
 * write transaction reads the value the transaction of this connection's last commit read, nothing but
 * that commit has changed the file since, and the head row is the one it wrote: {@link current} returns it
 * without reading the row. This connection writes `_changetrail_head` only in changetrail's own
 * transactions (the capture guard refuses it to every body), which all end in {@link committed} or
 * {@link forget}. The read saved is one statement re-prepared per write (every capture-guard re-install
 * expires it): 13-25 µs of 160-330 µs of CPU per write (node --cpu-prof, one process, WAL on tmpfs).
 */
export class HeadStore {
  readonly #select: StatementSync;
  readonly #dataVersion: StatementSync;
  readonly #updatePosition: StatementSync;
  readonly #updateEpoch: StatementSync;
  readonly #updateChangeCounter: StatementSync;
  /** The head this connection's last commit left, and `data_version` as that commit's transaction read it. */
  #committed: { head: HeadRow; dataVersion: number } | null = null;

  constructor(db: DatabaseSync) {
    this.#select = db.prepare(SELECT_HEAD);
    this.#dataVersion = db.prepare('PRAGMA data_version');
    this.#updatePosition = db.prepare(`UPDATE ${HEAD_TABLE} SET seq = ?, hash = ?, segment = ?, tail_offset = ?, segment_size = ?, change_counter = ? WHERE id = 1`);
    this.#updateEpoch = db.prepare(`UPDATE ${HEAD_TABLE} SET epoch = ?, holder = ?, change_counter = ? WHERE id = 1`);
    this.#updateChangeCounter = db.prepare(`UPDATE ${HEAD_TABLE} SET change_counter = ? WHERE id = 1`);
  }

  read(): HeadRow {
    return parseHeadRow(this.#select.get());
  }

  /** `PRAGMA data_version` (call inside the transaction: the value is then that of its snapshot). */
  dataVersion(): number {
    return Number(this.#dataVersion.get()?.data_version);
  }

  /**
   * Inside a write transaction: the committed head, given the transaction's `data_version` — this
   * connection's last committed head while no other connection has committed since, else the row as read.
   * The caller owns the copy it gets.
   */
  current(dataVersion: number): HeadRow {
    const last = this.#committed;
    this.#committed = null;
    if (last !== null && last.dataVersion === dataVersion) return copyHead(last.head);
    return this.read();
  }

  /** After this connection's COMMIT: `head` is what the row now holds; `dataVersion` as its transaction read it. */
  committed(head: HeadRow, dataVersion: number): void {
    this.#committed = { head: copyHead(head), dataVersion };
  }

  /** After a transaction that did not commit, or whose outcome is unknown: the next one reads the row. */
  forget(): void {
    this.#committed = null;
  }

  updatePosition(head: HeadRow): void {
    this.#updatePosition.run(head.seq, head.hash, head.segment, head.tailOffset, head.segmentSize, head.changeCounter);
  }

  updateEpoch(epoch: number, holder: string, changeCounter: number | null): void {
    this.#updateEpoch.run(epoch, holder, changeCounter);
  }

  /** Records the change counter the transaction will leave (and dirties it, so that it does bump it). */
  updateChangeCounter(changeCounter: number | null): void {
    this.#updateChangeCounter.run(changeCounter);
  }
}

/** Reads the head row with a one-off statement (for connections that do not write). */
export function readHead(db: DatabaseSync): HeadRow {
  return parseHeadRow(db.prepare(SELECT_HEAD).get());
}

function copyHead(head: HeadRow): HeadRow {
  return { ...head, hash: new Uint8Array(head.hash) };
}

function parseHeadRow(row: Record<string, SQLOutputValue> | undefined): HeadRow {
  if (row === undefined || !HEAD_TABLE_FORMATS_READ.has(row.format) || !(row.hash instanceof Uint8Array) || row.hash.byteLength !== 32) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `read ${HEAD_TABLE}: the head row is missing or not in format 1 or ${HEAD_TABLE_FORMAT}`, {
      databaseJournalId: null, journalJournalId: null, reason: 'head row missing or malformed',
    });
  }
  return {
    journalId: String(row.journal_id), seq: Number(row.seq), hash: new Uint8Array(row.hash), segment: Number(row.segment),
    tailOffset: Number(row.tail_offset), segmentSize: Number(row.segment_size), epoch: Number(row.epoch),
    holder: row.holder === null ? null : String(row.holder),
    changeCounter: row.change_counter === null || row.change_counter === undefined ? null : Number(row.change_counter),
  };
}
