/**
 * Validating walk over changeset bytes: table headers and the extent of each change. Every operation
 * (decode, invert, combine, filter, summarize) walks the input with these functions, so they all accept
 * and reject exactly the same inputs. Lengths are always bounded by the bytes that remain.
 */
import type { ChangesetKind } from './types.js';
import {
  CHANGE_HEADER_SIZE, COLUMN_COUNT_MAX, COLUMN_COUNT_MIN, FIXED_PAYLOAD_SIZE, FIXED_VALUE_SIZE, INDIRECT_TRUE, MARKER_CHANGESET,
  MARKER_PATCHSET, NAME_TERMINATOR, OP_DELETE, OP_INSERT, OP_UPDATE, TYPE_BLOB, TYPE_INTEGER, TYPE_NULL,
  TYPE_REAL, TYPE_SIZE, TYPE_TEXT, TYPE_UNDEFINED, VARINT_CONTINUE,
} from './format.js';
import { malformed } from './malformed.js';
import type { ChangetrailError } from '../errors.js';
import { readVarint, varintSize } from './varint.js';
import { decodeUtf8 } from './utf8.js';

/** A parsed table header, with offsets into the input it was read from. */
export interface TableHeader {
  readonly kind: ChangesetKind;
  readonly patchset: boolean;
  /** Offset of the marker byte. */
  readonly start: number;
  /** Offset just past the name's NUL terminator, where the first change starts. */
  readonly end: number;
  readonly columnCount: number;
  /** Offset of the `columnCount` raw pk bytes. */
  readonly pkStart: number;
  /** The name's bytes are `[nameStart, nameEnd)`; the NUL is at `nameEnd`. */
  readonly nameStart: number;
  readonly nameEnd: number;
  readonly name: string;
  /** 1 for columns in the PRIMARY KEY (pk byte != 0), else 0. */
  readonly isPk: Uint8Array;
  /** Number of PK columns: the field count of a patchset DELETE record. */
  readonly pkCount: number;
}

/** Where a record may hold the 0x00 "no value" placeholder. */
export type UndefinedRule = typeof UNDEFINED_ALLOWED | typeof UNDEFINED_FORBIDDEN | typeof UNDEFINED_FORBIDDEN_IN_PK;
/** Any field may be undefined: the new.* record of a changeset UPDATE. */
export const UNDEFINED_ALLOWED = 0;
/** No field may be undefined: INSERT and DELETE records. */
export const UNDEFINED_FORBIDDEN = 1;
/** PK fields must be defined: the old.* record of a changeset UPDATE and the patchset UPDATE record. */
export const UNDEFINED_FORBIDDEN_IN_PK = 2;

/**
 * Reads the table header whose marker is at `offset`.
 * @throws ChangetrailError CHANGESET_MALFORMED on a bad marker, column count, truncation or a name that is not UTF-8.
 */
export function readTableHeader(bytes: Uint8Array, offset: number): TableHeader {
  const marker = bytes[offset];
  if (marker !== MARKER_CHANGESET && marker !== MARKER_PATCHSET) throw malformed(offset, 'expected a table header marker');
  const columnCount = readVarint(bytes, offset + 1, bytes.length);
  if (columnCount < COLUMN_COUNT_MIN || columnCount > COLUMN_COUNT_MAX) {
    throw malformed(offset + 1, `column count ${columnCount} outside 1..${COLUMN_COUNT_MAX}`);
  }
  const pkStart = offset + 1 + varintSize(columnCount);
  const nameStart = pkStart + columnCount;
  if (nameStart > bytes.length) throw malformed(pkStart, 'truncated primary key flags');
  const nameEnd = bytes.indexOf(NAME_TERMINATOR, nameStart);
  if (nameEnd < 0) throw malformed(nameStart, 'table name without NUL terminator');
  const isPk = new Uint8Array(columnCount);
  let pkCount = 0;
  for (let column = 0; column < columnCount; column++) {
    if (bytes[pkStart + column] !== 0) {
      isPk[column] = 1;
      pkCount++;
    }
  }
  const patchset = marker === MARKER_PATCHSET;
  return {
    kind: patchset ? 'patchset' : 'changeset', patchset, start: offset, end: nameEnd + 1, columnCount,
    pkStart, nameStart, nameEnd, name: decodeName(bytes, nameStart, nameEnd), isPk, pkCount,
  };
}

