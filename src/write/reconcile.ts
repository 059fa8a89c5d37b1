/**
 * Brings the journal into agreement with the database's committed head (write-admission.md §5.6). The
 * database row is authoritative. Destructive repair (truncating an uncommitted tail) runs only while the
 * caller holds SQLite's RESERVED lock, so no other writer can be appending at that moment.
 *
 * A crash between the journal append and COMMIT leaves at most one frame (entry head+1) past the
 * committed head, possibly torn, possibly in a freshly rotated segment. Anything more than that means
 * the database is older than the journal — typically restored from a backup — and is refused rather
 * than silently forking history.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ChangetrailError } from '../errors.js';
import { bytesEqual } from '../journal/bytes.js';
import { hashEntryBody } from '../journal/entry.js';
import { fsyncDirectory, io } from '../journal/files.js';
import { FRAME_HEADER_SIZE, SEGMENT_HEADER_SIZE } from '../journal/format.js';
import type { OutboxFrame, OutboxSource } from '../journal/outbox.js';
import { listSegments, readHeadMarker, withSeq, type JournalIdentity } from '../journal/journal-reader.js';
import { SegmentFile } from '../journal/segment-file.js';
import { formatSegmentName } from '../journal/segment.js';
import { faultpoint } from './crashpoint.js';
import type { HeadRow } from './head-row.js';

/** Opens the tail segment named by the head, or fails loudly when it is gone. */
export function openTailSegment(dir: string, head: HeadRow): SegmentFile {
  const segment = SegmentFile.open(dir, head.segment, true);
  if (segment === null) {
    throw new ChangetrailError('JOURNAL_BEHIND_DATABASE',
      `open journal: segment ${head.segment} holding committed entries up to ${head.seq} is missing`,
      { databaseSeq: head.seq, journalSeq: head.segment - 1, file: String(head.segment) });
  }
  return segment;
}

/**
 * Checks without modifying anything that the journal holds everything the database committed and that
 * the last committed frame is the one the database names. Safe without any lock: committed bytes never
 * change, and concurrent writers only add bytes past them.
 */
export function verifyCommittedTail(tail: SegmentFile, head: HeadRow, outbox?: OutboxSource): TailState {
  let size = tail.size();
  if (size < head.segmentSize && outbox !== undefined) {
    if (outboxCoversTail(outbox(), tail, size, head)) return 'short';
    // Rows are deleted only once their frames are in the segment: it may have caught up since it was measured.
    size = tail.size();
  }
  if (size < head.segmentSize) {
    throw new ChangetrailError('JOURNAL_BEHIND_DATABASE',
      `verify journal: ${tail.name} has ${size} bytes but the database committed ${head.segmentSize} (entry ${head.seq})`,
      { databaseSeq: head.seq, journalSeq: lastWholeSeq(tail, size, head), file: tail.name });
  }
  if (head.tailOffset === 0) {
    if (head.segmentSize !== SEGMENT_HEADER_SIZE || head.seq !== head.segment - 1) throw chainBroken(head, tail, 'empty tail segment');
    return 'complete';
  }
  let frame;
  try {
    frame = tail.readFrame(head.tailOffset);
  } catch (error) {
    throw withSeq(error, head.seq);
  }
  if (frame.seq !== head.seq || frame.offset + frame.size !== head.segmentSize) throw chainBroken(head, tail, 'frame position');
  if (!bytesEqual(hashEntryBody(frame.body), head.hash)) throw chainBroken(head, tail, 'hash');
  return 'complete';
}

/**
 * `complete`: the tail segment holds every committed byte; `short`: it ends early and the outbox holds the
 * rest. Bytes that are there but differ are damage, whatever the outbox holds.
 */
export type TailState = 'complete' | 'short';

/**
 * Whether outbox rows hold the committed frames the tail segment lacks: contiguous frames of this segment
 * ending with entry `head.seq` at `head.tailOffset` (whose hash is the head's), the first starting at or
 * before the segment's end.
 */
function outboxCoversTail(rows: readonly OutboxFrame[], tail: SegmentFile, size: number, head: HeadRow): boolean {
  const inTail = rows.filter((row) => row.segment === tail.firstSeq && row.seq <= head.seq);
  const last = inTail.at(-1);
  if (last === undefined || last.seq !== head.seq || last.offset !== head.tailOffset || last.offset + last.frame.byteLength !== head.segmentSize) return false;
  for (let i = 1; i < inTail.length; i++) {
    const before = inTail[i - 1]!;
    if (inTail[i]!.seq !== before.seq + 1 || inTail[i]!.offset !== before.offset + before.frame.byteLength) return false;
  }
  if (inTail[0]!.offset > size) return false;
  return bytesEqual(hashEntryBody(last.frame.subarray(FRAME_HEADER_SIZE)), head.hash);
}

/**
 * Under RESERVED: removes what a crashed writer left past the committed head, after proving it is at
 * most one uncommitted entry. Returns true when anything was repaired.
 */
