/**
 * Pruning (issue 16, journal/FORMAT.md §11): removes the segments and snapshots that lie wholly before a
 * retained checkpoint, so the journal starts at that checkpoint's state instead of at genesis.
 *
 * It runs as an admitted write that changes nothing (fenced and serialised with every writer, holding the
 * lock for a few unlinks), in this order, each step durable before the next, so a SIGKILL anywhere
 * leaves a journal that opens, verifies and serves every reader:
 *
 *   1. choose the newest checkpoint at or before the requested point, held back by registered followers
 *      (within the hold limits) and by pins;
 *   2. write `base` naming it (from here on, readers start there; everything still exists);
 *   3. read the pins again (a reader that pinned before step 2 is seen here) and delete, oldest first,
 *      only what lies wholly before both the new base and every pin: segments, resync and checkpoint
 *      snapshots, genesis.db.
 *
 * Files left by a kill between 2 and 3 are removed by the next prune.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { crashpointNamed } from '../crashpoint.js';
import { ChangetrailError } from '../errors.js';
import { toHex } from '../journal/bytes.js';
import { fsyncDirectory, io, listDirectory } from '../journal/files.js';
import { GENESIS_FILE } from '../journal/format.js';
import { listSegments } from '../journal/journal-reader.js';
import type { Journal } from '../journal/journal.js';
import { resolvePosition } from '../journal/resolve-position.js';
import { writeBase, type RetainedBase } from '../journal/retention-base.js';
import { newestCheckpoint } from '../journal/retention-checkpoints.js';
import { listFollowers, livePins, processGone } from '../journal/retention-pins.js';
import { formatSegmentName } from '../journal/segment.js';
import { CHECKPOINT_TEMP } from './checkpoint.js';
import type { CommitRequest } from './commit.js';
import type { Entry } from './entry-view.js';
import { readHead } from './head-row.js';

/** Crash points of a prune, in the order it reaches them (test/write/retention-crash.test.ts). */
export const PRUNE_CRASH_POINTS = ['prune-after-base', 'prune-after-segment', 'prune-after-snapshot', 'prune-after-delete'] as const;

/** A temporary checkpoint snapshot untouched for this long belongs to a killed checkpoint. */
const ABANDONED_TEMP_MS = 15 * 60 * 1000;

/** How long registered followers may hold pruning back. */
export interface FollowerHoldLimits {
  /** A follower more than this many entries behind the head is not waited for (default 1,000,000). */
  entriesMax?: number;
  /** A follower that has not reported for this long is not waited for (default 7 days). */
  staleAfterMs?: number;
}

export const FOLLOWER_HOLD_DEFAULTS: Required<FollowerHoldLimits> = Object.freeze({ entriesMax: 1_000_000, staleAfterMs: 7 * 24 * 60 * 60 * 1000 });

export interface PruneOptions {
  /**
   * Prune history before this point, keeping it restorable: a seq, `@<time>` (the state at that time),
   * or `'checkpoint'` (the newest checkpoint). The new base is the newest checkpoint at or before it.
   */
  before: number | string;
  followers?: FollowerHoldLimits;
  /** Compute what would be removed; change nothing. */
  dryRun?: boolean;
}

/** What held the base back. */
export interface PruneHold {
  readonly kind: 'follower' | 'pin';
  readonly name: string;
  readonly seq: number;
}

export interface PruneResult {
  /** The point asked for (resolved to a seq). */
  readonly requestedSeq: number;
  /** The base after pruning (null: history still starts at genesis). */
  readonly base: { readonly seq: number; readonly checkpointSeq: number } | null;
  /** The first retained entry. */
  readonly earliestSeq: number;
  /** Files removed (or, with `dryRun`, that would be). */
  readonly removed: readonly string[];
  /** Followers and pins that kept the base earlier than asked. */
  readonly heldBy: readonly PruneHold[];
}

/** What prune needs of the trail. */
export interface PruneContext {
  readonly journalDir: string;
  commit(request: CommitRequest): Promise<Entry | null>;
  journalAt(db: DatabaseSync): Journal;
}

/**
 * Prunes history before `options.before`. See the module comment for the protocol.
 *
 * @throws RangeError for a malformed `before`. ChangetrailError ENTRY_NOT_FOUND (a seq past the head),
 *   CHECKPOINT_NOT_FOUND (no retained checkpoint at or before the point: take one with `checkpoint`
 *   first), the errors of `write`, IO_ERROR.
 */
export async function prune(context: PruneContext, options: PruneOptions): Promise<PruneResult> {
  let result: PruneResult | null = null;
  await context.commit({
    kind: 'write', bodyMode: 'internal', actor: null, message: null, meta: null,
    run: (db) => {
      result = pruneUnderLock(context.journalAt(db), readHead(db).segment, options);
    },
  });
  if (result === null) throw new Error('prune: the prune did not run');
  return result;
}

