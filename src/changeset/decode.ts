/** Bytes → {@link Changeset}. */
import type { Change, Changeset, Field, TableChanges } from './types.js';
import { OP_DELETE, OP_INSERT, OP_UPDATE } from './format.js';
import { headerExpected, isTableMarker, readTableHeader, scanChange, type TableHeader } from './reader.js';
import { readField } from './value-codec.js';
import { assert } from '../assert.js';

/**
 * Decodes a changeset or patchset into table groups and changes.
 *
 * Groups appear in buffer order; repeated groups for one table and groups without changes are kept as
 * they are (SQLite accepts both). Every `old`/`new` array is `columnCount` long, indexed by column:
 *
 * | group kind | op | `old` | `new` |
 * |---|---|---|---|
 * | both | insert | absent | every column |
 * | changeset | delete | every column | absent |
 * | changeset | update | PK values; original values of changed columns; `undefined` elsewhere | `undefined` for PK columns (as SQLite writes them); new values of changed columns; `undefined` elsewhere |
 * | patchset | delete | PK values; `undefined` for every non-PK column (the format omits them) | absent |
 * | patchset | update | PK values; `undefined` for every non-PK column | `undefined` for PK columns; new values of changed columns; `undefined` elsewhere |
 *
 * `undefined` is the 0x00 "no value" placeholder and is distinct from SQL NULL (`null`). TEXT that is not
 * valid UTF-8 decodes to a {@link SqlText}. `encodeChangeset(decodeChangeset(x))` is byte-identical to `x`.
 *
 * BLOB values (and `SqlText` bytes) are views into one private copy of `bytes` made by this call: they
 * never alias the input, but `value.buffer` is that whole copy (use `value.byteOffset`/`byteLength`).
 *
 * @example
 * const { tables } = decodeChangeset(session.changeset());
 * for (const change of tables[0]?.changes ?? []) console.log(change.op, change.new ?? change.old);
 * @throws TypeError if `bytes` is not a Uint8Array.
 * @throws ChangetrailError CHANGESET_MALFORMED (`details.offset`, `details.reason`) if the bytes do not follow
 *   the format: a bad marker, op or type byte, a column count outside 1..65536, truncation or trailing bytes,
 *   a length past the end, an undefined field in an INSERT/DELETE record or a PK field, a table name that is
 *   not UTF-8, an indirect byte other than 0/1, a non-canonical varint or a NaN REAL.
 */
export function decodeChangeset(bytes: Uint8Array): Changeset {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decodeChangeset: bytes must be a Uint8Array');
  const tables: TableChanges[] = [];
  // BLOBs become views into one private copy of the input: a view costs a quarter of a copy per value.
  const scanner = new ChangeScanner(bytes, bytes.slice(), (group) => tables.push(group));
  for (let change = scanner.next(); change !== null; change = scanner.next()) scanner.group.changes.push(change);
  return { tables };
}

/** One change with the table group it belongs to, as {@link iterateChangeset} yields them. */
export interface GroupChange {
  /** The group's header fields; `changes` stays empty (one object per group, shared by its changes). */
  readonly group: TableChanges;
  readonly change: Change;
}

/**
 * Decodes a changeset or patchset lazily, one change at a time, in buffer order: the same changes as
 * {@link decodeChangeset} without holding them all (exports of large entries stream in bounded memory).
 * Unlike {@link decodeChangeset}, BLOB (and `SqlText`) values are views into `bytes` itself, not into a
 * private copy: do not modify `bytes` while the values are in use.
 *
 * @throws As {@link decodeChangeset}, when the malformed part is reached.
 */
export function* iterateChangeset(bytes: Uint8Array): Generator<GroupChange> {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('iterateChangeset: bytes must be a Uint8Array');
  const scanner = new ChangeScanner(bytes, bytes, () => {});
  for (let change = scanner.next(); change !== null; change = scanner.next()) yield { group: scanner.group, change };
}

