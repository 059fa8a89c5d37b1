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
import { SEGMENT_HEADER_SIZE } from '../journal/format.js';
import { listSegments, readHeadMarker, withSeq, type JournalIdentity } from '../journal/journal-reader.js';
import { SegmentFile } from '../journal/segment-file.js';
import { formatSegmentName } from '../journal/segment.js';
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
export function verifyCommittedTail(tail: SegmentFile, head: HeadRow): void {
  const size = tail.size();
  if (size < head.segmentSize) {
    throw new ChangetrailError('JOURNAL_BEHIND_DATABASE',
      `verify journal: ${tail.name} has ${size} bytes but the database committed ${head.segmentSize} (entry ${head.seq})`,
      { databaseSeq: head.seq, journalSeq: lastWholeSeq(tail, size, head), file: tail.name });
  }
  if (head.tailOffset === 0) {
    if (head.segmentSize !== SEGMENT_HEADER_SIZE || head.seq !== head.segment - 1) throw chainBroken(head, tail, 'empty tail segment');
    return;
  }
  let frame;
  try {
    frame = tail.readFrame(head.tailOffset);
  } catch (error) {
    throw withSeq(error, head.seq);
  }
  if (frame.seq !== head.seq || frame.offset + frame.size !== head.segmentSize) throw chainBroken(head, tail, 'frame position');
  if (!bytesEqual(hashEntryBody(frame.body), head.hash)) throw chainBroken(head, tail, 'hash');
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
  const marker = readHeadMarker(dir);
  const markerAhead = marker !== null && bytesEqual(marker.journalId, identity.manifest.journalId) && marker.seq > head.seq;
  const extraFrames = countWholeFrames(tail, head.segmentSize) + later.reduce((n, seq) => n + countLaterSegmentFrames(dir, seq), 0);
  const badLater = later.some((seq) => seq !== head.seq + 1);
  if (markerAhead || extraFrames > 1 || badLater) {
    const journalSeq = Math.max(marker?.seq ?? 0, head.seq + extraFrames);
    throw new ChangetrailError('DATABASE_BEHIND_JOURNAL',
      `open journal: the journal holds committed entries up to ${journalSeq} but the database is at ${head.seq}. ` +
      'The database was probably restored from an older backup; restore a matching journal, or move the journal directory aside to start a new history.',
      { databaseSeq: head.seq, journalSeq });
  }
}

/** Whole, valid frames past `start` (a torn or corrupt one ends the count: it cannot be committed). */
function countWholeFrames(segment: SegmentFile, start: number): number {
  let count = 0;
  try {
    for (const _frame of segment.frames(start)) count += 1;
  } catch (cause) {
    if (!(cause instanceof ChangetrailError)) throw cause;
  }
  return count;
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
    if (!(cause instanceof ChangetrailError)) throw cause;
  }
  return Math.min(seq, head.seq);
}

function chainBroken(head: HeadRow, tail: SegmentFile, what: string): ChangetrailError {
  return new ChangetrailError('JOURNAL_CHAIN_BROKEN',
    `verify journal: entry ${head.seq} in ${tail.name} is not the entry the database committed (${what} differs)`,
    { seq: head.seq, file: tail.name });
}
