/**
 * A cheap check of a journal's shape against a committed head, for writers to run at open (issue 8 item
 * 7: a deleted or corrupted earlier segment, or a corrupt genesis.db, went unnoticed and new entries were
 * appended to a journal that verify already rejected).
 *
 * Checked: the manifest; genesis.db's size and SHA-256 (or, above 64 MiB by default, its SQLite header); every segment up to the head — its
 * header (journal id, first seq = name), its frames' headers hopped for contiguous seqs, and its first
 * and last frames verified (CRC, body, seq); the chain across every segment boundary (the first entry of
 * a segment names the previous segment's last entry as prevHash; entry 1 names the root); and the head
 * entry's hash. Not checked: the frames in the middle of a segment (CRC and chain) — that is `verify`.
 * Cost: one 16-byte header read per frame (in 64 KiB blocks), two frame decodes per segment, and hashing
 * genesis.db.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, constants } from 'node:fs';
import { join } from 'node:path';
import { ChangetrailError } from '../errors.js';
import { bytesEqual, fromHex, readSafeU64, toHex, view } from './bytes.js';
import { decodeEntryBody, hashEntryBody } from './entry.js';
import { io } from './files.js';
import { FRAME_HEADER_SIZE, GENESIS_FILE, SEGMENT_HEADER_SIZE } from './format.js';
import { readFrameSize } from './frame.js';
import { listSegments, readManifest, withSeq, type JournalIdentity } from './journal-reader.js';
import type { Position } from './position.js';
import { SegmentFile } from './segment-file.js';
import { formatSegmentName } from './segment.js';

/** Frame headers are hopped through blocks of this size. */
const HOP_BLOCK_SIZE = 64 * 1024;
/** genesis.db is hashed in chunks of this size. */
const HASH_CHUNK_SIZE = 1024 * 1024;

/**
 * How genesis.db is checked: 'digest' hashes it against the manifest; 'header' compares its size and
 * checks its SQLite header (magic, page size dividing the size); 'auto' (default) hashes files up to
 * {@link GENESIS_DIGEST_BYTES_MAX} and checks the header of larger ones.
 */
export type GenesisCheck = 'digest' | 'header' | 'auto';

/** Options of {@link checkJournalShape}. */
export interface JournalShapeOptions {
  genesis?: GenesisCheck;
}

/** 'auto' hashes genesis.db up to this size: 64 MiB takes about 40 ms (SHA-256 at ~1.5 GB/s). */
export const GENESIS_DIGEST_BYTES_MAX = 64 * 1024 * 1024;
const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * Checks, without modifying anything, that the journal in `dir` has the shape the committed `head`
 * needs (see the module comment for exactly what). Throws on the first problem.
 *
 * @example
 * checkJournalShape(journalDir, positionOf(row.journalId, row.seq, row.hash));
 * @throws ChangetrailError JOURNAL_MISMATCH (no manifest, another journal), JOURNAL_BEHIND_DATABASE (a
 *   segment or committed frames missing), JOURNAL_CHECKSUM_MISMATCH (a header, first/last frame or
 *   genesis.db damaged), JOURNAL_MALFORMED, JOURNAL_GAP, JOURNAL_CHAIN_BROKEN, JOURNAL_VERSION_UNSUPPORTED, IO_ERROR.
 */
export function checkJournalShape(dir: string, head: Position, options: JournalShapeOptions = {}): void {
  const identity = readManifest(dir);
  if (identity === null) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `check journal ${dir}: no manifest`, {
      databaseJournalId: head.journalId, journalJournalId: null, reason: 'journal directory missing',
    });
  }
  const journalId = toHex(identity.manifest.journalId);
  if (journalId !== head.journalId) {
    throw new ChangetrailError('JOURNAL_MISMATCH', `check journal ${dir}: it holds journal ${journalId}, the database ${head.journalId}`, {
      databaseJournalId: head.journalId, journalJournalId: journalId, reason: 'journal ids differ',
    });
  }
  checkGenesis(dir, identity, options.genesis ?? 'auto');
  if (head.seq === 0) {
    if (head.hash !== toHex(identity.rootHash)) throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `check journal ${dir}: the head at seq 0 is not the chain root`, { seq: 0 });
    return;
  }
  const segments = listSegments(dir).filter((firstSeq) => firstSeq <= head.seq);
  let prevHash = identity.rootHash;
  let expected = 1;
  for (let i = 0; i < segments.length; i++) {
    const firstSeq = segments[i]!;
    if (firstSeq !== expected) throw behind(head, expected - 1, formatSegmentName(firstSeq));
    const lastSeq = i + 1 < segments.length ? segments[i + 1]! - 1 : head.seq;
    prevHash = checkSegment(dir, identity, firstSeq, lastSeq, prevHash);
    expected = lastSeq + 1;
  }
  if (expected !== head.seq + 1) throw behind(head, expected - 1);
  if (!bytesEqual(prevHash, fromHex(head.hash))) {
    throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `check journal ${dir}: entry ${head.seq} is not the entry the database committed`, { seq: head.seq });
  }
}

function checkGenesis(dir: string, identity: JournalIdentity, mode: GenesisCheck): void {
  const path = join(dir, GENESIS_FILE);
  const ok = io('read genesis snapshot', path, () => genesisMatches(path, identity, mode));
  if (!ok) {
    throw new ChangetrailError('JOURNAL_CHECKSUM_MISMATCH', `check journal ${dir}: ${GENESIS_FILE} differs from the manifest's record`, { file: GENESIS_FILE, offset: 0 });
  }
}

