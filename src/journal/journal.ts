/**
 * The one journal reader. Every entry it yields is proven to chain to a committed head: its hash is the
 * `prevHash` of the next entry, and so on up to the entry whose hash the head names. A tampered entry
 * whose CRC was recomputed therefore never reaches a caller, whatever range it asked for.
 *
 * Anchoring costs O(entries read + entries to the nearest proven checkpoint) hashes in bounded memory:
 * reads go in windows of {@link WINDOW_ENTRY_COUNT}; for each window a first pass verifies frames and
 * the chain from the window's first entry to an entry already proven (the head, or a checkpoint
 * recorded every {@link CHECKPOINT_INTERVAL} entries by an earlier pass), keeping only the window's 32-byte
 * hashes; a second pass re-reads the window and yields entries whose hash equals the proven one. The first
 * read of an old entry walks to the head once; later reads stop at the next checkpoint.
 */
import { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { bytesEqual, fromHex, readSafeU64, toHex, view } from './bytes.js';
import { decodeEntryBody, hashEntryBody, type EntryBody } from './entry.js';
import { FRAME_HEADER_SIZE, HASH_SIZE, SEGMENT_HEADER_SIZE } from './format.js';
import { listSegments, readHeadMarker, readManifest, withSeq, type JournalIdentity } from './journal-reader.js';
import { positionOf, type Position } from './position.js';
import { SegmentFile } from './segment-file.js';
import { readFrameSize } from './frame.js';
import { formatSegmentName } from './segment.js';

export type { JournalIdentity } from './journal-reader.js';

/** A verified entry as read from the journal: the body, its hash, and where its frame starts. */
export interface JournalEntry extends EntryBody {
  hash: Uint8Array;
  /** Segment file name. */
  file: string;
  /** Byte offset of the entry's frame in `file`. */
  offset: number;
}

/** An inclusive range of sequence numbers; both ends default to the journal's (1 and the head). */
export interface EntryRange {
  from?: number;
  to?: number;
}

/** Where a frame starts: the segment's first seq and the byte offset in it. */
export interface ByteLocation {
  readonly segment: number;
  readonly offset: number;
}

/** A journal opened against a committed head. See {@link openJournal}. */
export interface Journal {
  readonly dir: string;
  readonly identity: JournalIdentity;
  /** The committed head every read is anchored to. */
  readonly head: Position;
  /** Position at seq 0: the chain root. */
  readonly root: Position;
  /** Verified entries `from..to` (clamped to 1..head.seq), each proven to chain to `head`. */
  entries(range?: EntryRange): Generator<JournalEntry>;
  /** Entry `seq`, proven to chain to `head`. @throws ChangetrailError ENTRY_NOT_FOUND, JOURNAL_*. */
  entry(seq: number): JournalEntry;
  /** The position of entry `seq` (0: the root), proven. @throws ChangetrailError ENTRY_NOT_FOUND, JOURNAL_*. */
  positionAt(seq: number): Position;
  /** A tail cursor resuming after `position`: see {@link JournalCursor}. */
  cursorAfter(position: Position, location?: ByteLocation): JournalCursor;
}

/**
 * Entries are read and proven in windows of this many; memory is 32 bytes per entry of a window (2 MiB).
 * Each window after the first re-proves its own entries up to the next checkpoint, so a full read costs
 * one chain pass plus one decoding pass for journals up to this size, and little more beyond.
 */
export const WINDOW_ENTRY_COUNT = 65_536;
/** Every this many entries an anchored pass records a proven hash, so later ranged reads stop there. */
export const CHECKPOINT_INTERVAL = 1024;
/** Frame headers are hopped through blocks of this size when seeking inside a segment. */
const HOP_BLOCK_SIZE = 64 * 1024;

/** The name of the database table that holds the authoritative head (FORMAT.md §7). */
const HEAD_TABLE = '_changetrail_head';

type MissingData = 'behind' | 'torn';

/**
 * Opens the journal in `dir` anchored to `head` (from {@link readCommittedHead} or {@link readHeadMarkerPosition}).
 * Checks the manifest and that the head belongs to it; reads nothing else until asked.
 *
 * @example
 * const journal = openJournal(`${db}.changes`, readCommittedHead(db));
 * for (const entry of journal.entries({ from: 2, to: 2 })) console.log(entry.seq, entry.message);
 * @throws ChangetrailError JOURNAL_MISMATCH (no manifest, or another journal's head), JOURNAL_CHAIN_BROKEN
 *   (a head at seq 0 whose hash is not the root), JOURNAL_MALFORMED / JOURNAL_CHECKSUM_MISMATCH (manifest), IO_ERROR.
 */
export function openJournal(dir: string, head: Position): Journal {
  const identity = readManifest(dir);
  if (identity === null) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `open journal ${dir}: no manifest (not a changetrail journal directory)`, {
      databaseJournalId: head.journalId, journalJournalId: null, reason: 'journal directory missing',
    });
  }
  return new AnchoredJournal(dir, identity, head);
}

