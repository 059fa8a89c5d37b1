/**
 * The replica's own one-row table: the position `(journal id, seq, entry hash)` it has applied, written
 * in the same transaction as every apply, so a crash at any point leaves rows and position agreeing
 * (journal/REPLAY.md). It also records the change counter the follower's last commit left in the file
 * header: any other commit moves it (a foreign write).
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openDatabaseReader } from '../journal/database-reader.js';
import { ChangetrailError } from '../errors.js';
import { positionOf, type Position } from '../journal/position.js';

export const REPLICA_TABLE = '_changetrail_replica';
/** Version of the table's layout. */
export const REPLICA_TABLE_FORMAT = 1;

export interface ReplicaRow {
  readonly position: Position;
  /** The source's token for reading on after `position` without a search (see ReplicaSource.entriesAfter). */
  readonly resume: string | null;
  /** Where the entries came from (a path or URL; informational, used by `changetrail status`). */
  readonly source: string;
  /** The file's change counter as the follower's last commit left it; null where it cannot be read. */
  readonly changeCounter: number | null;
  /** Local clock at the last apply, ms since the Unix epoch. */
  readonly appliedAtMs: number;
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${REPLICA_TABLE} (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  format INTEGER NOT NULL,
  journal_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  resume TEXT,
  source TEXT NOT NULL,
  change_counter INTEGER,
  applied_at INTEGER NOT NULL
)`;

const SELECT_ROW = `SELECT format, journal_id, seq, hash, resume, source, change_counter, applied_at FROM ${REPLICA_TABLE} WHERE id = 1`;

export function replicaTableExists(db: DatabaseSync): boolean {
  return db.prepare(`SELECT 1 AS found FROM main.sqlite_schema WHERE type = 'table' AND name = ?`).get(REPLICA_TABLE) !== undefined;
}

/** Creates the table holding `row` (a new replica, or one rebased onto a snapshot). Call inside a transaction. */
export function writeReplicaRow(db: DatabaseSync, row: ReplicaRow): void {
  db.exec(CREATE_TABLE);
  db.prepare(`INSERT OR REPLACE INTO ${REPLICA_TABLE} (id, format, journal_id, seq, hash, resume, source, change_counter, applied_at)
    VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
    REPLICA_TABLE_FORMAT, row.position.journalId, row.position.seq, row.position.hash, row.resume, row.source, row.changeCounter, row.appliedAtMs,
  );
}

/** Reads the row; null when the table or row is missing. */
export function readReplicaRow(db: DatabaseSync): ReplicaRow | null {
  if (!replicaTableExists(db)) return null;
  return parseRow(db.prepare(SELECT_ROW).get());
}

/**
 * Reads the row of the database file at `path` through a read-only connection of its own (the file is
 * never changed); null when the table or row is missing. Throws whatever opening or reading throws.
 */
export function readReplicaRowAt(path: string): ReplicaRow | null {
  const db = openDatabaseReader(path);
  try {
    return readReplicaRow(db);
  } finally {
    db.close();
  }
}

/** The row's statements, prepared once per connection. */
export class PositionStore {
  readonly #update: StatementSync;

  constructor(db: DatabaseSync) {
    this.#update = db.prepare(`UPDATE ${REPLICA_TABLE} SET seq = ?, hash = ?, resume = ?, change_counter = ?, applied_at = ? WHERE id = 1`);
  }

  /** Records `position` as applied; the caller's transaction commits it together with the rows. */
  update(position: Position, resume: string | null, changeCounter: number | null, appliedAtMs: number): void {
    const result = this.#update.run(position.seq, position.hash, resume, changeCounter, appliedAtMs);
    if (Number(result.changes) !== 1) throw new Error('replica position row vanished inside the apply transaction');
  }
}

function parseRow(row: Record<string, unknown> | undefined): ReplicaRow | null {
  if (row === undefined) return null;
  if (row.format !== REPLICA_TABLE_FORMAT) {
    throw new ChangetrailError('REPLICA_NOT_A_REPLICA', `read ${REPLICA_TABLE}: format ${String(row.format)} is not ${REPLICA_TABLE_FORMAT}`, {
      replica: '', reason: `replica table format ${String(row.format)}`,
    });
  }
  return {
    position: positionOf(String(row.journal_id), Number(row.seq), String(row.hash)),
    resume: typeof row.resume === 'string' ? row.resume : null,
    source: String(row.source),
    changeCounter: row.change_counter === null || row.change_counter === undefined ? null : Number(row.change_counter),
    appliedAtMs: Number(row.applied_at),
  };
}