/**
 * The one decoding loop behind {@link decodeChangeset} and {@link iterateChangeset}: reads table headers
 * as it meets them (reporting each new group, with or without changes) and returns the next change.
 * A pull loop rather than a generator, so the eager decoder pays no generator step per change.
 */
class ChangeScanner {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #store: Uint8Array;
  readonly #onGroup: (group: TableChanges) => void;
  #header: TableHeader | null = null;
  #group: TableChanges | null = null;
  #offsets = new Int32Array(0);
  #offset = 0;

  constructor(bytes: Uint8Array, store: Uint8Array, onGroup: (group: TableChanges) => void) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#store = store;
    this.#onGroup = onGroup;
  }

  /** The group of the change {@link next} returned last. */
  get group(): TableChanges {
    assert(this.#group !== null, 'ChangeScanner.group before the first change');
    return this.#group;
  }

  /** The next change in buffer order, or null at the end. */
  next(): Change | null {
    const bytes = this.#bytes;
    while (this.#offset < bytes.length && isTableMarker(bytes[this.#offset])) {
      this.#header = readTableHeader(bytes, this.#offset);
      this.#group = groupOf(bytes, this.#header);
      this.#onGroup(this.#group);
      this.#offsets = new Int32Array(2 * this.#header.columnCount + 2);
      this.#offset = this.#header.end;
    }
    if (this.#offset >= bytes.length) return null;
    const header = this.#header;
    if (header === null) throw headerExpected(bytes, this.#offset);
    const start = this.#offset;
    this.#offset = scanChange(bytes, start, header, this.#offsets);
    return readChange(bytes, this.#view, this.#store, start, header, this.#offsets);
  }
}

function groupOf(bytes: Uint8Array, header: TableHeader): TableChanges {
  return {
    kind: header.kind,
    name: header.name,
    columnCount: header.columnCount,
    pk: bytes.slice(header.pkStart, header.pkStart + header.columnCount),
    changes: [],
  };
}

function readChange(bytes: Uint8Array, view: DataView, store: Uint8Array, offset: number, header: TableHeader, offsets: Int32Array): Change {
  const op = bytes[offset];
  const indirect = bytes[offset + 1] === 1;
  const { columnCount } = header;
  if (op === OP_INSERT) return { op: 'insert', indirect, new: readFields(bytes, view, store, offsets, 0, columnCount) };
  if (op === OP_DELETE) {
    const old = header.patchset ? readPkOnly(bytes, view, store, offsets, header) : readFields(bytes, view, store, offsets, 0, columnCount);
    return { op: 'delete', indirect, old };
  }
  assert(op === OP_UPDATE, 'scanChange accepted only known ops');
  const first = readFields(bytes, view, store, offsets, 0, columnCount);
  if (!header.patchset) {
    return { op: 'update', indirect, old: first, new: readFields(bytes, view, store, offsets, columnCount + 1, columnCount) };
  }
  const old = new Array<Field>(columnCount);
  for (let column = 0; column < columnCount; column++) {
    if (header.isPk[column] === 1) {
      old[column] = first[column];
      first[column] = undefined;
    } else {
      old[column] = undefined;
    }
  }
  return { op: 'update', indirect, old, new: first };
}

function readFields(bytes: Uint8Array, view: DataView, store: Uint8Array, offsets: Int32Array, base: number, count: number): Field[] {
  const fields = new Array<Field>(count);
  for (let field = 0; field < count; field++) fields[field] = readField(bytes, view, store, offsets[base + field]!);
  return fields;
}

/** A patchset DELETE record holds only the PK fields, in column order; spread them over all columns. */
function readPkOnly(bytes: Uint8Array, view: DataView, store: Uint8Array, offsets: Int32Array, header: TableHeader): Field[] {
  const fields = new Array<Field>(header.columnCount);
  let field = 0;
  for (let column = 0; column < header.columnCount; column++) {
    fields[column] = header.isPk[column] === 1 ? readField(bytes, view, store, offsets[field++]!) : undefined;
  }
  return fields;
}
