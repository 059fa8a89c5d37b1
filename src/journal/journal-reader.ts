/**
 * Reads committed entries from a journal directory, verifying as it goes: frame checksums, contiguous
 * sequence numbers, the hash chain from the manifest's root, and that the committed head's hash matches.
 * Bytes past the committed head are never yielded: they may be an uncommitted frame that recovery will
 * truncate.
 */
import { join } from 'node:path';
import { ChangetrailError } from '../errors.js';
import { bytesEqual, toHex } from './bytes.js';
import { hashEntryBody, decodeEntryBody, type EntryBody } from './entry.js';
import { listDirectory, readSmallFile } from './files.js';
import { MANIFEST_FILE, MANIFEST_SIZE, HEAD_FILE, HEAD_SIZE } from './format.js';
import { decodeHead, type HeadMarker } from './head.js';
import { chainRootHash, decodeManifest, type Manifest } from './manifest.js';
import { parseSegmentName } from './segment.js';
import { SegmentFile } from './segment-file.js';

export interface CommittedHead {
  seq: number;
  hash: Uint8Array;
}

/** A verified entry as read from the journal. */
export interface JournalEntry extends EntryBody {
  hash: Uint8Array;
  file: string;
  offset: number;
}

export interface JournalIdentity {
  manifest: Manifest;
  /** `prevHash` of entry 1. */
  rootHash: Uint8Array;
}

/** Reads and verifies the manifest; null when the directory has none. */
export function readManifest(dir: string): JournalIdentity | null {
  const bytes = readSmallFile(join(dir, MANIFEST_FILE), MANIFEST_SIZE);
  if (bytes === null) return null;
  return { manifest: decodeManifest(bytes, MANIFEST_FILE), rootHash: chainRootHash(bytes) };
}

/** Reads the published head marker; null when missing or unreadable (it is advisory). */
export function readHeadMarker(dir: string): HeadMarker | null {
  const bytes = readSmallFile(join(dir, HEAD_FILE), HEAD_SIZE);
  if (bytes === null) return null;
  try {
    return decodeHead(bytes, HEAD_FILE);
  } catch {
    return null;
  }
}

/** First sequence numbers of the segment files present, ascending. */
export function listSegments(dir: string): number[] {
  return listDirectory(dir).map(parseSegmentName).filter((seq): seq is number => seq !== null).sort((a, b) => a - b);
}

export interface ReadOptions {
  identity: JournalIdentity;
  committed: CommittedHead;
  from?: number;
  to?: number;
}

/** Yields committed entries `from..to` (default 1..committed.seq), verified. */
export function* readJournalEntries(dir: string, options: ReadOptions): Generator<JournalEntry> {
  const { identity, committed } = options;
  const from = Math.max(1, options.from ?? 1);
  const to = Math.min(options.to ?? committed.seq, committed.seq);
  if (from > to) return;
  const segments = listSegments(dir);
  let index = startingSegmentIndex(segments, from, committed);
  let expectedSeq = segments[index]!;
  let prevHash: Uint8Array | null = expectedSeq === 1 ? identity.rootHash : null;
  while (expectedSeq <= to) {
    const firstSeq = segments[index];
    if (firstSeq !== expectedSeq) throw behind(committed, expectedSeq - 1, firstSeq);
    const segment = openVerified(dir, firstSeq, identity);
    try {
      for (const frame of withExpectedSeq(segment.frames(), () => expectedSeq)) {
        if (frame.seq !== expectedSeq) {
          throw new ChangetrailError('JOURNAL_GAP', `read ${segment.name}: expected entry ${expectedSeq}, found ${frame.seq}`, {
            file: segment.name, expectedSeq, foundSeq: frame.seq,
          });
        }
        const entry = verifyEntry(frame.body, segment.name, frame.offset, frame.seq, prevHash, committed);
        prevHash = entry.hash;
        expectedSeq += 1;
        if (entry.seq >= from) yield entry;
        if (entry.seq >= to) return;
      }
    } finally {
      segment.close();
    }
    index += 1;
  }
}

/** A damaged frame's own seq is unreadable; name the entry that should have been there. */
function* withExpectedSeq<T>(frames: Iterable<T>, expectedSeq: () => number): Generator<T> {
  try {
    yield* frames;
  } catch (error) {
    throw withSeq(error, expectedSeq());
  }
}

/** Adds `seq` to a frame error that lacks it (its header was unreadable); other errors pass unchanged. */
export function withSeq(error: unknown, seq: number): unknown {
  if (!(error instanceof ChangetrailError) || !('offset' in error.details) || 'seq' in error.details) return error;
  return new ChangetrailError(error.code, `${error.message} (entry ${seq})`, { ...error.details, seq } as never, { cause: error.cause });
}

function startingSegmentIndex(segments: number[], from: number, committed: CommittedHead): number {
  let index = -1;
  for (let i = 0; i < segments.length && segments[i]! <= from; i++) index = i;
  if (index < 0) throw behind(committed, 0, segments[0]);
  return index;
}

function openVerified(dir: string, firstSeq: number, identity: JournalIdentity): SegmentFile {
  const segment = SegmentFile.open(dir, firstSeq, false);
  if (segment === null) throw behind({ seq: firstSeq, hash: new Uint8Array(32) }, firstSeq - 1, undefined);
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

function verifyEntry(
  body: Uint8Array, file: string, offset: number, seq: number, prevHash: Uint8Array | null, committed: CommittedHead,
): JournalEntry {
  const decoded = decodeEntryBody(body, file, offset, seq);
  if (decoded.seq !== seq) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `read ${file}: frame ${seq} holds entry ${decoded.seq}`, { file, offset, seq, reason: 'frame and body seq differ' });
  }
  if (prevHash !== null && !bytesEqual(decoded.prevHash, prevHash)) {
    throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${file}: entry ${seq} does not chain to entry ${seq - 1}`, { seq, file });
  }
  const hash = hashEntryBody(body);
  if (seq === committed.seq && !bytesEqual(hash, committed.hash)) {
    throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `read ${file}: entry ${seq} is not the entry the database committed`, { seq, file });
  }
  return { ...decoded, hash, file, offset };
}

function behind(committed: CommittedHead, journalSeq: number, found: number | undefined): ChangetrailError {
  return new ChangetrailError('JOURNAL_BEHIND_DATABASE',
    `read journal: the database committed entry ${committed.seq} but the journal ends at entry ${journalSeq}` +
    (found === undefined ? '' : ` (next segment starts at ${found})`) +
    ': committed entries are missing (deleted or lost journal files). Restore the journal directory from a backup.',
    { databaseSeq: committed.seq, journalSeq });
}
