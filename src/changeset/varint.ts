/**
 * SQLite record varints as the session extension uses them (reference §1.2): big-endian groups of 7 bits,
 * the high bit of each byte saying "more bytes follow". Only 32-bit values occur (`putVarint32`).
 *
 * Reading is strict: at most {@link VARINT_SIZE_MAX} bytes, values up to 2^31 - 1, and only the canonical
 * (shortest) encoding, which is the one SQLite writes. A leading `0x80` byte would encode the same value
 * in more bytes; accepting it would make `encode(decode(x))` differ from `x`, so it is malformed.
 */
import {
  VARINT_CONTINUE, VARINT_PAYLOAD_MASK, VARINT_SIZE_MAX, VARINT_VALUE_MAX,
} from './format.js';
import { malformed } from './malformed.js';
import { assert } from '../assert.js';

const SEVEN_BITS = 7;
/** The largest value that each varint size holds: 127, 16383, 2097151, 268435455. */
const ONE_BYTE_MAX = 0x7f;
const TWO_BYTE_MAX = 0x3fff;
const THREE_BYTE_MAX = 0x1fffff;
const FOUR_BYTE_MAX = 0xfffffff;

/**
 * Reads the varint at `offset`, which must lie below `end`. Returns the value; its size is
 * {@link varintSize}(value) because only canonical encodings are accepted.
 * @throws ChangetrailError CHANGESET_MALFORMED if it is truncated, longer than 5 bytes, too large or not canonical.
 */
export function readVarint(bytes: Uint8Array, offset: number, end: number): number {
  if (offset >= end) throw malformed(offset, 'truncated varint');
  const first = bytes[offset]!;
  if (first < VARINT_CONTINUE) return first;
  if (first === VARINT_CONTINUE) throw malformed(offset, 'non-canonical varint');
  let value = 0;
  for (let index = 0; index < VARINT_SIZE_MAX; index++) {
    const at = offset + index;
    if (at >= end) throw malformed(offset, 'truncated varint');
    const byte = bytes[at]!;
    value = value * 2 ** SEVEN_BITS + (byte & VARINT_PAYLOAD_MASK);
    if (byte < VARINT_CONTINUE) {
      if (value > VARINT_VALUE_MAX) throw malformed(offset, 'varint larger than 2^31 - 1');
      return value;
    }
  }
  throw malformed(offset, 'varint longer than 5 bytes');
}

/** Number of bytes of the canonical varint encoding of `value` (0 <= value <= 2^31 - 1). */
export function varintSize(value: number): number {
  if (value <= ONE_BYTE_MAX) return 1;
  if (value <= TWO_BYTE_MAX) return 2;
  if (value <= THREE_BYTE_MAX) return 3;
  if (value <= FOUR_BYTE_MAX) return 4;
  return VARINT_SIZE_MAX;
}

/** Writes the canonical varint of `value` at `offset`; returns the offset after it. */
export function writeVarint(target: Uint8Array, offset: number, value: number): number {
  assert(Number.isInteger(value) && value >= 0 && value <= VARINT_VALUE_MAX, 'varint value in range');
  const size = varintSize(value);
  let rest = value;
  for (let index = size - 1; index >= 0; index--) {
    const group = rest % 2 ** SEVEN_BITS;
    rest = Math.floor(rest / 2 ** SEVEN_BITS);
    target[offset + index] = index === size - 1 ? group : group | VARINT_CONTINUE;
  }
  return offset + size;
}