/**
 * Reads the committed head from the database's `_changetrail_head` row. Opens the database read-only and
 * never changes its journal mode; closes it before returning.
 *
 * @throws ChangetrailError JOURNAL_MISMATCH (no head row: not a changetrail database), SQLITE_ERROR.
 */
export function readCommittedHead(databasePath: string, options: { timeoutMs?: number } = {}): Position {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(databasePath, { readOnly: true, timeout: options.timeoutMs ?? 5_000 });
  } catch (cause) {
    throw sqliteError('open database', cause);
  }
  try {
    const exists = db.prepare(`SELECT 1 AS found FROM sqlite_schema WHERE type = 'table' AND name = ?`).get(HEAD_TABLE);
    const row = exists === undefined ? undefined : db.prepare(`SELECT journal_id, seq, hash FROM ${HEAD_TABLE} WHERE id = 1`).get();
    if (row === undefined || typeof row.journal_id !== 'string' || !(row.hash instanceof Uint8Array) || typeof row.seq !== 'number') {
      throw new ChangetrailError('JOURNAL_MISMATCH', `read ${databasePath}: no ${HEAD_TABLE} row (run changetrail init)`, {
        databaseJournalId: null, journalJournalId: null, reason: 'head row missing or malformed',
      });
    }
    return positionOf(row.journal_id, row.seq, row.hash);
  } catch (cause) {
    if (cause instanceof ChangetrailError || cause instanceof TypeError) throw cause;
    throw sqliteError('read committed head', cause);
  } finally {
    db.close();
  }
}

/**
 * The head published in the directory's `head` marker, for readers that cannot open the database; null
 * when missing or unreadable (it is advisory and may lag: keep the highest valid one seen).
 */
export function readHeadMarkerPosition(dir: string): Position | null {
  const marker = readHeadMarker(dir);
  return marker === null ? null : positionOf(marker.journalId, marker.seq, marker.hash);
}

function sqliteError(operation: string, cause: unknown): ChangetrailError {
  const errcode = (cause as { errcode?: unknown } | null)?.errcode;
  return new ChangetrailError('SQLITE_ERROR', `${operation}: ${(cause as Error)?.message ?? String(cause)}`, {
    operation, ...(typeof errcode === 'number' ? { errcode } : {}),
  }, { cause });
}

/** One frame as scanned: raw body, where it is, and where the next frame starts. */
interface ScannedFrame {
  seq: number;
  body: Uint8Array;
  file: string;
  offset: number;
  next: ByteLocation;
}

class AnchoredJournal implements Journal {
  readonly dir: string;
  readonly identity: JournalIdentity;
  readonly head: Position;
  readonly root: Position;
  /** Proven hashes (head, root, checkpoints) and, where known, where their successor's frame starts. */
  readonly #proven = new Map<number, Uint8Array>();
  readonly #locations = new Map<number, ByteLocation>();

