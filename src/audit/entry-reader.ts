/**
 * Reads entries at known places: one entry at a (segment, offset) the index recorded, checked against the
 * hash recorded with it, and the entries after an indexed position, chained to it and to the committed
 * head. This is what lets an indexed query read a few entries instead of the whole journal.
 */
import { ChangetrailError } from '../errors.js';
import { bytesEqual } from '../journal/bytes.js';
import { decodeEntryBody, hashEntryBody } from '../journal/entry.js';
import type { ByteLocation, JournalEntry } from '../journal/journal.js';
import { positionOf } from '../journal/position.js';
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
 * The entries after `ref` up to the committed head, through the journal's cursor: each proven to chain to
 * the entry before it and to the head, the first to chain from `ref`. `next` is where the frame after
 * `ref` starts, as recorded; a wrong one costs a second read from the segment's start, never an error.
 * IndexStaleError when `ref` is not on the journal's chain (the journal was rewritten or the index is).
 */
export function* entriesAfter(journal: AuditJournal, ref: EntryRef | null, next: ByteLocation | null): Generator<JournalEntry, ByteLocation | null> {
  const position = ref === null
    ? positionOf(journal.head.journalId, 0, journal.identity.rootHash)
    : positionOf(journal.head.journalId, ref.seq, ref.hash);
  let cursor;
  try {
    cursor = journal.reader.cursorAfter(position, next ?? undefined);
  } catch (error) {
    throw stale(error);
  }
  let yielded = 0;
  try {
    for (const entry of cursor.read()) {
      yielded += 1;
      yield entry;
    }
  } catch (error) {
    if (yielded > 0 || next === null || !ChangetrailError.is(error)) throw stale(error);
    // The recorded location may be wrong: read again from the start of the segments.
    return yield* entriesAfter(journal, ref, null);
  }
  return cursor.location;
}

/** A position that is not on the chain means the index, not the journal, is out of date. */
function stale(error: unknown): unknown {
  if (ChangetrailError.is(error, 'POSITION_MISMATCH') || ChangetrailError.is(error, 'ENTRY_NOT_FOUND')) return new IndexStaleError(`the indexed position is not on the journal's chain: ${(error as Error).message}`);
  return error;
}
