/**
 * Trusted field walking over records that `scanRecord` already validated: sizes, offsets, byte equality
 * and the PK hash of sqlite3changegroup. Nothing here bounds-checks; never call it on unvalidated bytes.
 */
import {
  FIXED_VALUE_SIZE, TYPE_BLOB, TYPE_INTEGER, TYPE_REAL, TYPE_SIZE, TYPE_TEXT, VARINT_CONTINUE,
} from './format.js';
import { readVarint, varintSize } from './varint.js';

/** Serialized size of the field at `at` (type byte included). */
export function fieldSize(bytes: Uint8Array, at: number): number {
  const type = bytes[at];
  if (type === TYPE_INTEGER || type === TYPE_REAL) return FIXED_VALUE_SIZE;
  if (type === TYPE_TEXT || type === TYPE_BLOB) {
    const first = bytes[at + 1]!;
    if (first < VARINT_CONTINUE) return TYPE_SIZE + 1 + first;
    const length = readVarint(bytes, at + 1, bytes.length);
    return TYPE_SIZE + varintSize(length) + length;
  }
  return TYPE_SIZE;
}

/** Offset just past `count` fields starting at `at`. */
export function skipFields(bytes: Uint8Array, at: number, count: number): number {
  let offset = at;
  for (let field = 0; field < count; field++) offset += fieldSize(bytes, offset);
  return offset;
}

/** Stores the start of each of `count` fields at `offsets[base + i]` and the end at `offsets[base + count]`. */
export function fieldOffsets(bytes: Uint8Array, at: number, count: number, offsets: Int32Array, base: number): number {
  let offset = at;
  for (let field = 0; field < count; field++) {
    offsets[base + field] = offset;
    offset += fieldSize(bytes, offset);
  }
  offsets[base + count] = offset;
  return offset;
}

/** True if `a[aStart, aEnd)` and `b[bStart, bEnd)` hold the same bytes. */
export function rangesEqual(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array, bStart: number, bEnd: number): boolean {
  const size = aEnd - aStart;
  if (size !== bEnd - bStart) return false;
  for (let index = 0; index < size; index++) {
    if (a[aStart + index] !== b[bStart + index]) return false;
  }
  return true;
}

/** `HASH_APPEND(h, x) = (h << 3) ^ h ^ x` in unsigned 32-bit arithmetic (S:527); kept as int32 bits here. */
function hashAppend(hash: number, value: number): number {
  return ((hash << 3) ^ hash ^ value) | 0;
}

/**
 * sqlite3changegroup's row hash (`sessionChangeHash`, reference §3.4) over the PK fields of the record at
 * `at`: per PK field its type byte, then for INTEGER/REAL the low and the high 32 bits of the payload, for
 * TEXT/BLOB each payload byte. `isPk` marks PK columns; with `pkOnly` the record holds only PK fields
 * (a patchset DELETE). `fieldCount` bounds the walk: the last PK column + 1, or the PK count.
 * Returns the unsigned 32-bit hash.
 */
export function hashPk(bytes: Uint8Array, at: number, isPk: Uint8Array, pkOnly: boolean, fieldCount: number): number {
  let hash = 0;
  let offset = at;
  for (let field = 0; field < fieldCount; field++) {
    if (!pkOnly && isPk[field] === 0) {
      offset += fieldSize(bytes, offset);
      continue;
    }
    const type = bytes[offset]!;
    hash = hashAppend(hash, type);
    offset += TYPE_SIZE;
    if (type === TYPE_INTEGER || type === TYPE_REAL) {
      hash = hashAppend(hash, readUint32(bytes, offset + 4));
      hash = hashAppend(hash, readUint32(bytes, offset));
      offset += FIXED_VALUE_SIZE - TYPE_SIZE;
    } else if (type === TYPE_TEXT || type === TYPE_BLOB) {
      const length = readVarint(bytes, offset, bytes.length);
      offset += varintSize(length);
      for (let index = 0; index < length; index++) hash = hashAppend(hash, bytes[offset + index]!);
      offset += length;
    }
  }
  return hash >>> 0;
}

function readUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) | 0;
}

/**
 * True if two records hold byte-identical PK fields (`sessionChangeEqual`, S:708-742). Either record may be
 * PK-only (a patchset DELETE). `fieldCount` is the last PK column + 1.
 */
export function pkEqual(
  isPk: Uint8Array, fieldCount: number,
  a: Uint8Array, aStart: number, aPkOnly: boolean,
  b: Uint8Array, bStart: number, bPkOnly: boolean,
): boolean {
  let aAt = aStart;
  let bAt = bStart;
  for (let column = 0; column < fieldCount; column++) {
    if (isPk[column] === 1) {
      const aSize = fieldSize(a, aAt);
      const bSize = fieldSize(b, bAt);
      if (!rangesEqual(a, aAt, aAt + aSize, b, bAt, bAt + bSize)) return false;
      aAt += aSize;
      bAt += bSize;
    } else {
      if (!aPkOnly) aAt += fieldSize(a, aAt);
      if (!bPkOnly) bAt += fieldSize(b, bAt);
    }
  }
  return true;
}