  constructor(dir: string, identity: JournalIdentity, head: Position) {
    this.dir = dir;
    this.identity = identity;
    const journalId = toHex(identity.manifest.journalId);
    if (head.journalId !== journalId) {
      throw new ChangetrailError('JOURNAL_MISMATCH', `open journal ${dir}: the head names journal ${head.journalId}, the directory holds ${journalId}`, {
        databaseJournalId: head.journalId, journalJournalId: journalId, reason: 'journal ids differ',
      });
    }
    this.root = positionOf(journalId, 0, identity.rootHash);
    if (head.seq === 0 && head.hash !== this.root.hash) {
      throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `open journal ${dir}: the head at seq 0 is not the chain root`, { seq: 0 });
    }
    this.head = head;
    this.#proven.set(head.seq, fromHex(head.hash));
    this.#proven.set(0, identity.rootHash);
  }

  *entries(range: EntryRange = {}): Generator<JournalEntry> {
    const from = Math.max(1, range.from ?? 1);
    const to = Math.min(range.to ?? this.head.seq, this.head.seq);
    for (let start = from; start <= to; start += WINDOW_ENTRY_COUNT) {
      const end = Math.min(to, start + WINDOW_ENTRY_COUNT - 1);
      const hashes = this.#prove(start, end);
      yield* this.#readProven(start, end, hashes);
    }
  }

  entry(seq: number): JournalEntry {
    this.#checkSeq(seq, 1);
    for (const entry of this.entries({ from: seq, to: seq })) return entry;
    throw new Error('unreachable: a proven entry was not read');
  }

  positionAt(seq: number): Position {
    this.#checkSeq(seq, 0);
    const known = this.#proven.get(seq);
    const hash = known ?? this.#prove(seq, seq).subarray(0, HASH_SIZE);
    return positionOf(this.head.journalId, seq, hash);
  }

  cursorAfter(position: Position, location?: ByteLocation): JournalCursor {
    return new JournalCursor(this.dir, this.identity, position, this.head, location);
  }

  #checkSeq(seq: number, min: number): void {
    if (!Number.isSafeInteger(seq) || seq < min) throw new RangeError(`journal: seq must be an integer >= ${min}`);
    if (seq > this.head.seq) {
      throw new ChangetrailError('ENTRY_NOT_FOUND', `read journal: entry ${seq} does not exist (the journal holds 1..${this.head.seq})`, { seq, headSeq: this.head.seq });
    }
  }

  /**
   * First pass: verifies `start..anchor` (anchor: the nearest proven seq ≥ end) and returns the hashes of
   * `start..end`, 32 bytes each. Records checkpoints passed on the way.
   */
  #prove(start: number, end: number): Uint8Array {
    const anchor = this.#anchorAtOrAfter(end);
    const hashes = new Uint8Array((end - start + 1) * HASH_SIZE);
    const checkpoints: [number, Uint8Array, ByteLocation][] = [];
    let prevHash: Uint8Array | null = this.#proven.get(start - 1) ?? null;
    for (const frame of scanFrames(this.dir, this.identity, start, anchor, this.#locate(start), 'behind')) {
      if (frame.seq === start) this.#locations.set(start, { segment: frame.next.segment, offset: frame.offset });
      const hash = chainLink(frame, prevHash);
      if (frame.seq <= end) hashes.set(hash, (frame.seq - start) * HASH_SIZE);
      if (frame.seq % CHECKPOINT_INTERVAL === 0) checkpoints.push([frame.seq, hash, frame.next]);
      prevHash = hash;
    }
    if (prevHash === null || !bytesEqual(prevHash, this.#proven.get(anchor)!)) throw notCommitted(anchor, this.head);
    for (const [seq, hash, next] of checkpoints) {
      this.#proven.set(seq, hash);
      this.#locations.set(seq + 1, next);
    }
    return hashes;
  }

  *#readProven(start: number, end: number, hashes: Uint8Array): Generator<JournalEntry> {
    for (const frame of scanFrames(this.dir, this.identity, start, end, this.#locate(start), 'behind')) {
      const expected = hashes.subarray((frame.seq - start) * HASH_SIZE, (frame.seq - start + 1) * HASH_SIZE);
      const entry = decodeProven(frame, expected, this.head);
      if (frame.seq === end) this.#locations.set(end + 1, frame.next);
      yield entry;
    }
  }

  #anchorAtOrAfter(seq: number): number {
    let best = this.head.seq;
    for (const proven of this.#proven.keys()) if (proven >= seq && proven < best) best = proven;
    return best;
  }

  #locate(seq: number): ByteLocation | null {
    return this.#locations.get(seq) ?? null;
  }
}

