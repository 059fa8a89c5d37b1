/**
 * Byte-level constants of SQLite's changeset and patchset formats (reference/sqlite-session.md §1).
 * Names follow the reference; values are SQLite's own (markers are ASCII, op codes are the authorizer
 * codes, type bytes are SQLITE_INTEGER..SQLITE_NULL).
 */
import { assert } from '../assert.js';

/** Table header marker of a changeset group: ASCII 'T'. */
export const MARKER_CHANGESET = 0x54;
/** Table header marker of a patchset group: ASCII 'P'. */
export const MARKER_PATCHSET = 0x50;

/** Change op codes (SQLITE_INSERT, SQLITE_UPDATE, SQLITE_DELETE). */
export const OP_INSERT = 0x12;
export const OP_UPDATE = 0x17;
export const OP_DELETE = 0x09;

/** Value type bytes. `TYPE_UNDEFINED` is the "no value" placeholder of UPDATE records. */
export const TYPE_UNDEFINED = 0x00;
export const TYPE_INTEGER = 0x01;
export const TYPE_REAL = 0x02;
export const TYPE_TEXT = 0x03;
export const TYPE_BLOB = 0x04;
export const TYPE_NULL = 0x05;

/** Payload size of INTEGER and REAL values (big-endian 64 bits). */
export const FIXED_PAYLOAD_SIZE = 8;
/** Size of a serialized INTEGER or REAL value: type byte + payload. */
export const FIXED_VALUE_SIZE = 1 + FIXED_PAYLOAD_SIZE;
/** Size of a serialized NULL or undefined value: the type byte alone. */
export const TYPE_SIZE = 1;
/** Every change starts with an op byte and an indirect byte. */
export const CHANGE_HEADER_SIZE = 2;
/** The NUL that terminates a table name. */
export const NAME_TERMINATOR = 0x00;

/** SQLite treats nCol == 0 or nCol > 65536 as corrupt (S:3688, S:3787-3793). */
export const COLUMN_COUNT_MIN = 1;
export const COLUMN_COUNT_MAX = 65536;

/** The session code stores 32-bit varints; 5 bytes carry 35 bits, enough for any 31-bit length. */
export const VARINT_SIZE_MAX = 5;
/** Lengths are masked to 31 bits by SQLite (`sessionVarintGet`, S:348-352). */
export const VARINT_VALUE_MAX = 0x7fffffff;
/** Varint bytes carry 7 value bits; the high bit says "more bytes follow". */
export const VARINT_CONTINUE = 0x80;
export const VARINT_PAYLOAD_MASK = 0x7f;

/** Indirect byte values (SQLite writes only these two). */
export const INDIRECT_FALSE = 0;
export const INDIRECT_TRUE = 1;

/** changegroup's first hash table has 256 buckets: `2 * (nChange || 128)` (S:995-1033). */
export const HASH_BUCKETS_INITIAL_HALF = 128;

assert(new Set([MARKER_CHANGESET, MARKER_PATCHSET, OP_INSERT, OP_UPDATE, OP_DELETE]).size === 5, 'the first byte of a header or change tells which it is');
assert(FIXED_VALUE_SIZE === 9, 'INTEGER/REAL values take 9 bytes');
assert(COLUMN_COUNT_MAX < VARINT_VALUE_MAX, 'column counts fit a 32-bit varint');
assert(VARINT_SIZE_MAX * 7 >= 31, 'five varint bytes carry 31 bits');
