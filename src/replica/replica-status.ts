/**
 * A replica's status read from its file alone, by a process that is not following it (`changetrail
 * status replica.db`): the stored position, the source it names, the source's committed head, and the
 * lag. Opens the replica read-only; changes nothing.
 */
import type { DatabaseSync } from 'node:sqlite';
import { openDatabaseReader } from '../journal/database-reader.js';
import { ChangetrailError } from '../errors.js';
import { openJournalSource } from './journal-source.js';
import { readReplicaRowAt, replicaTableExists, type ReplicaRow } from './position-table.js';
import type { ReplicaStatus } from './replica.js';

/** True when `path` is a SQLite database holding a changetrail replica position. Never throws. */
export function isReplicaFile(path: string): boolean {
  try {
    const db = openDatabaseReader(path);
    try {
      return replicaTableExists(db);
    } finally {
      db.close();
    }
  } catch {
    return false;
  }
}

/**
 * The status of the replica at `path`, without following it. `lagMs` is the age (by the writer's clock)
 * of the oldest entry not applied yet, 0 when caught up.
 *
 * @throws ChangetrailError REPLICA_NOT_A_REPLICA; the source's errors (JOURNAL_MISMATCH, IO_ERROR...).
 */
export function readReplicaStatus(path: string): ReplicaStatus {
  const row = readRow(path);
  const source = openJournalSource(row.source);
  try {
    const head = source.readHead();
    const applied = row.position;
    const lagEntries = head.journalId === applied.journalId ? Math.max(0, head.seq - applied.seq) : 0;
    let lagMs = 0;
    if (lagEntries > 0) {
      for (const entry of source.entriesAfter(applied, head, row.resume)) {
        lagMs = Math.max(0, Date.now() - entry.time);
        break;
      }
    }
    return {
      replica: path, source: source.description, journalId: applied.journalId, appliedSeq: applied.seq, appliedHash: applied.hash,
      sourceHeadSeq: head.seq, lagEntries, lagMs, state: 'idle',
    };
  } finally {
    source.close();
  }
}

function readRow(path: string): ReplicaRow {
  let row: ReplicaRow | null = null;
  try {
    row = readReplicaRowAt(path);
  } catch (cause) {
    if (cause instanceof ChangetrailError) throw cause;
  }
  if (row === null) {
    throw new ChangetrailError('REPLICA_NOT_A_REPLICA', `read replica ${path}: not a changetrail replica`, { replica: path, reason: 'no replica position' });
  }
  return row;
}
