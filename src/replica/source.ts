/**
 * Where a replica's entries come from. A follower only needs five things of a source: the journal's
 * identity, its committed head, the verified entries after a position, a snapshot file materialised
 * locally, and a wake-up hint. {@link ReplicaSource} is that seam; {@link openJournalSource} is the local
 * implementation (a primary database path or a journal directory). A remote source (NATS JetStream,
 * issue 14) implements the same interface.
 */
import type { Position } from '../journal/position.js';
import type { EntryKind, SnapshotRef } from '../journal/entry.js';

/** A verified, committed journal entry as a replica applies it. */
export interface SourceEntry {
  readonly seq: number;
  readonly kind: EntryKind;
  /** Entry hash, lowercase hex. */
  readonly hash: string;
  /** The writer's clock at commit, ms since the Unix epoch (informational). */
  readonly time: number;
  readonly changeset: Uint8Array;
  /** Rowids of keyed rowid tables to reproduce (journal/FORMAT.md §6.1), as stored. */
  readonly rowids?: Uint8Array;
  readonly sql?: string;
  readonly snapshot?: SnapshotRef;
  readonly undoes?: number;
  /** Opaque token for `entriesAfter(…, resume)` to continue after this entry; null when the source has none. */
  readonly resume: string | null;
}

/**
 * How a head read may wait: 'wait' (default) for whatever the source needs (a writer's lock); 'no-wait'
 * (after a change hint) returns at once, with the last head known when the current one is not readable
 * without waiting. A source without locks treats both alike.
 */
export type HeadWait = 'wait' | 'no-wait';

/** A base state a replica can start from: genesis (seq 0), a checkpoint's snapshot, or the snapshot of a resync entry. */
export interface SourceSnapshot {
  /** The position the snapshot's content is the state at. */
  readonly position: Position;
  /** The snapshot's reference (file name, digest, size) as the journal records it. */
  readonly ref: SnapshotRef;
}

/** Stops a wake-up subscription. */
export interface SourceWatch {
  close(): Promise<void>;
}

/**
 * A journal a replica follows. Implementations verify what they hand out: entries are checked against
 * the chain and the committed head before they are yielded, and snapshots against their digests.
 */
export interface ReplicaSource {
  /** What to show in status and store beside the position (a path or a URL). */
  readonly description: string;
  /** The chain root: journal id, seq 0, the `prevHash` of entry 1. */
  readonly root: Position;
  /**
   * The committed head now (never a frame past it), with the journal id the source names now: a source
   * swapped for another history shows another `journalId` than {@link root}. An advisory head (a marker
   * file) never goes backwards; an authoritative one (the primary's head row) is reported as it is.
   */
  readHead(wait?: HeadWait): Position;
  /**
   * Committed entries `from.seq + 1 .. to.seq`, each verified to chain from `from` and to `to`.
   * `resume` is a token an earlier entry carried (stored beside the position): where to start reading
   * without a search. A stale token may only cost time, never correctness.
   *
   * @throws ChangetrailError POSITION_MISMATCH when the journal's entry at `from.seq` is not `from`;
   *   JOURNAL_TORN_TAIL when committed bytes are not there yet (retry later); JOURNAL_CHECKSUM_MISMATCH,
   *   JOURNAL_CHAIN_BROKEN, JOURNAL_MALFORMED, JOURNAL_GAP for a damaged journal.
   */
  entriesAfter(from: Position, to: Position, resume?: string | null): Iterable<SourceEntry> | AsyncIterable<SourceEntry>;
  /** The hash of entry `seq` (the root at 0), or null when the journal does not hold it. */
  hashAt(seq: number, head: Position): string | null;
  /** The newest base state at or before `head`: the last resync snapshot or checkpoint, else genesis (or a pruned journal's base). */
  newestSnapshot(head: Position): SourceSnapshot;
  /**
   * Copies a snapshot to `targetPath` (a new file) and verifies it against `ref`.
   * @throws ChangetrailError JOURNAL_CHECKSUM_MISMATCH when its digest or size differs.
   */
  copySnapshot(ref: SnapshotRef, targetPath: string): void | Promise<void>;
  /**
   * Optional: records that follower `name` has applied up to `position`, so the source's pruning keeps
   * what it still needs (journal/FORMAT.md §11.3). Best effort: callers ignore its errors.
   */
  register?(name: string, position: Position): void;
  /** Optional: pins what the source retains while a base is copied; null when it cannot pin. */
  pin?(purpose: string): { release(): void } | null;
  /**
   * Optional, for a remote source: brings what the synchronous reads answer up to date (connects, reads
   * the head, learns the hash at `after`). The replica awaits it before it reads anything and before each
   * pass; a local source reads the disk directly and needs none.
   *
   * @throws ChangetrailError NATS_UNAVAILABLE and the like (transient), or the source's own refusals.
   */
  refresh?(after?: Position): Promise<void>;
  /** Calls `wake` when the source may have moved (a hint: callers also poll). */
  watch(wake: () => void): Promise<SourceWatch>;
  close(): void;
}