/**
 * First pass over a frame: validates its body (FORMAT.md §8: every body between an entry and the head is
 * checked before the entry is yielded), checks that it names `prevHash` (when known) and its own seq,
 * and returns its hash.
 */
function chainLink(frame: ScannedFrame, prevHash: Uint8Array | null): Uint8Array {
  const body = decodeEntryBody(frame.body, frame.file, frame.offset, frame.seq);
  if (body.seq !== frame.seq) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `read ${frame.file}: frame ${frame.seq} holds entry ${body.seq}`, {
      file: frame.file, offset: frame.offset, seq: frame.seq, reason: 'frame and body seq differ',
    });
  }
  if (prevHash !== null && !bytesEqual(body.prevHash, prevHash)) {
    throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${frame.file}: entry ${frame.seq} does not chain to entry ${frame.seq - 1}`, { seq: frame.seq, file: frame.file });
  }
  return hashEntryBody(frame.body);
}

/** Second pass: the frame must still hold the entry the first pass proved. */
function decodeProven(frame: ScannedFrame, expected: Uint8Array, head: Position): JournalEntry {
  const hash = hashEntryBody(frame.body);
  if (!bytesEqual(hash, expected)) throw notCommitted(frame.seq, head, frame.file);
  const body = decodeEntryBody(frame.body, frame.file, frame.offset, frame.seq);
  if (body.seq !== frame.seq) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `read ${frame.file}: frame ${frame.seq} holds entry ${body.seq}`, {
      file: frame.file, offset: frame.offset, seq: frame.seq, reason: 'frame and body seq differ',
    });
  }
  return { ...body, hash, file: frame.file, offset: frame.offset };
}

function notCommitted(seq: number, head: Position, file?: string): ChangetrailError {
  return new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read journal: entry ${seq} does not chain to the committed head (entry ${head.seq})`, {
    seq, ...(file === undefined ? {} : { file }),
  });
}

/**
 * Yields the frames `from..to` in order, CRC-verified, across segments: each segment's header must name
 * this journal and its first seq; seqs must be contiguous. Never reads a frame past `to`. When the data
 * ends before `to`: 'behind' → JOURNAL_BEHIND_DATABASE (committed entries are missing), 'torn' →
 * JOURNAL_TORN_TAIL (not there yet: a follower waits).
 */
function* scanFrames(
  dir: string, identity: JournalIdentity, from: number, to: number, at: ByteLocation | null, missing: MissingData,
): Generator<ScannedFrame> {
  if (from > to) return;
  const segments = listSegments(dir);
  let index = segmentIndexFor(segments, from, missing, to);
  let expected = from;
  let offset: number | null = at !== null && at.segment === segments[index] ? at.offset : null;
  while (expected <= to) {
    const firstSeq = segments[index];
    if (firstSeq === undefined || firstSeq > expected) throw dataEnds(expected, to, missing, firstSeq);
    const segment = openSegment(dir, firstSeq, identity);
    try {
      // A location hint that does not hold frame `expected` (stale, or from another cursor) is ignored.
      const hinted = offset !== null && holdsFrame(segment, offset, expected) ? offset : null;
      let start = hinted ?? (firstSeq === expected ? SEGMENT_HEADER_SIZE : skipTo(segment, expected));
      for (const frame of withSeqOf(segment.frames(start), () => expected)) {
        if (frame.seq !== expected) {
          throw new ChangetrailError('JOURNAL_GAP', `read ${segment.name}: expected entry ${expected}, found ${frame.seq}`, {
            file: segment.name, expectedSeq: expected, foundSeq: frame.seq,
          });
        }
        start = frame.offset + frame.size;
        yield { seq: frame.seq, body: frame.body, file: segment.name, offset: frame.offset, next: { segment: firstSeq, offset: start } };
        expected += 1;
        if (expected > to) return;
      }
    } finally {
      segment.close();
    }
    index += 1;
    offset = null;
  }
}