function genesisMatches(path: string, identity: JournalIdentity, mode: GenesisCheck): boolean {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    const size = fstatSync(fd).size;
    if (size !== identity.manifest.genesisSize) return false;
    if (mode === 'digest' || (mode === 'auto' && size <= GENESIS_DIGEST_BYTES_MAX)) return bytesEqual(digestFd(fd), identity.manifest.genesisSha256);
    return headerMatches(fd, size);
  } finally {
    closeSync(fd);
  }
}

function digestFd(fd: number): Uint8Array {
  const digest = createHash('sha256');
  const buffer = new Uint8Array(HASH_CHUNK_SIZE);
  for (let position = 0; ;) {
    const n = readSync(fd, buffer, 0, buffer.byteLength, position);
    if (n === 0) break;
    digest.update(buffer.subarray(0, n));
    position += n;
  }
  return new Uint8Array(digest.digest());
}

/** SQLite's header: the magic string, and a page size (offset 16, 1 meaning 65536) dividing the file size. */
function headerMatches(fd: number, size: number): boolean {
  const header = new Uint8Array(100);
  if (readSync(fd, header, 0, 100, 0) !== 100) return false;
  if (Buffer.from(header.subarray(0, 16)).toString('latin1') !== SQLITE_MAGIC) return false;
  const raw = view(header).getUint16(16);
  const pageSize = raw === 1 ? 65536 : raw;
  return pageSize >= 512 && (pageSize & (pageSize - 1)) === 0 && size % pageSize === 0;
}

/**
 * Checks one segment holding entries `firstSeq..lastSeq`: header, frame headers contiguous, first and
 * last frames verified, the first naming `prevHash`. Returns the last entry's hash.
 */
function checkSegment(dir: string, identity: JournalIdentity, firstSeq: number, lastSeq: number, prevHash: Uint8Array): Uint8Array {
  const segment = SegmentFile.open(dir, firstSeq, false);
  if (segment === null) throw behind({ seq: lastSeq }, firstSeq - 1, formatSegmentName(firstSeq));
  try {
    const header = segment.readHeader();
    if (!bytesEqual(header.journalId, identity.manifest.journalId) || header.firstSeq !== firstSeq) {
      throw new ChangetrailError('JOURNAL_MALFORMED', `check ${segment.name}: header names journal ${toHex(header.journalId)} seq ${header.firstSeq}`, {
        file: segment.name, offset: 0, reason: 'segment header does not match its journal or name',
      });
    }
    const lastOffset = hopToLast(segment, firstSeq, lastSeq);
    const first = readEntry(segment, SEGMENT_HEADER_SIZE, firstSeq);
    if (!bytesEqual(first.prevHash, prevHash)) {
      throw new ChangetrailError('JOURNAL_CHAIN_BROKEN', `check ${segment.name}: entry ${firstSeq} does not chain to entry ${firstSeq - 1}`, { seq: firstSeq, file: segment.name });
    }
    return lastOffset === SEGMENT_HEADER_SIZE ? first.hash : readEntry(segment, lastOffset, lastSeq).hash;
  } finally {
    segment.close();
  }
}

/** Hops frame headers from the first frame to frame `lastSeq`, checking seqs; returns its offset. */
function hopToLast(segment: SegmentFile, firstSeq: number, lastSeq: number): number {
  const size = segment.size();
  let block: Uint8Array = new Uint8Array(0);
  let blockStart = 0;
  let offset = SEGMENT_HEADER_SIZE;
  for (let seq = firstSeq; ; seq++) {
    if (offset + FRAME_HEADER_SIZE > blockStart + block.byteLength) {
      blockStart = offset;
      block = segment.readBytes(offset, Math.min(HOP_BLOCK_SIZE, Math.max(0, size - offset)));
    }
    const header = block.subarray(offset - blockStart, offset - blockStart + FRAME_HEADER_SIZE);
    if (header.byteLength < FRAME_HEADER_SIZE) throw behind({ seq: lastSeq }, seq - 1, segment.name);
    const frameSize = readFrameSize(header, segment.name, offset);
    const frameSeq = readSafeU64(view(header), 4, segment.name, 'seq');
    if (frameSeq !== seq) {
      throw new ChangetrailError('JOURNAL_GAP', `check ${segment.name}: expected entry ${seq}, found ${frameSeq}`, { file: segment.name, expectedSeq: seq, foundSeq: frameSeq });
    }
    if (offset + frameSize > size) throw behind({ seq: lastSeq }, seq - 1, segment.name);
    if (seq === lastSeq) return offset;
    offset += frameSize;
  }
}

function readEntry(segment: SegmentFile, offset: number, seq: number): { prevHash: Uint8Array; hash: Uint8Array } {
  let frame;
  try {
    frame = segment.readFrame(offset);
  } catch (error) {
    throw withSeq(error, seq);
  }
  const body = decodeEntryBody(frame.body, segment.name, offset, seq);
  if (body.seq !== seq || frame.seq !== seq) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `check ${segment.name}: frame at ${offset} holds entry ${body.seq}, expected ${seq}`, {
      file: segment.name, offset, seq, reason: 'frame and body seq differ',
    });
  }
  return { prevHash: body.prevHash, hash: hashEntryBody(frame.body) };
}

function behind(head: { seq: number }, journalSeq: number, file?: string): ChangetrailError {
  return new ChangetrailError('JOURNAL_BEHIND_DATABASE',
    `check journal: the database committed entry ${head.seq} but the journal holds entries only up to ${journalSeq}${file === undefined ? '' : ` (at ${file})`}: ` +
    'committed entries are missing or damaged. Restore the journal directory from a backup.',
    { databaseSeq: head.seq, journalSeq, ...(file === undefined ? {} : { file }) });
}
