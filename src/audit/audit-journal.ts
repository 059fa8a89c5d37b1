/**
 * The journal as audit reads it: the committed head taken from the database (opened read-only, never
 * written; `readCommittedHead`), and the head-anchored journal reader. Audit never writes the database or
 * the journal's own files; its index lives in a file of its own (audit-index.ts).
 */
import { existsSync, realpathSync } from 'node:fs';
import { fromHex } from '../journal/bytes.js';
import { openJournal, readCommittedHead, type Journal, type JournalEntry } from '../journal/journal.js';
import type { JournalIdentity } from '../journal/journal-reader.js';
import { positionOf, type Position } from '../journal/position.js';

/** An open, read-only view of one database's journal. */
export interface AuditJournal {
  readonly databasePath: string;
  readonly journalDir: string;
  readonly identity: JournalIdentity;
  /** The journal reader, anchored to the committed head. */
  readonly reader: Journal;
  /** The committed head, as the database records it. */
  readonly head: Position;
  readonly committed: { seq: number; hash: Uint8Array };
  /** Verified entries `from..to` (default: all), in order, each proven to chain to the head. */
  entries(range?: { from?: number; to?: number }): Generator<JournalEntry>;
}

/**
 * Opens the journal of `databasePath` for reading.
 *
 * @throws ChangetrailError JOURNAL_MISMATCH when the database has no journal or the ids differ; IO_ERROR.
 */
export function openAuditJournal(databasePath: string): AuditJournal {
  const path = existsSync(databasePath) ? realpathSync(databasePath) : databasePath;
  const journalDir = `${path}.changes`;
  const head = readCommittedHead(path);
  const reader = openJournal(journalDir, head);
  return {
    databasePath: path, journalDir, identity: reader.identity, reader, head,
    committed: { seq: head.seq, hash: fromHex(head.hash) },
    entries: (range = {}) => reader.entries(range),
  };
}

/** The journal anchored at an earlier position of the same chain (for replaying up to it). */
export function journalAt(journal: AuditJournal, seq: number, hash: Uint8Array): Journal {
  return openJournal(journal.journalDir, positionOf(journal.head.journalId, seq, hash));
}
