/**
 * Roll forward (`changetrail recover <db>`): a database restored from an older copy — a `sqlite3 .backup`,
 * a file copy, or a stamped backup put back in place — is behind its journal: the journal holds committed
 * entries its head row does not. Every command refuses it (DATABASE_BEHIND_JOURNAL). Recover replays the
 * missing entries onto the database itself, exactly (journal/REPLAY.md), under the admission lock and in
 * one transaction that also moves the head row, so the database then resumes as an ordinary trail with
 * nothing lost.
 *
 * The trail side (opening a database in that state, the lock, the head row) belongs to src/write
 * (`openTrailForRecovery`, `trail.rollForward`); this module supplies the exact apply of each entry.
 */
import type { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { bytesEqual } from '../journal/bytes.js';
import type { JournalEntry } from '../journal/journal.js';
import { applyChangesetExactlyInTransaction, applyMigrationRowids } from '../apply/apply-entry.js';
import { openSchemaHistory } from '../apply/schema-history.js';
import { openJournal, readHeadMarkerPosition } from '../journal/journal.js';
import { BACKUP_STAMP_TABLE } from './backup.js';

/** The part of a trail from `openTrailForRecovery` that recover needs (structural: export/ does not import write/). */
export interface RecoverableTrail {
  readonly path: string;
  readonly journalDir: string;
  /** How far the database is behind its journal; null when it is not. */
  readonly behind: { readonly databaseSeq: number; readonly journalSeq: number } | null;
  rollForward(apply: (db: DatabaseSync, entry: JournalEntry) => void): Promise<{ from: number; to: number } | null>;
}

export interface RecoverResult {
  /** The entries replayed (`from..to`), or null when the database was not behind. */
  readonly applied: { readonly from: number; readonly to: number } | null;
}

const SAVEPOINT = 'export_recover_migration';

/**
 * Brings a database that is behind its journal to the journal's head by replaying the missing entries
 * exactly, in one transaction with the head row (all or nothing). Data entries are applied with triggers
 * suspended and foreign keys off; a schema entry's migration is first replayed under the replay guard on
 * the schema history's scratch database (so journal SQL that reaches outside the database is refused
 * before it touches the real one), then run in place and its recorded rows forced exactly. A resync entry
 * (a new base snapshot) cannot be rolled over in place: refused with a hint.
 *
 * @example
 * const trail = await openTrailForRecovery('app.db');
 * const { applied } = await recover(trail);
 * await trail.close();
 * @throws ChangetrailError EXPORT_RANGE_UNSUPPORTED (a resync entry past the database's head),
 *   CHANGESET_CONFLICT (the database is not the state its head row says), REPLAY_REFUSED, and the errors
 *   of `trail.rollForward` (LOCK_TIMEOUT, JOURNAL_*, IO_ERROR, SQLITE_ERROR).
 */
export async function recover(trail: RecoverableTrail): Promise<RecoverResult> {
  const behind = trail.behind;
  if (behind === null) return { applied: null };
  const validated = validateMigrations(trail.journalDir);
  let first = true;
  const applied = await trail.rollForward((db, entry) => {
    // A stamped backup put back in place carries its stamp: once rolled forward it stamps nothing.
    if (first) db.exec(`DROP TABLE IF EXISTS main.${BACKUP_STAMP_TABLE}`);
    first = false;
    applyInPlace(db, entry, validated);
  });
  return { applied };
}

/**
 * Replays the journal's migrations under the replay guard on a schema-only scratch database (the one
 * schema history), anchored to the newest head marker; returns the seqs whose SQL passed.
 */
function validateMigrations(journalDir: string): ReadonlySet<number> {
  const marker = readHeadMarkerPosition(journalDir);
  if (marker === null) return new Set();
  const journal = openJournal(journalDir, marker);
  const history = openSchemaHistory(journal);
  try {
    for (const seq of history.changes) history.schemaFor(seq);
    return new Set(history.changes);
  } finally {
    history.close();
  }
}

function applyInPlace(db: DatabaseSync, entry: JournalEntry, validated: ReadonlySet<number>): void {
  const options = { seq: entry.seq, ...(entry.rowids === undefined ? {} : { rowids: entry.rowids }) };
  if (entry.kind === 'write') return applyChangesetExactlyInTransaction(db, entry.changeset, options);
  if (entry.kind === 'resync') {
    const hint = `entry ${entry.seq} is a resync (a new base snapshot): put back a backup taken at or after it (changetrail backup), then recover`;
    throw new ChangetrailError('EXPORT_RANGE_UNSUPPORTED', `recover: ${hint}`, { seq: entry.seq, kind: 'resync', format: 'recover', hint });
  }
  if (!validated.has(entry.seq)) {
    throw new ChangetrailError('REPLAY_REFUSED', `recover: migration ${entry.seq} was not validated under the replay guard`, { action: 'SQL', reason: 'not validated', seq: entry.seq });
  }
  applyMigrationInPlace(db, entry, options);
}

/** REPLAY.md "Schema entries", inside the caller's transaction (foreign keys already off). */
function applyMigrationInPlace(db: DatabaseSync, entry: JournalEntry, options: { seq: number; rowids?: Uint8Array }): void {
  db.exec(`SAVEPOINT ${SAVEPOINT}`);
  try {
    const replayed = runRecorded(db, entry.sql ?? '');
    if (replayed === null) {
      if (entry.changeset.byteLength > 0) {
        throw new ChangetrailError('CHANGESET_CONFLICT', `recover migration ${entry.seq}: the script's changes cannot be recorded here but the entry holds some`, {
          conflict: 'UNRECORDABLE_MIGRATION', seq: entry.seq,
        });
      }
    } else if (!bytesEqual(replayed, entry.changeset)) {
      applyChangesetExactlyInTransaction(db, replayed, { seq: entry.seq, invert: true });
      applyChangesetExactlyInTransaction(db, entry.changeset, { seq: entry.seq });
    }
    applyMigrationRowids(db, options.rowids, entry.seq);
    db.exec(`RELEASE ${SAVEPOINT}`);
  } catch (error) {
    if (db.isTransaction) db.exec(`ROLLBACK TO ${SAVEPOINT}; RELEASE ${SAVEPOINT}`);
    throw error;
  }
}

function runRecorded(db: DatabaseSync, sql: string): Uint8Array | null {
  const session = db.createSession();
  try {
    db.exec(sql);
    try {
      return session.changeset();
    } catch (error) {
      const errcode = (error as { errcode?: unknown }).errcode;
      if ((error as { code?: unknown }).code === 'ERR_SQLITE_ERROR' && (errcode === 0 || errcode === 17)) return null;
      throw error;
    }
  } finally {
    session.close();
  }
}