function decodeName(bytes: Uint8Array, start: number, end: number): string {
  const name = decodeUtf8(bytes, start, end);
  if (name === null) throw malformed(start, 'table name is not valid UTF-8');
  return name;
}

/**
 * Whether the header at `offset` is byte for byte the `previous` one (changesets concatenated entry by
 * entry repeat one table's header before every group: decoding the name again cost 1.8 µs per header).
 */
function repeatsHeader(bytes: Uint8Array, offset: number, previous: TableHeader): boolean {
  const length = previous.end - previous.start;
  if (offset + length > bytes.length || bytes[offset + length - 1] !== NAME_TERMINATOR) return false;
  for (let i = 0; i < length; i++) {
    if (bytes[offset + i] !== bytes[previous.start + i]) return false;
  }
  return true;
}

/** `previous`, read again at `offset` (the same bytes: only the offsets differ). */
function movedHeader(previous: TableHeader, offset: number): TableHeader {
  const shift = offset - previous.start;
  return {
    ...previous, start: offset, end: previous.end + shift, pkStart: previous.pkStart + shift, nameStart: previous.nameStart + shift, nameEnd: previous.nameEnd + shift,
  };
}

/** The error for a first byte that is not a table header. */
export function headerExpected(bytes: Uint8Array, offset: number): ChangetrailError<'CHANGESET_MALFORMED'> {
  const byte = bytes[offset];
  const isOp = byte === OP_INSERT || byte === OP_UPDATE || byte === OP_DELETE;
  return malformed(offset, isOp ? 'change before any table header' : 'expected a table header marker');
}

/**
 * Walks a changeset or patchset, validating every record but decoding no value: `onTable` sees each
 * table header, `onChange` each change's op byte. Used where only the shape or counts matter.
 *
 * @throws ChangetrailError CHANGESET_MALFORMED with the byte offset.
 */
export function scanChangeset(bytes: Uint8Array, onTable: (header: TableHeader) => void, onChange: (op: number, header: TableHeader) => void): void {
  let header: TableHeader | null = null;
  let offset = 0;
  while (offset < bytes.length) {
    if (isTableMarker(bytes[offset])) {
      header = header !== null && repeatsHeader(bytes, offset, header) ? movedHeader(header, offset) : readTableHeader(bytes, offset);
      onTable(header);
      offset = header.end;
      continue;
    }
    if (header === null) throw headerExpected(bytes, offset);
    const op = bytes[offset]!;
    offset = scanChange(bytes, offset, header, null);
    onChange(op, header);
  }
}

/** True if the byte at `offset` starts a table header. */
export function isTableMarker(byte: number | undefined): boolean {
  return byte === MARKER_CHANGESET || byte === MARKER_PATCHSET;
}

/**
 * Validates the change whose op byte is at `offset` under `header` and returns the offset just past it.
 * If `offsets` is given, the field start offsets are stored there: the first record's `count + 1`
 * offsets from index 0 (the last one is the record's end), then for a changeset UPDATE the new.*
 * record's from index `columnCount + 1`.
 * @throws ChangetrailError CHANGESET_MALFORMED
 */