/** A damaged frame's own seq is unreadable; name the entry that should have been there. */
function* withSeqOf<T>(frames: Iterable<T>, expected: () => number): Generator<T> {
  try {
    yield* frames;
  } catch (error) {
    throw withSeq(error, expected());
  }
}

function segmentIndexFor(segments: number[], seq: number, missing: MissingData, to: number): number {
  let index = -1;
  for (let i = 0; i < segments.length && segments[i]! <= seq; i++) index = i;
  if (index < 0) throw dataEnds(seq, to, missing, segments[0]);
  return index;
}

/**
 * Offset of frame `seq` in a segment that starts before it, found by hopping frame headers (sizes and
 * seqs only; the frames hopped over are verified when read).
 */
function skipTo(segment: SegmentFile, seq: number): number {
  const size = segment.size();
  let block: Uint8Array = new Uint8Array(0);
  let blockStart = 0;
  let offset = SEGMENT_HEADER_SIZE;
  while (offset + FRAME_HEADER_SIZE <= size) {
    if (offset + FRAME_HEADER_SIZE > blockStart + block.byteLength) {
      blockStart = offset;
      block = segment.readBytes(offset, Math.min(HOP_BLOCK_SIZE, size - offset));
    }
    const header = block.subarray(offset - blockStart, offset - blockStart + FRAME_HEADER_SIZE);
    const frameSeq = readSafeU64(view(header), 4, segment.name, 'seq');
    if (frameSeq >= seq) return offset;
    offset += readFrameSize(header, segment.name, offset);
  }
  return offset;
}

/** Whether the frame header at `offset` names `seq` (any bytes at all may be there). */
function holdsFrame(segment: SegmentFile, offset: number, seq: number): boolean {
  if (!Number.isSafeInteger(offset) || offset < SEGMENT_HEADER_SIZE) return false;
  const header = segment.readBytes(offset, FRAME_HEADER_SIZE);
  return header.byteLength === FRAME_HEADER_SIZE && view(header).getBigUint64(4) === BigInt(seq);
}

function openSegment(dir: string, firstSeq: number, identity: JournalIdentity): SegmentFile {
  const segment = SegmentFile.open(dir, firstSeq, false);
  if (segment === null) {
    throw new ChangetrailError('JOURNAL_BEHIND_DATABASE', `read journal: segment ${formatSegmentName(firstSeq)} disappeared`, {
      databaseSeq: firstSeq, journalSeq: firstSeq - 1, file: formatSegmentName(firstSeq),
    });
  }
  try {
    const header = segment.readHeader();
    if (!bytesEqual(header.journalId, identity.manifest.journalId) || header.firstSeq !== firstSeq) {
      throw new ChangetrailError('JOURNAL_MALFORMED', `read ${segment.name}: header names journal ${toHex(header.journalId)} seq ${header.firstSeq}`, {
        file: segment.name, offset: 0, reason: 'segment header does not match its journal or name',
      });
    }
    return segment;
  } catch (cause) {
    segment.close();
    throw cause;
  }
}

function dataEnds(expected: number, to: number, missing: MissingData, found: number | undefined): ChangetrailError {
  if (missing === 'torn') {
    return new ChangetrailError('JOURNAL_TORN_TAIL', `read journal: entry ${expected} (of ${to} committed) is not in the journal yet`, {
      file: formatSegmentName(Math.max(1, expected)), offset: 0, seq: expected,
    });
  }
  return new ChangetrailError('JOURNAL_BEHIND_DATABASE',
    `read journal: the database committed entry ${to} but the journal ends at entry ${expected - 1}` +
    (found === undefined ? '' : ` (next segment starts at ${found})`) +
    ': committed entries are missing (deleted or lost journal files). Restore the journal directory from a backup.',
    { databaseSeq: to, journalSeq: expected - 1 });
}

