/**
 * A replica's status read from its file alone, by a process that is not following it (`changetrail
 * status replica.db`): the stored position, the source it names (a local journal or a NATS stream), the
 * source's committed head, and the lag. Opens the replica read-only; changes nothing.
 */
import type { DatabaseSync } from 'node:sqlite';
import { openDatabaseReader } from '../journal/database-reader.js';
import { ChangetrailError } from '../errors.js';
import { openJournalSource } from './journal-source.js';
import { isNatsAddress, parseNatsAddress } from './nats-address.js';
import type { ReplicaSource } from './source.js';
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
 * The status of the replica at `path`, without following it, for a replica of a local journal or of a
 * NATS stream alike (the source named in its position row, or `source`). `lagMs` is the age (by the
 * writer's clock) of the oldest entry not applied yet, 0 when caught up.
 *
 * @throws ChangetrailError REPLICA_NOT_A_REPLICA; the source's errors (JOURNAL_MISMATCH, NATS_UNAVAILABLE, IO_ERROR...).
 */
export async function readReplicaStatus(path: string, options: { source?: ReplicaSource } = {}): Promise<ReplicaStatus> {
  const row = readRow(path);
  const source = options.source ?? await sourceNamed(row.source);
  try {
    const applied = row.position;
    await source.refresh?.(applied);
    const head = source.readHead();
    const lagEntries = head.journalId === applied.journalId ? Math.max(0, head.seq - applied.seq) : 0;
    let lagMs = 0;
    if (lagEntries > 0) {
      for await (const entry of source.entriesAfter(applied, head, row.resume)) {
        lagMs = Math.max(0, Date.now() - entry.time);
        break;
      }
    }
    return {
      replica: path, source: source.description, journalId: applied.journalId, appliedSeq: applied.seq, appliedHash: applied.hash,
      sourceHeadSeq: head.seq, lagEntries, lagMs, state: 'idle',
    };
  } finally {
    if (options.source === undefined) source.close();
  }
}

/** The source a replica's row names: a NATS address (`nats://host:4222/<name>`) or a local path. */
async function sourceNamed(description: string): Promise<ReplicaSource> {
  if (!isNatsAddress(description)) return openJournalSource(description);
  // The NATS client (~40 ms to load) only for a replica of a stream.
  const { natsSource } = await import('./nats-source.js');
  return natsSource({ clientName: 'changetrail status', ...parseNatsAddress(description, 'status') });
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
