/**
 * Replays a journal onto a copy of its base state: the genesis snapshot (or, for a pruned journal, its
 * base checkpoint's snapshot), replaced by a resync entry's snapshot where one occurs; checkpoint
 * entries change nothing. Used by `verify --replay` and by anyone building a database from a journal directory.
 */
import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ChangetrailError } from '../errors.js';
import { bytesEqual } from '../journal/bytes.js';
import { startingState } from '../journal/retention-base.js';
import type { Journal } from '../journal/journal.js';
import { applyEntryExactly } from './apply-entry.js';
import { openReplayDatabase } from './replay-guard.js';
import { digestSnapshotFile } from './snapshot-digest.js';

/** Checks a snapshot file in the journal directory against the digest that names it. */
export function verifySnapshot(dir: string, file: string, sha256: Uint8Array, size: number): void {
  const actual = digestSnapshotFile(join(dir, file));
  if (actual.size !== size || !bytesEqual(actual.sha256, sha256)) {
    throw new ChangetrailError('JOURNAL_CHECKSUM_MISMATCH', `verify ${file}: its SHA-256 or size differs from the journal's record`, { file, offset: 0 });
  }
}

/**
 * Builds `target` (a new file) as the state at `journal.head`, every entry read anchored to that head.
 * Returns the number of entries applied.
 */
export function replayJournal(journal: Journal, target: string): number {
  const { dir, identity } = journal;
  const start = startingState(journal.base, identity.manifest).ref;
  verifySnapshot(dir, start.file, start.sha256, start.size);
  copyFileSync(join(dir, start.file), target);
  chmodSync(target, 0o600); // the copy keeps the snapshot's mode, read-only for a reader who cannot write the journal
  let db = openReplayDatabase(target);
  let applied = 0;
  try {
    for (const entry of journal.entries()) {
      if (entry.kind === 'resync') {
        const snapshot = entry.snapshot!;
        verifySnapshot(dir, snapshot.file, snapshot.sha256, snapshot.size);
        db.close();
        rmSync(`${target}-journal`, { force: true });
        copyFileSync(join(dir, snapshot.file), target);
        chmodSync(target, 0o600);
        db = openReplayDatabase(target);
      } else if (entry.kind !== 'checkpoint') {
        applyEntryExactly(db, {
          kind: entry.kind, changeset: entry.changeset, seq: entry.seq,
          ...(entry.sql === undefined ? {} : { sql: entry.sql }), ...(entry.rowids === undefined ? {} : { rowids: entry.rowids }),
        });
      }
      applied += 1;
    }
  } finally {
    db.close();
  }
  return applied;
}