export function scanChange(bytes: Uint8Array, offset: number, header: TableHeader, offsets: Int32Array | null): number {
  const op = bytes[offset];
  if (op !== OP_INSERT && op !== OP_UPDATE && op !== OP_DELETE) throw malformed(offset, 'expected an op byte or a table header');
  if (offset + 1 >= bytes.length) throw malformed(offset, 'truncated change');
  if (bytes[offset + 1]! > INDIRECT_TRUE) throw malformed(offset + 1, 'indirect byte is not 0 or 1');
  const recordStart = offset + CHANGE_HEADER_SIZE;
  const { columnCount, isPk } = header;
  if (op === OP_UPDATE) {
    const oldEnd = scanRecord(bytes, recordStart, columnCount, UNDEFINED_FORBIDDEN_IN_PK, isPk, offsets, 0);
    if (header.patchset) return oldEnd;
    return scanRecord(bytes, oldEnd, columnCount, UNDEFINED_ALLOWED, isPk, offsets, columnCount + 1);
  }
  const count = op === OP_DELETE && header.patchset ? header.pkCount : columnCount;
  return scanRecord(bytes, recordStart, count, UNDEFINED_FORBIDDEN, isPk, offsets, 0);
}

/**
 * Validates `count` serialized values from `offset` and returns the offset after them. With `offsets`,
 * stores each field's start at `offsets[base + i]` and the record's end at `offsets[base + count]`.
 */
export function scanRecord(
  bytes: Uint8Array, offset: number, count: number, rule: UndefinedRule, isPk: Uint8Array,
  offsets: Int32Array | null, base: number,
): number {
  const end = bytes.length;
  let at = offset;
  for (let field = 0; field < count; field++) {
    if (offsets !== null) offsets[base + field] = at;
    const type = bytes[at];
    if (type === TYPE_INTEGER) {
      at += FIXED_VALUE_SIZE;
      if (at > end) throw malformed(at - FIXED_VALUE_SIZE, 'truncated value');
    } else if (type === TYPE_REAL) {
      at += FIXED_VALUE_SIZE;
      if (at > end) throw malformed(at - FIXED_VALUE_SIZE, 'truncated value');
      if (isNaNPattern(bytes, at - FIXED_PAYLOAD_SIZE)) throw malformed(at - FIXED_VALUE_SIZE, 'REAL value is NaN');
    } else if (type === TYPE_TEXT || type === TYPE_BLOB) {
      at = skipLengthPrefixed(bytes, at, end);
    } else if (type === TYPE_NULL) {
      at += TYPE_SIZE;
    } else if (type === TYPE_UNDEFINED) {
      if (rule === UNDEFINED_FORBIDDEN || (rule === UNDEFINED_FORBIDDEN_IN_PK && isPk[field] === 1)) {
        throw malformed(at, rule === UNDEFINED_FORBIDDEN ? 'undefined value in an INSERT or DELETE record' : 'undefined primary key value');
      }
      at += TYPE_SIZE;
    } else {
      throw malformed(at, type === undefined ? 'truncated record' : `unknown value type 0x${type.toString(16)}`);
    }
  }
  if (offsets !== null) offsets[base + count] = at;
  return at;
}

/**
 * True for the bit patterns of NaN (exponent all ones, mantissa not zero). SQLite never stores NaN (it
 * becomes NULL), and its invert would rewrite such a value as NULL, so NaN is malformed here.
 */
function isNaNPattern(bytes: Uint8Array, at: number): boolean {
  if ((bytes[at]! & 0x7f) !== 0x7f || (bytes[at + 1]! & 0xf0) !== 0xf0) return false;
  return (bytes[at + 1]! & 0x0f) !== 0 || bytes[at + 2] !== 0 || bytes[at + 3] !== 0 || bytes[at + 4] !== 0
    || bytes[at + 5] !== 0 || bytes[at + 6] !== 0 || bytes[at + 7] !== 0;
}

/** Skips a TEXT or BLOB value whose type byte is at `at`; returns the offset after its payload. */
function skipLengthPrefixed(bytes: Uint8Array, at: number, end: number): number {
  const first = bytes[at + 1];
  let length: number;
  let lengthSize: number;
  if (first !== undefined && first < VARINT_CONTINUE) {
    length = first;
    lengthSize = 1;
  } else {
    length = readVarint(bytes, at + 1, end);
    lengthSize = varintSize(length);
  }
  const next = at + TYPE_SIZE + lengthSize + length;
  if (next > end) throw malformed(at, 'value length past the end');
  return next;
}
