/**
 * Stamped backups: a consistent copy of the database taken while writers keep going, which records the
 * journal position it corresponds to, so that restore, recover and replicas can start from it and apply
 * only the entries that follow.
 */
import { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { openDatabaseReader } from '../journal/database-reader.js';
import { openJournal, readCommittedHead } from '../journal/journal.js';
import { positionOf, type Position } from '../journal/position.js';
import { OUTBOX_TABLE } from '../journal/outbox.js';
import { OutputFile } from './output-file.js';
import { sourcePaths, type TrailSource } from './journal-source.js';

/** The table holding a backup's stamp (changetrail's own: left out of digests, exports and replays). */
export const BACKUP_STAMP_TABLE = '_changetrail_backup';
const STAMP_FORMAT = 1;
const HEAD_TABLE = '_changetrail_head';

/** Where a backup stands in its journal, and when and from where it was taken. */
export interface BackupStamp extends Position {
  /** ms since the Unix epoch. */
  readonly takenAtMs: number;
  /** The database file it was taken from. */
  readonly source: string;
}

export interface BackupOptions {
  /** Replace an existing output file. */
  force?: boolean;
}

/**
 * Writes a consistent copy of the database to `out` (SQLite's `VACUUM INTO`, one read transaction, so the
 * copy holds exactly the commits up to one point) and stamps it with the journal position of that point:
 * the head row the copy itself contains, checked against the journal. The copy is an ordinary SQLite
 * database in rollback-journal mode; it keeps changetrail's head row (so that a copy put back in place is
 * recognised and rolled forward by `recover`) and adds a one-row `_changetrail_backup` table
 * (`journal_id`, `seq`, `hash`, `taken_at_ms`, `source`).
 *
 * Writers are not stopped. In WAL mode they do not wait at all; in rollback-journal mode a commit waits
 * while the copy reads (SQLite's shared lock), within its busy timeout.
 *
 * @example
 * const stamp = await backup('app.db', 'nightly.db');
 * console.log(`backup at entry ${stamp.seq} (${stamp.hash})`);
 * @throws ChangetrailError OUTPUT_EXISTS, JOURNAL_MISMATCH (not a changetrail database), BACKUP_MISMATCH (the
 *   copy's head is not an entry of the journal), IO_ERROR, SQLITE_ERROR.
 */
export async function backup(source: TrailSource, out: string, options: BackupOptions = {}): Promise<BackupStamp> {
  const { databasePath, journalDir } = sourcePaths(source);
  const output = OutputFile.prepare(out, options.force === true);
  try {
    copyConsistently(databasePath, output.temp);
    const stamp = stampCopy(output.temp, databasePath, journalDir);
    output.commit();
    return stamp;
  } catch (error) {
    output.discard();
    throw error;
  }
}

function copyConsistently(databasePath: string, temp: string): void {
  const reader = openDatabaseReader(databasePath, { timeoutMs: 5_000 });
  try {
    // A WAL database nobody holds open is read through a query_only read-write connection (so its close
    // removes the -wal/-shm it created), and query_only refuses VACUUM INTO as a write ("attempt to write
    // a readonly database"). VACUUM INTO writes only its target, so lifting it for this statement keeps
    // the source untouched.
    reader.exec('PRAGMA query_only = OFF');
    reader.prepare('VACUUM INTO ?').run(temp);
  } catch (cause) {
    throw new ChangetrailError('SQLITE_ERROR', `backup ${databasePath}: ${(cause as Error).message}`, { operation: 'backup' }, { cause });
  } finally {
    reader.close();
  }
}

/** Reads the copy's own head, proves it is an entry of the journal, and writes the stamp into the copy. */
function stampCopy(temp: string, databasePath: string, journalDir: string): BackupStamp {
  const copied = readCommittedHead(temp);
  const journal = openJournal(journalDir, readCommittedHead(databasePath));
  if (copied.journalId !== journal.head.journalId || copied.seq > journal.head.seq || journal.positionAt(copied.seq).hash !== copied.hash) {
    throw new ChangetrailError('BACKUP_MISMATCH', `backup ${databasePath}: the copy's head (entry ${copied.seq}) is not an entry of the journal`, {
      path: databasePath, reason: 'copied head not in the journal', seq: copied.seq,
    });
  }
  const stamp: BackupStamp = { ...copied, takenAtMs: Date.now(), source: databasePath };
  const db = new DatabaseSync(temp);
  try {
    db.exec('PRAGMA journal_mode = DELETE');
    db.exec(`CREATE TABLE ${BACKUP_STAMP_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), format INTEGER NOT NULL, journal_id TEXT NOT NULL,
      seq INTEGER NOT NULL, hash TEXT NOT NULL, taken_at_ms INTEGER NOT NULL, source TEXT NOT NULL)`);
    db.prepare(`INSERT INTO ${BACKUP_STAMP_TABLE} VALUES (1, ?, ?, ?, ?, ?, ?)`).run(STAMP_FORMAT, stamp.journalId, stamp.seq, stamp.hash, stamp.takenAtMs, stamp.source);
  } finally {
    db.close();
  }
  return stamp;
}

/**
 * The stamp of a backup made by {@link backup}; null for a file without one.
 * @throws ChangetrailError BACKUP_MISMATCH for a malformed stamp, SQLITE_ERROR if the file is not a database.
 */
export function readBackupStamp(path: string): BackupStamp | null {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const exists = db.prepare(`SELECT 1 AS found FROM sqlite_schema WHERE type = 'table' AND name = ?`).get(BACKUP_STAMP_TABLE);
    if (exists === undefined) return null;
    const row = db.prepare(`SELECT format, journal_id, seq, hash, taken_at_ms, source FROM ${BACKUP_STAMP_TABLE} WHERE id = 1`).get();
    if (row === undefined || row.format !== STAMP_FORMAT) {
      throw new ChangetrailError('BACKUP_MISMATCH', `read backup stamp of ${path}: missing or unknown format`, { path, reason: 'malformed stamp' });
    }
    try {
      return { ...positionOf(String(row.journal_id), Number(row.seq), String(row.hash)), takenAtMs: Number(row.taken_at_ms), source: String(row.source) };
    } catch (cause) {
      throw new ChangetrailError('BACKUP_MISMATCH', `read backup stamp of ${path}: ${(cause as Error).message}`, { path, reason: 'malformed stamp' }, { cause });
    }
  } catch (cause) {
    if (cause instanceof ChangetrailError) throw cause;
    throw new ChangetrailError('SQLITE_ERROR', `read backup stamp of ${path}: ${(cause as Error).message}`, { operation: 'read backup stamp' }, { cause });
  } finally {
    db.close();
  }
}

/** Removes changetrail's own tables from a copy (restore output holds user tables only, like genesis.db). */
export function dropChangetrailTables(db: DatabaseSync): void {
  db.exec(`DROP TABLE IF EXISTS ${HEAD_TABLE}; DROP TABLE IF EXISTS ${OUTBOX_TABLE}; DROP TABLE IF EXISTS ${BACKUP_STAMP_TABLE}`);
}