export function repairUncommittedTail(dir: string, tail: SegmentFile, head: HeadRow, identity: JournalIdentity): boolean {
  const size = tail.size();
  if (size < head.segmentSize) verifyCommittedTail(tail, head);
  const later = listSegments(dir).filter((seq) => seq > head.segment);
  if (size === head.segmentSize && later.length === 0) return false;
  refuseIfDatabaseBehind(dir, tail, head, identity, later);
  if (size > head.segmentSize) tail.truncateDurably(head.segmentSize);
  for (const firstSeq of later) {
    const path = join(dir, formatSegmentName(firstSeq));
    io('remove orphan segment', path, () => rmSync(path));
  }
  if (later.length > 0) fsyncDirectory(dir);
  verifyCommittedTail(tail, head);
  return true;
}

function refuseIfDatabaseBehind(dir: string, tail: SegmentFile, head: HeadRow, identity: JournalIdentity, later: number[]): void {
  const beyond = inspectBeyondHead(dir, tail, head, identity, later);
  if (beyond.behind) throw databaseBehind(dir, head.seq, beyond.journalSeq);
}

/** What the journal holds past the database's committed head. */
export interface BeyondHead {
  /** True when the journal holds committed entries the database does not: more than one uncommitted frame. */
  behind: boolean;
  /** The newest entry the journal holds (at least the database's head). */
  journalSeq: number;
}

/**
 * Looks, without modifying anything, at what the journal holds past the database's committed head. A
 * crash between the journal append and COMMIT leaves at most one frame (entry head+1) there. More frames,
 * a later segment that does not start at head+1, or a head marker (published only after COMMIT) ahead of
 * the database mean the database is older than its journal: typically restored from an older copy.
 * Both the writer (under RESERVED, before any repair) and every open call this, so every command refuses
 * such a database with DATABASE_BEHIND_JOURNAL. An I/O error while looking is thrown, never taken for the
 * end of the frames.
 */
export function inspectBeyondHead(dir: string, tail: SegmentFile, head: HeadRow, identity: JournalIdentity, later = listSegments(dir).filter((seq) => seq > head.segment)): BeyondHead {
  const marker = readHeadMarker(dir);
  const markerSeq = marker !== null && bytesEqual(marker.journalId, identity.manifest.journalId) ? marker.seq : 0;
  const size = tail.size();
  if (size <= head.segmentSize && later.length === 0 && markerSeq <= head.seq) return { behind: false, journalSeq: head.seq };
  const extraFrames = (size > head.segmentSize ? countWholeFrames(tail, head.segmentSize) : 0) + later.reduce((n, seq) => n + countLaterSegmentFrames(dir, seq), 0);
  const badLater = later.some((seq) => seq !== head.seq + 1);
  const journalSeq = Math.max(markerSeq, head.seq + extraFrames);
  return { behind: markerSeq > head.seq || extraFrames > 1 || badLater, journalSeq };
}

/**
 * How often an open re-reads a head that looks behind its journal before it believes it: a reader's
 * snapshot (WAL), or a head read before a writer's commit, may be older than the journal legitimately.
 */
export const BEHIND_CHECK_ATTEMPTS = 3;

/** The database's committed head is older than its journal. */
export function databaseBehind(dir: string, databaseSeq: number, journalSeq: number): ChangetrailError<'DATABASE_BEHIND_JOURNAL'> {
  const hint = 'changetrail recover <db>';
  return new ChangetrailError('DATABASE_BEHIND_JOURNAL',
    `open journal: ${dir} holds committed entries up to ${journalSeq} but the database is at entry ${databaseSeq}: ` +
    `the database was probably restored from an older copy. Roll it forward with \`${hint}\`, which replays the missing entries exactly.`,
    { databaseSeq, journalSeq, hint });
}

/**
 * Whole, valid frames past `start`. A torn or corrupt one ends the count (it cannot be committed: a writer
 * appends only after the previous entry committed); an I/O error does not, since what lies past it is unknown.
 */
function countWholeFrames(segment: SegmentFile, start: number): number {
  let count = 0;
  try {
    for (const _frame of segment.frames(start)) {
      io('read segment', segment.path, () => faultpoint('reconcile-read'));
      count += 1;
    }
  } catch (cause) {
    if (!isDamagedFrame(cause)) throw cause;
  }
  return count;
}

/** A frame that is torn or fails its checks, as opposed to an I/O error while reading it. */
function isDamagedFrame(error: unknown): boolean {
  return error instanceof ChangetrailError && error.code !== 'IO_ERROR';
}

function countLaterSegmentFrames(dir: string, firstSeq: number): number {
  const segment = SegmentFile.open(dir, firstSeq, false);
  if (segment === null) return 0;
  try {
    return countWholeFrames(segment, SEGMENT_HEADER_SIZE);
  } finally {
    segment.close();
  }
}

function lastWholeSeq(tail: SegmentFile, size: number, head: HeadRow): number {
  let seq = tail.firstSeq - 1;
  try {
    for (const frame of tail.frames(SEGMENT_HEADER_SIZE, size)) seq = frame.seq;
  } catch (cause) {
    if (!isDamagedFrame(cause)) throw cause;
  }
  return Math.min(seq, head.seq);
}

function chainBroken(head: HeadRow, tail: SegmentFile, what: string): ChangetrailError {
  return new ChangetrailError('JOURNAL_CHAIN_BROKEN',
    `verify journal: entry ${head.seq} in ${tail.name} is not the entry the database committed (${what} differs)`,
    { seq: head.seq, file: tail.name });
}
