/**
 * The journal as audit reads it: the committed head taken from the database (opened read-only, never
 * written), the manifest, and verified entries. Audit never writes the database or the journal's own
 * files; its index lives in a file of its own (audit-index.ts).
 */
import { existsSync, realpathSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { readJournalEntries, readManifest, type CommittedHead, type JournalEntry, type JournalIdentity } from '../journal/journal-reader.js';
import { positionOf, type Position } from '../journal/position.js';

/** An open, read-only view of one database's journal. */
export interface AuditJournal {
  readonly databasePath: string;
  readonly journalDir: string;
  readonly identity: JournalIdentity;
  /** The committed head, as the database records it. */
  readonly head: Position;
  readonly committed: CommittedHead;
  /** Verified entries `from..to` (default: all), in order. */
  entries(range?: { from?: number; to?: number }): Generator<JournalEntry>;
}

const HEAD_SELECT = 'SELECT journal_id, seq, hash FROM _changetrail_head WHERE id = 1';

/**
 * Opens the journal of `databasePath` for reading.
 *
 * @throws ChangetrailError JOURNAL_MISMATCH when the database has no journal or the ids differ; IO_ERROR.
 */
export function openAuditJournal(databasePath: string): AuditJournal {
  const path = realpathOrSelf(databasePath);
  const journalDir = `${path}.changes`;
  const identity = readManifest(journalDir);
  if (identity === null) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `open ${path}: no changetrail journal (${journalDir}/manifest is missing)`, {
      databaseJournalId: null, journalJournalId: null, reason: 'journal directory missing',
    });
  }
  const committed = readCommittedHeadReadOnly(path);
  const journalId = toHex(identity.manifest.journalId);
  if (committed.journalId !== journalId) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `open ${path}: the database records journal ${committed.journalId}, the directory holds ${journalId}`, {
      databaseJournalId: committed.journalId, journalJournalId: journalId, reason: 'journal ids differ',
    });
  }
  const head = positionOf(journalId, committed.seq, committed.hash);
  return {
    databasePath: path, journalDir, identity, head, committed,
    entries: (range = {}) => readJournalEntries(journalDir, { identity, committed, ...range }),
  };
}

function realpathOrSelf(path: string): string {
  return existsSync(path) ? realpathSync(path) : path;
}

/** The head row, read on a read-only connection that changes nothing (not even the journal mode). */
function readCommittedHeadReadOnly(path: string): CommittedHead & { journalId: string } {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (cause) {
    throw new ChangetrailError('IO_ERROR', `open ${path} read-only: ${(cause as Error).message}`, { operation: 'open database', path }, { cause });
  }
  try {
    const row = db.prepare(HEAD_SELECT).get();
    if (row === undefined || !(row.hash instanceof Uint8Array)) throw new Error('no head row');
    return { journalId: String(row.journal_id), seq: Number(row.seq), hash: new Uint8Array(row.hash) };
  } catch (cause) {
    if (cause instanceof ChangetrailError) throw cause;
    throw new ChangetrailError('JOURNAL_MISMATCH', `read the head of ${path}: ${(cause as Error).message}`, {
      databaseJournalId: null, journalJournalId: null, reason: 'head row missing or malformed',
    }, { cause });
  } finally {
    db.close();
  }
}
