/**
 * Reads entries at known places: one entry at a (segment, offset) the index recorded, checked against the
 * hash recorded with it, and the entries after an indexed position, chained to it and to the committed
 * head. This is what lets an indexed query read a few entries instead of the whole journal.
 */
import { ChangetrailError } from '../errors.js';
import { bytesEqual, toHex } from '../journal/bytes.js';
import { decodeEntryBody, hashEntryBody } from '../journal/entry.js';
import { listSegments, type JournalEntry } from '../journal/journal-reader.js';
import { SEGMENT_HEADER_SIZE } from '../journal/format.js';
import { formatSegmentName } from '../journal/segment.js';
import { SegmentFile } from '../journal/segment-file.js';
import type { AuditJournal } from './audit-journal.js';

/** Where an entry is, and the hash it had when it was indexed. */
export interface EntryRef {
  readonly seq: number;
  readonly segment: number;
  readonly offset: number;
  readonly hash: Uint8Array;
}

/** Thrown (and caught by the index) when the journal no longer holds what the index recorded. */
export class IndexStaleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IndexStaleError';
  }
}

/** Reads indexed entries, keeping segment files open for the duration of one query. */
export class EntryReader {
  readonly #dir: string;
  readonly #open = new Map<number, SegmentFile>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The entry at `ref`: its frame checksum, seq and body hash must match, else IndexStaleError. */
  read(ref: EntryRef): JournalEntry {
    const segment = this.#segment(ref.segment);
    let frame;
    try {
      frame = segment.readFrame(ref.offset);
    } catch (error) {
      if (error instanceof ChangetrailError) throw new IndexStaleError(`entry ${ref.seq}: ${error.message}`);
      throw error;
    }
    const hash = hashEntryBody(frame.body);
    if (frame.seq !== ref.seq || !bytesEqual(hash, ref.hash)) throw new IndexStaleError(`entry ${ref.seq} at ${segment.name}:${ref.offset} is not the indexed entry`);
    return { ...decodeEntryBody(frame.body, segment.name, ref.offset, ref.seq), hash, file: segment.name, offset: ref.offset };
  }

  close(): void {
    for (const segment of this.#open.values()) segment.close();
    this.#open.clear();
  }

  #segment(firstSeq: number): SegmentFile {
    let segment = this.#open.get(firstSeq);
    if (segment === undefined) {
      const opened = SegmentFile.open(this.#dir, firstSeq, false);
      if (opened === null) throw new IndexStaleError(`segment ${formatSegmentName(firstSeq)} is missing`);
      segment = opened;
      this.#open.set(firstSeq, segment);
    }
    return segment;
  }
}

/**
 * The entries after `ref` up to the committed head, each chained to the one before and the last equal to
 * the head the database committed. IndexStaleError when `ref` is not on the journal's chain.
 */
export function* entriesAfter(journal: AuditJournal, ref: EntryRef | null): Generator<JournalEntry> {
  const committed = journal.committed;
  if (ref === null) {
    yield* journal.entries();
    return;
  }
  if (ref.seq > committed.seq) throw new IndexStaleError(`the index covers entry ${ref.seq}, the database committed ${committed.seq}`);
  if (ref.seq === committed.seq) {
    if (!bytesEqual(ref.hash, committed.hash)) throw new IndexStaleError(`entry ${ref.seq} is not the committed head`);
    return;
  }
  let prevHash = ref.hash;
  let expected = ref.seq + 1;
  let segmentSeq = ref.segment;
  let start = ref.offset;
  let first = true;
  while (expected <= committed.seq) {
    const segment = SegmentFile.open(journal.journalDir, segmentSeq, false);
    if (segment === null) throw new IndexStaleError(`segment ${formatSegmentName(segmentSeq)} is missing`);
    try {
      for (const frame of segment.frames(start)) {
        if (first) {
          first = false;
          if (frame.seq !== ref.seq || !bytesEqual(hashEntryBody(frame.body), ref.hash)) throw new IndexStaleError(`entry ${ref.seq} is not the indexed entry`);
          continue;
        }
        if (frame.seq !== expected) throw new ChangetrailError('JOURNAL_GAP', `read ${segment.name}: expected entry ${expected}, found ${frame.seq}`, { file: segment.name, expectedSeq: expected, foundSeq: frame.seq });
        const body = decodeEntryBody(frame.body, segment.name, frame.offset, frame.seq);
        if (!bytesEqual(body.prevHash, prevHash)) {
          if (expected === ref.seq + 1) throw new IndexStaleError(`entry ${expected} does not chain to the indexed entry ${ref.seq}`);
          throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${segment.name}: entry ${expected} does not chain to entry ${expected - 1}`, { seq: expected, file: segment.name });
        }
        const hash = hashEntryBody(frame.body);
        if (expected === committed.seq && !bytesEqual(hash, committed.hash)) {
          throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${segment.name}: entry ${expected} (${toHex(hash).slice(0, 16)}) is not the entry the database committed`, { seq: expected, file: segment.name });
        }
        yield { ...body, hash, file: segment.name, offset: frame.offset };
        prevHash = hash;
        expected += 1;
        if (expected > committed.seq) return;
      }
    } finally {
      segment.close();
    }
    if (first) throw new IndexStaleError(`entry ${ref.seq} is not at ${formatSegmentName(segmentSeq)}:${ref.offset}`);
    const next = listSegments(journal.journalDir).find((s) => s === expected);
    if (next === undefined) {
      throw new ChangetrailError('JOURNAL_BEHIND_DATABASE', `read journal: the database committed entry ${committed.seq} but the journal ends at entry ${expected - 1}`,
        { databaseSeq: committed.seq, journalSeq: expected - 1 });
    }
    segmentSeq = next;
    start = SEGMENT_HEADER_SIZE;
  }
}