/**
 * A tail cursor: yields committed entries after a position, resuming from a byte location, and follows
 * the head as it moves (`advance`), across segment rotation. Every entry it yields is proven to chain to
 * its current head, and its first entry to chain from the position it resumed at (the resume check).
 *
 * State is explicit: `position` (last entry yielded, or the resume point), `location` (where the next
 * frame starts, null until known), `head`. Errors leave the state as it was before the failing read:
 * JOURNAL_TORN_TAIL (the head names entries whose bytes are not there yet: wait and retry) versus
 * JOURNAL_CHECKSUM_MISMATCH / JOURNAL_CHAIN_BROKEN / JOURNAL_MALFORMED / JOURNAL_GAP (invalid: stop).
 *
 * @example
 * const cursor = openJournal(dir, readHeadMarkerPosition(dir)!).cursorAfter(saved.position, saved.location);
 * for (const entry of cursor.read()) apply(entry);
 * cursor.advance(readHeadMarkerPosition(dir)!);
 */
export class JournalCursor {
  readonly #dir: string;
  readonly #identity: JournalIdentity;
  #position: Position;
  #location: ByteLocation | null;
  #head: Position;
  #reading = false;
  /** Hashes proven to chain to `#head` by earlier windows (every CHECKPOINT_INTERVAL seqs past them). */
  readonly #checkpoints = new Map<number, Uint8Array>();

  /** @internal Use `journal.cursorAfter`. */
  constructor(dir: string, identity: JournalIdentity, position: Position, head: Position, location?: ByteLocation) {
    const journalId = toHex(identity.manifest.journalId);
    if (position.journalId !== journalId) {
      throw new ChangetrailError('JOURNAL_MISMATCH', `resume journal ${dir}: the position names journal ${position.journalId}, the directory holds ${journalId}`, {
        databaseJournalId: position.journalId, journalJournalId: journalId, reason: 'journal ids differ',
      });
    }
    if (position.seq === 0 && position.hash !== toHex(identity.rootHash)) throw positionMismatch(position, toHex(identity.rootHash));
    this.#dir = dir;
    this.#identity = identity;
    this.#position = position;
    this.#location = location ?? null;
    this.#head = head;
    this.#checkAgainstHead(head);
  }

  /** The last entry yielded (or the resume point). */
  get position(): Position {
    return this.#position;
  }

  /** Where the frame after `position` starts, once known; save it with `position` to resume cheaply. */
  get location(): ByteLocation | null {
    return this.#location;
  }

  get head(): Position {
    return this.#head;
  }

