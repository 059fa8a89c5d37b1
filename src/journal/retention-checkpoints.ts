/**
 * Finding the checkpoints a journal retains: `checkpoint-<seq>.db` files whose entry `seq` is a retained,
 * proven checkpoint entry naming that very file. A file without such an entry (a checkpoint killed
 * between installing its snapshot and committing) is not a checkpoint and is never used.
 */
import { ChangetrailError } from '../errors.js';
import { toHex } from './bytes.js';
import { listDirectory } from './files.js';
import type { Journal } from './journal.js';
import { positionOf, type Position } from './position.js';
import type { SnapshotRef } from './entry.js';
import { historyPruned, startingState } from './retention-base.js';

const CHECKPOINT_NAME = /^checkpoint-(\d{1,16})\.db$/;

/** A retained checkpoint: its entry and the state its snapshot holds. */
export interface RetainedCheckpoint {
  /** The checkpoint entry. */
  readonly entry: Position;
  /** The entry whose state the snapshot holds. */
  readonly at: Position;
  readonly snapshot: SnapshotRef;
  /** The checkpoint entry's time, ms since the Unix epoch. */
  readonly time: number;
}

/** Seqs of the `checkpoint-<seq>.db` files present, descending. */
export function checkpointFileSeqs(dir: string): number[] {
  return listDirectory(dir).map((name) => CHECKPOINT_NAME.exec(name)).filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1])).filter(Number.isSafeInteger).sort((a, b) => b - a);
}

/**
 * Retained checkpoints of `journal` (entries after its base up to its head), newest first, read lazily:
 * each costs one anchored entry read. `atOrBefore` skips checkpoints holding a later state.
 */
export function* retainedCheckpoints(journal: Journal, atOrBefore = Number.MAX_SAFE_INTEGER): Generator<RetainedCheckpoint> {
  const earliest = (journal.base?.seq ?? 0) + 1;
  for (const seq of checkpointFileSeqs(journal.dir)) {
    if (seq > journal.head.seq || seq < earliest) continue;
    const entry = journal.entry(seq);
    if (entry.kind !== 'checkpoint' || entry.at === undefined || entry.snapshot?.file === undefined) continue;
    if (entry.at.seq > atOrBefore) continue;
    yield {
      entry: positionOf(journal.head.journalId, seq, entry.hash), at: positionOf(journal.head.journalId, entry.at.seq, entry.at.hash),
      snapshot: entry.snapshot, time: entry.time,
    };
  }
}

/** The newest retained checkpoint holding a state at or before `atOrBefore`, or null. */
export function newestCheckpoint(journal: Journal, atOrBefore?: number): RetainedCheckpoint | null {
  for (const checkpoint of retainedCheckpoints(journal, atOrBefore)) return checkpoint;
  return null;
}

/**
 * The newest base state at or before `seq` that a rebuild can start from: a retained checkpoint, else
 * where retained history starts (genesis, or the base checkpoint of a pruned journal). Resync snapshots
 * are the caller's concern (they replace the state wherever they occur).
 */
export function nearestBaseState(journal: Journal, seq: number): { seq: number; position: Position; ref: SnapshotRef } {
  if (journal.base !== null && seq < journal.base.seq) throw historyPruned('find a base state', seq, journal.base);
  const checkpoint = newestCheckpoint(journal, seq);
  if (checkpoint !== null) return { seq: checkpoint.at.seq, position: checkpoint.at, ref: checkpoint.snapshot };
  const start = startingState(journal.base, journal.identity.manifest);
  return { seq: start.seq, position: journal.positionAt(start.seq), ref: start.ref };
}

/**
 * Checks where `journal`'s history starts, as `verify` does: genesis.db against the manifest, or, for a
 * pruned journal, that the base checkpoint entry is retained, is a checkpoint naming the base state the
 * `base` file names (seq, hash, snapshot digest), that the base hash is proven by the chain, and the
 * snapshot against its digest. Returns the seq verification starts after (0 at genesis).
 *
 * @throws ChangetrailError JOURNAL_CHECKSUM_MISMATCH (a snapshot differs), JOURNAL_CHAIN_BROKEN (the base
 *   file names another history), JOURNAL_*, IO_ERROR.
 */
export function verifyStartingState(journal: Journal, verify: (file: string, sha256: Uint8Array, size: number) => void): number {
  const { base } = journal;
  const start = startingState(base, journal.identity.manifest);
  if (base !== null && base.checkpointSeq <= journal.head.seq) {
    const entry = journal.entry(base.checkpointSeq);
    const names = entry.kind === 'checkpoint' && entry.at !== undefined && entry.at.seq === base.seq && toHex(entry.at.hash) === base.hash &&
      entry.snapshot !== undefined && entry.snapshot.file === base.snapshot.file && entry.snapshot.size === base.snapshot.size && toHex(entry.snapshot.sha256) === toHex(base.snapshot.sha256);
    if (!names) throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `verify: the base file names checkpoint ${base.checkpointSeq}, which the journal does not hold as recorded`, { seq: base.checkpointSeq, file: 'base' });
    journal.positionAt(base.seq);
  }
  verify(start.ref.file, start.ref.sha256, start.ref.size);
  return start.seq;
}
