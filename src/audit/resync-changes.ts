/**
 * What a resync entry changed: a resync records the database as found after writes made outside
 * changetrail, so no changeset says which rows those writes touched. Audit rebuilds the state just before
 * the resync from the journal and compares it with the resync's snapshot, row by row.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { verifySnapshot } from '../apply/replay.js';
import { toHex } from '../journal/bytes.js';
import type { JournalEntry } from '../journal/journal.js';
import type { AuditJournal } from './audit-journal.js';
import { compareStates, withStateAt, type RowDifference } from './state-compare.js';

/**
 * Answers already computed in this process, by entry hash: the hash names the resync entry and, through
 * the chain, every entry before it, so an equal hash means an equal answer. Bounded: oldest dropped first.
 */
const cache = new Map<string, RowDifference[]>();
const CACHE_ENTRIES_MAX = 64;

/** The rows resync entry `entry` changed (computing them replays the journal up to it). */
export function resyncDifferences(journal: AuditJournal, entry: JournalEntry): RowDifference[] {
  const id = `${journal.head.journalId}/${toHex(entry.hash)}`;
  const known = cache.get(id);
  if (known !== undefined) return known;
  const snapshot = entry.snapshot!;
  verifySnapshot(journal.journalDir, snapshot.file, snapshot.sha256, snapshot.size);
  const differences = withStateAt(journal, entry.seq - 1, entry.prevHash, (before) => {
    const after = new DatabaseSync(join(journal.journalDir, snapshot.file), { readOnly: true });
    try {
      return compareStates(before, after);
    } finally {
      after.close();
    }
  });
  cache.set(id, differences);
  if (cache.size > CACHE_ENTRIES_MAX) cache.delete(cache.keys().next().value!);
  return differences;
}
