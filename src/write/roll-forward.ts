/**
 * The entries a journal holds past a database's committed head, for rolling a database that is behind its
 * journal (restored from an older copy) forward: `changetrail recover` (src/export/recover.ts) applies
 * them exactly through `Trail.rollForward`.
 *
 * Every frame but the last one past the head is committed: a writer appends entry n+1 only after entry n
 * committed (it truncates anything uncommitted first, under RESERVED). The last frame may be a crashed
 * writer's uncommitted one; it counts as committed only when the head marker, published after COMMIT,
 * names it.
 */
import { ChangetrailError } from '../errors.js';
import { bytesEqual } from '../journal/bytes.js';
import { decodeEntryBody, hashEntryBody } from '../journal/entry.js';
import { SEGMENT_HEADER_SIZE } from '../journal/format.js';
import { listSegments, readHeadMarker, type JournalIdentity } from '../journal/journal-reader.js';
import type { JournalEntry } from '../journal/journal.js';
import { SegmentFile } from '../journal/segment-file.js';
import type { HeadRow } from './head-row.js';

/** Where one entry past the head lies, and the head row that committing it leaves. */
export interface ForwardFrame {
  seq: number;
  hash: Uint8Array;
  segment: number;
  offset: number;
  size: number;
}

/**
 * The committed frames past `head`, in order, verified (frame checksums, contiguous seqs, each body's
 * prevHash chained to the previous entry, the first to the head). Stops at a torn or damaged frame (past
 * the committed end); an I/O error is thrown.
 */
export function findFramesBeyondHead(dir: string, head: HeadRow, identity: JournalIdentity): ForwardFrame[] {
  const frames: ForwardFrame[] = [];
  let prevHash = head.hash;
  const segments = [head.segment, ...listSegments(dir).filter((seq) => seq > head.segment)];
  scan: for (const firstSeq of segments) {
    const expectedFirst = head.seq + frames.length + 1;
    if (firstSeq !== head.segment && firstSeq !== expectedFirst) break;
    const segment = SegmentFile.open(dir, firstSeq, false);
    if (segment === null) break;
    try {
      if (firstSeq !== head.segment && !headerMatches(segment, identity, firstSeq)) break;
      const start = firstSeq === head.segment ? head.segmentSize : SEGMENT_HEADER_SIZE;
      try {
        for (const frame of segment.frames(start)) {
          const seq = head.seq + frames.length + 1;
          const body = decodeEntryBody(frame.body, segment.name, frame.offset, frame.seq);
          if (frame.seq !== seq || body.seq !== seq || !bytesEqual(body.prevHash, prevHash)) break scan;
          prevHash = hashEntryBody(frame.body);
          frames.push({ seq, hash: prevHash, segment: firstSeq, offset: frame.offset, size: frame.size });
        }
      } catch (cause) {
        if (!(cause instanceof ChangetrailError) || cause.code === 'IO_ERROR') throw cause;
        break;
      }
    } finally {
      segment.close();
    }
  }
  const last = frames.at(-1);
  const marker = readHeadMarker(dir);
  const markerNamesLast = last !== undefined && marker !== null && bytesEqual(marker.journalId, identity.manifest.journalId) &&
    marker.seq === last.seq && bytesEqual(marker.hash, last.hash);
  return markerNamesLast ? frames : frames.slice(0, -1);
}

/** Reads and decodes the entry at `frame` (found by `findFramesBeyondHead`). */
export function readForwardEntry(dir: string, frame: ForwardFrame): JournalEntry {
  const segment = SegmentFile.open(dir, frame.segment, false);
  if (segment === null) throw new ChangetrailError('JOURNAL_BEHIND_DATABASE', `recover: segment ${frame.segment} vanished`, { databaseSeq: frame.seq, journalSeq: frame.seq - 1 });
  try {
    const read = segment.readFrame(frame.offset);
    const hash = hashEntryBody(read.body);
    if (!bytesEqual(hash, frame.hash)) throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `recover: entry ${frame.seq} changed while it was read`, { seq: frame.seq, file: segment.name });
    return { ...decodeEntryBody(read.body, segment.name, frame.offset, frame.seq), hash, file: segment.name, offset: frame.offset };
  } finally {
    segment.close();
  }
}

function headerMatches(segment: SegmentFile, identity: JournalIdentity, firstSeq: number): boolean {
  try {
    const header = segment.readHeader();
    return bytesEqual(header.journalId, identity.manifest.journalId) && header.firstSeq === firstSeq;
  } catch (cause) {
    if (!(cause instanceof ChangetrailError) || cause.code === 'IO_ERROR') throw cause;
    return false;
  }
}
