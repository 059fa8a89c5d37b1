/**
 * An entry frame: a fixed 16-byte header, then the entry body (msgpack, see entry.ts).
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 4 | body size in bytes, 1..BODY_SIZE_MAX |
 * | 4 | 8 | sequence number |
 * | 12 | 4 | CRC-32 of bytes 0..11 followed by the body |
 * | 16 | n | body |
 *
 * A reader verifies the checksum before it yields or applies anything. A file that ends inside a frame
 * is a torn tail (incomplete: `JOURNAL_TORN_TAIL`); a complete frame whose checksum fails is invalid
 * (`JOURNAL_CHECKSUM_MISMATCH`).
 */
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { checksum, checksumAt, readSafeU64, view } from './bytes.js';
import { BODY_SIZE_MAX, FRAME_HEADER_SIZE } from './format.js';

export interface Frame {
  seq: number;
  body: Uint8Array;
  /** Header plus body: the offset of the next frame is this frame's offset plus `size`. */
  size: number;
}

export function encodeFrame(seq: number, body: Uint8Array): Uint8Array {
  assert(Number.isSafeInteger(seq) && seq >= 1, 'seq >= 1');
  assert(body.byteLength >= 1 && body.byteLength <= BODY_SIZE_MAX, 'body size in range');
  const bytes = new Uint8Array(FRAME_HEADER_SIZE + body.byteLength);
  const data = view(bytes);
  data.setUint32(0, body.byteLength);
  data.setBigUint64(4, BigInt(seq));
  bytes.set(body, FRAME_HEADER_SIZE);
  data.setUint32(12, checksum(bytes.subarray(0, 12), body));
  return bytes;
}

/** The size of the frame starting at `offset`, from its header alone (torn or malformed → error). */
export function readFrameSize(header: Uint8Array, file: string, offset: number): number {
  return frameSizeAt(header, view(header), 0, file, offset);
}

/**
 * The size of the frame at index `at` of `bytes` (`data`: a DataView of all of `bytes`), from its header
 * alone. `offset` is where the frame starts in `file`, for error details only.
 */
export function frameSizeAt(bytes: Uint8Array, data: DataView, at: number, file: string, offset: number): number {
  if (bytes.byteLength - at < FRAME_HEADER_SIZE) {
    throw new ChangetrailError('JOURNAL_TORN_TAIL', `decode frame in ${file} at ${offset}: header is torn`, { file, offset });
  }
  const bodySize = data.getUint32(at);
  if (bodySize < 1 || bodySize > BODY_SIZE_MAX) {
    throw new ChangetrailError('JOURNAL_MALFORMED', `decode frame in ${file} at ${offset}: body size ${bodySize} out of range`, {
      file, offset, reason: 'body size out of range',
    });
  }
  return FRAME_HEADER_SIZE + bodySize;
}

/**
 * Verifies the frame at index `at` of `bytes` in place (size, completeness, checksum) and returns its
 * size: the frame check of every reader, {@link decodeFrame} and the segment scanner alike.
 */
export function checkFrameAt(bytes: Uint8Array, data: DataView, at: number, file: string, offset: number): number {
  const size = frameSizeAt(bytes, data, at, file, offset);
  if (bytes.byteLength - at < size) {
    throw new ChangetrailError('JOURNAL_TORN_TAIL', `decode frame in ${file} at ${offset}: body is torn`, { file, offset });
  }
  if (data.getUint32(at + 12) !== checksumAt(bytes, at + FRAME_HEADER_SIZE, at + size, checksumAt(bytes, at, at + 12, 0))) {
    throw new ChangetrailError('JOURNAL_CHECKSUM_MISMATCH', `decode frame in ${file} at ${offset}: checksum mismatch`, { file, offset });
  }
  return size;
}

/**
 * Decodes the frame at the start of `bytes` (which may extend past it). `offset` is where `bytes` starts
 * in `file`, for error details only.
 */
export function decodeFrame(bytes: Uint8Array, file: string, offset: number): Frame {
  const data = view(bytes);
  const size = checkFrameAt(bytes, data, 0, file, offset);
  return { seq: readSafeU64(data, 4, file, 'seq'), body: bytes.subarray(FRAME_HEADER_SIZE, size), size };
}
