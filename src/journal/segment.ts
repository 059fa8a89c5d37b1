/**
 * Segment files hold entry frames. Each starts with a fixed header naming its journal and the sequence
 * number of its first frame; the file name is that number too, so a directory listing orders them.
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | magic `CTJS` |
 * | 4 | 2 | version (1) |
 * | 6 | 2 | flags (0) |
 * | 8 | 16 | journal id |
 * | 24 | 8 | sequence number of the first frame |
 * | 32 | 4 | reserved (0) |
 * | 36 | 4 | CRC-32 of bytes 0..35 |
 */
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { checkHeaderChecksum, checkPreamble, checksum, readSafeU64, view } from './bytes.js';
import { FORMAT_VERSION, JOURNAL_ID_SIZE, SEGMENT_HEADER_SIZE, SEGMENT_MAGIC, SEGMENT_NAME_DIGITS, SEGMENT_SUFFIX } from './format.js';

export interface SegmentHeader {
  journalId: Uint8Array;
  firstSeq: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  assert(header.journalId.byteLength === JOURNAL_ID_SIZE, 'journal id size');
  assert(Number.isSafeInteger(header.firstSeq) && header.firstSeq >= 1, 'firstSeq >= 1');
  const bytes = new Uint8Array(SEGMENT_HEADER_SIZE);
  const data = view(bytes);
  data.setUint32(0, SEGMENT_MAGIC);
  data.setUint16(4, FORMAT_VERSION);
  bytes.set(header.journalId, 8);
  data.setBigUint64(24, BigInt(header.firstSeq));
  data.setUint32(36, checksum(bytes.subarray(0, 36)));
  return bytes;
}

export function decodeSegmentHeader(bytes: Uint8Array, file: string): SegmentHeader {
  if (bytes.byteLength < SEGMENT_HEADER_SIZE) {
    throw new ChangetrailError('JOURNAL_TORN_TAIL', `decode segment ${file}: header is torn (${bytes.byteLength} bytes)`, { file, offset: 0 });
  }
  const header = bytes.subarray(0, SEGMENT_HEADER_SIZE);
  const data = view(header);
  checkPreamble(data, SEGMENT_MAGIC, file, 'segment');
  checkHeaderChecksum(header, 36, file, 'segment');
  return { journalId: header.slice(8, 24), firstSeq: readSafeU64(data, 24, file, 'firstSeq') };
}

export function formatSegmentName(firstSeq: number): string {
  assert(Number.isSafeInteger(firstSeq) && firstSeq >= 1, 'firstSeq >= 1');
  return String(firstSeq).padStart(SEGMENT_NAME_DIGITS, '0') + SEGMENT_SUFFIX;
}

/** The first sequence number named by a segment file name, or null for any other file. */
export function parseSegmentName(name: string): number | null {
  const pattern = new RegExp(`^(\\d{${SEGMENT_NAME_DIGITS}})\\${SEGMENT_SUFFIX}$`);
  const match = pattern.exec(name);
  if (!match) return null;
  const seq = Number(match[1]);
  return Number.isSafeInteger(seq) && seq >= 1 ? seq : null;
}