  /**
   * Moves the head forward (e.g. to a newer `head` marker). A head older than the current one is ignored
   * (markers may lag; readers never go backwards).
   *
   * @throws ChangetrailError JOURNAL_MISMATCH (another journal), POSITION_MISMATCH (same seq, other hash).
   */
  advance(head: Position): void {
    if (head.journalId !== this.#head.journalId) {
      throw new ChangetrailError('JOURNAL_MISMATCH', `advance cursor: the head names journal ${head.journalId}, the cursor follows ${this.#head.journalId}`, {
        databaseJournalId: head.journalId, journalJournalId: this.#head.journalId, reason: 'journal ids differ',
      });
    }
    if (head.seq < this.#head.seq) return;
    if (head.seq === this.#head.seq && head.hash !== this.#head.hash) throw positionMismatch(head, this.#head.hash);
    this.#checkAgainstHead(head);
    // Checkpoints were proven against the old head; entries are proven against the current one.
    if (head.seq !== this.#head.seq) this.#checkpoints.clear();
    this.#head = head;
  }

  /**
   * Yields the entries after `position` up to `head`, proven (first pass over the pending window, then a
   * second that yields), updating `position` and `location` after each. Stopping early is fine.
   */
  *read(): Generator<JournalEntry> {
    if (this.#reading) throw new TypeError('cursor: read() is already running');
    this.#reading = true;
    try {
      while (this.#position.seq < this.#head.seq) {
        const start = this.#position.seq + 1;
        const end = Math.min(this.#head.seq, start + WINDOW_ENTRY_COUNT - 1);
        const hashes = this.#prove(start, end);
        yield* this.#yieldProven(start, end, hashes);
      }
    } finally {
      this.#reading = false;
    }
  }

  #checkAgainstHead(head: Position): void {
    if (this.#position.seq > head.seq) {
      throw new ChangetrailError('ENTRY_NOT_FOUND', `resume journal: position ${this.#position.seq} is past the head ${head.seq}`, { seq: this.#position.seq, headSeq: head.seq });
    }
    if (this.#position.seq === head.seq && this.#position.hash !== head.hash) throw positionMismatch(this.#position, head.hash);
  }

  /**
   * Verifies `start..anchor` and returns the hashes of `start..end`. The anchor is the head, or the
   * nearest checkpoint at or after `end` that an earlier window of this head proved: without it, every
   * window of a long catch-up re-verified everything up to the head (quadratic: 25 windows over 100,000
   * entries read 1.3 million frames).
   */
  #prove(start: number, end: number): Uint8Array {
    const hashes = new Uint8Array((end - start + 1) * HASH_SIZE);
    const anchor = this.#anchorAtOrAfter(end);
    const checkpoints: [number, Uint8Array][] = [];
    let prevHash = fromHex(this.#position.hash);
    for (const frame of scanFrames(this.#dir, this.#identity, start, anchor, this.#location, 'torn')) {
      const hash = chainLink(frame, frame.seq === start ? null : prevHash);
      if (frame.seq === start) checkResume(frame, prevHash, this.#position);
      if (frame.seq <= end) hashes.set(hash, (frame.seq - start) * HASH_SIZE);
      else if (frame.seq % CHECKPOINT_INTERVAL === 0) checkpoints.push([frame.seq, hash]);
      prevHash = hash;
    }
    const anchorHash = anchor === this.#head.seq ? fromHex(this.#head.hash) : this.#checkpoints.get(anchor)!;
    if (!bytesEqual(prevHash, anchorHash)) throw notCommitted(this.#head.seq, this.#head);
    for (const [seq, hash] of checkpoints) this.#checkpoints.set(seq, hash);
    for (const seq of this.#checkpoints.keys()) if (seq <= end) this.#checkpoints.delete(seq);
    return hashes;
  }

  #anchorAtOrAfter(seq: number): number {
    let best = this.#head.seq;
    for (const proven of this.#checkpoints.keys()) if (proven >= seq && proven < best) best = proven;
    return best;
  }

  *#yieldProven(start: number, end: number, hashes: Uint8Array): Generator<JournalEntry> {
    for (const frame of scanFrames(this.#dir, this.#identity, start, end, this.#location, 'torn')) {
      const expected = hashes.subarray((frame.seq - start) * HASH_SIZE, (frame.seq - start + 1) * HASH_SIZE);
      const entry = decodeProven(frame, expected, this.#head);
      this.#position = positionOf(this.#head.journalId, entry.seq, entry.hash);
      this.#location = frame.next;
      yield entry;
    }
  }
}

/** The resume check: the first entry after a position names the position's hash. */
function checkResume(frame: ScannedFrame, positionHash: Uint8Array, position: Position): void {
  const named = decodeEntryBody(frame.body, frame.file, frame.offset, frame.seq).prevHash;
  if (!bytesEqual(named, positionHash)) throw positionMismatch(position, toHex(named));
}

function positionMismatch(position: Position, foundHash: string): ChangetrailError {
  return new ChangetrailError('POSITION_MISMATCH',
    `resume journal: the journal's entry ${position.seq} is not the one the position names (another history, or the journal was rewritten)`,
    { seq: position.seq, expectedHash: position.hash, foundHash });
}