function pruneUnderLock(journal: Journal, headSegment: number, options: PruneOptions): PruneResult {
  const requestedSeq = resolveBefore(journal, options.before);
  const heldBy: PruneHold[] = [];
  const allowed = holdBack(journal, requestedSeq, options.followers ?? {}, heldBy);
  const current = journal.base;
  const checkpoint = newestCheckpoint(journal, allowed);
  if (checkpoint === null && heldBy.length === 0 && (current === null || current.seq < requestedSeq)) {
    throw new ChangetrailError('CHECKPOINT_NOT_FOUND', `prune: no checkpoint holds a state at or before entry ${requestedSeq}; take one first (changetrail checkpoint)`, {
      before: requestedSeq, headSeq: journal.head.seq,
    });
  }
  let base = current;
  if (checkpoint !== null && checkpoint.at.seq > (current?.seq ?? 0)) {
    base = { seq: checkpoint.at.seq, hash: checkpoint.at.hash, checkpointSeq: checkpoint.entry.seq, snapshot: checkpoint.snapshot };
    if (options.dryRun !== true) {
      writeBase(journal.dir, journal.identity.manifest.journalId, base);
      crashpointNamed('prune-after-base');
    }
  }
  // Read after `base` was written: a reader that pinned before it is seen now (see retention-pins.ts).
  const pins = livePins(journal.dir, { removeDead: options.dryRun !== true });
  const limit = Math.min(base?.seq ?? 0, ...pins.map((pin) => pin.seq));
  for (const pin of pins) if (pin.seq < (base?.seq ?? 0)) heldBy.push({ kind: 'pin', name: `${pin.purpose} (pid ${pin.pid})`, seq: pin.seq });
  const removed = removable(journal.dir, limit, headSegment);
  if (options.dryRun !== true) removeFiles(journal.dir, removed);
  return { requestedSeq, base: base === null ? null : { seq: base.seq, checkpointSeq: base.checkpointSeq }, earliestSeq: (base?.seq ?? 0) + 1, removed, heldBy };
}

function resolveBefore(journal: Journal, before: number | string): number {
  if (before === 'checkpoint') return journal.head.seq;
  const earliest = (journal.base?.seq ?? 0) + 1;
  const source = {
    head: journal.head,
    positionAt: (seq: number) => journal.positionAt(Math.max(seq, journal.base?.seq ?? 0)),
    entries: (from: number, to: number) => journal.entries({ from: Math.max(from, earliest), to }),
  };
  // A seq past the head is a typo for an earlier one, not "everything" (the CLI refuses it the same way).
  if (typeof before === 'number' && Number.isSafeInteger(before) && before > journal.head.seq) {
    throw new ChangetrailError('ENTRY_NOT_FOUND', `prune: entry ${before} does not exist (the journal holds up to ${journal.head.seq}); before: 'checkpoint' prunes to the newest checkpoint`, {
      seq: before, headSeq: journal.head.seq,
    });
  }
  return resolvePosition(source, before).position.seq;
}

/** Lowers `seq` to what registered followers (within limits) still need; records who held it. */
function holdBack(journal: Journal, seq: number, limits: FollowerHoldLimits, heldBy: PruneHold[]): number {
  const { entriesMax, staleAfterMs } = { ...FOLLOWER_HOLD_DEFAULTS, ...limits };
  let allowed = seq;
  const now = Date.now();
  for (const follower of listFollowers(journal.dir, journal.head.journalId)) {
    if (follower.seq >= allowed) continue;
    if (journal.head.seq - follower.seq > entriesMax || now - follower.updatedAtMs > staleAfterMs) continue;
    allowed = follower.seq;
    heldBy.push({ kind: 'follower', name: follower.name, seq: follower.seq });
  }
  return allowed;
}

/**
 * Files wholly before `limit` (the state at `limit` and entries after it stay): segments whose last
 * entry is at or before it (never the tail, nor one a committed successor does not follow), resync
 * snapshots of entries before it, checkpoint snapshots of entries at or before it, genesis.db once
 * `limit` ≥ 1, and temporary files of killed checkpoints. Oldest segments first.
 */
function removable(dir: string, limit: number, headSegment: number): string[] {
  const files: string[] = [];
  const segments = listSegments(dir);
  for (let i = 0; i + 1 < segments.length; i++) {
    const next = segments[i + 1]!;
    if (next - 1 <= limit && next <= headSegment) files.push(formatSegmentName(segments[i]!));
  }
  const now = Date.now();
  for (const name of listDirectory(dir)) {
    const snapshot = /^snapshot-(\d{1,16})\.db$/.exec(name);
    const checkpoint = /^checkpoint-(\d{1,16})\.db$/.exec(name);
    if (snapshot !== null && Number(snapshot[1]) < limit) files.push(name);
    else if (checkpoint !== null && Number(checkpoint[1]) <= limit) files.push(name);
    else if (name === GENESIS_FILE && limit >= 1) files.push(name);
    else if (abandonedTemp(dir, name, now)) files.push(name);
  }
  return files;
}

/** A checkpoint's temporary snapshot whose process is gone (or that nobody touched for a long time). */
function abandonedTemp(dir: string, name: string, now: number): boolean {
  const match = CHECKPOINT_TEMP.exec(name);
  if (match === null) return false;
  return processGone(Number(match[1])) || now - mtimeMs(join(dir, name)) > ABANDONED_TEMP_MS;
}

function mtimeMs(path: string): number {
  return statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
}

function removeFiles(dir: string, files: readonly string[]): void {
  for (const name of files) {
    io('prune', join(dir, name), () => rmSync(join(dir, name), { force: true }));
    crashpointNamed(name.endsWith('.seg') ? 'prune-after-segment' : 'prune-after-snapshot');
  }
  if (files.length > 0) fsyncDirectory(dir);
  crashpointNamed('prune-after-delete');
}

/** For reports: the base as the `base` file states it. */
export function describeBase(base: RetainedBase | null): string {
  return base === null ? 'genesis' : `checkpoint ${base.checkpointSeq} (state as of entry ${base.seq}, ${toHex(base.snapshot.sha256).slice(0, 12)})`;
}
