/** {@link Changeset} → bytes. */
import type { Change, Changeset, Field, TableChanges } from './types.js';
import { ByteWriter } from './byte-writer.js';
import {
  COLUMN_COUNT_MAX, COLUMN_COUNT_MIN, FIXED_PAYLOAD_SIZE, INDIRECT_FALSE, INDIRECT_TRUE, MARKER_CHANGESET,
  MARKER_PATCHSET, NAME_TERMINATOR, OP_DELETE, OP_INSERT, OP_UPDATE, TYPE_INTEGER, TYPE_REAL,
} from './format.js';
import { classifyField, encodeText } from './value-codec.js';

/**
 * Encodes table groups and changes as a changeset or patchset, the inverse of {@link decodeChangeset}:
 * `encodeChangeset(decodeChangeset(x))` is byte-identical to `x` for every input `decodeChangeset`
 * accepts. The `old`/`new` arrays must have the shape `decodeChangeset` documents for each kind and op.
 *
 * @example
 * const bytes = encodeChangeset({ tables: [{ kind: 'changeset', name: 't', columnCount: 2,
 *   pk: new Uint8Array([1, 0]), changes: [{ op: 'insert', indirect: false, new: [1n, 'a'] }] }] });
 * @throws TypeError or RangeError if the argument does not have that shape (a missing or mis-sized
 *   array, `undefined` where a value is required, a value where the format has no room for one, an
 *   INTEGER outside int64, a NaN REAL, a name containing NUL).
 */
export function encodeChangeset(changeset: Changeset): Uint8Array {
  if (typeof changeset !== 'object' || changeset === null || !Array.isArray(changeset.tables)) {
    throw new TypeError('encodeChangeset: expected { tables: TableChanges[] }');
  }
  const writer = new ByteWriter();
  changeset.tables.forEach((group, index) => writeGroup(writer, group, `tables[${index}]`));
  return writer.finish();
}

function writeGroup(writer: ByteWriter, group: TableChanges, where: string): void {
  validateGroupHeader(group, where);
  const patchset = group.kind === 'patchset';
  const isPk = Array.from(group.pk, (byte) => byte !== 0);
  writer.byte(patchset ? MARKER_PATCHSET : MARKER_CHANGESET);
  writer.varint(group.columnCount);
  writer.copy(group.pk);
  writer.copy(encodeText(group.name));
  writer.byte(NAME_TERMINATOR);
  group.changes.forEach((change, index) => writeChange(writer, change, patchset, isPk, `${where}.changes[${index}]`));
}

function validateGroupHeader(group: TableChanges, where: string): void {
  if (typeof group !== 'object' || group === null) throw new TypeError(`${where}: expected a table group`);
  if (group.kind !== 'changeset' && group.kind !== 'patchset') throw new TypeError(`${where}.kind: expected 'changeset' or 'patchset'`);
  if (typeof group.name !== 'string') throw new TypeError(`${where}.name: expected a string`);
  if (group.name.includes('\0')) throw new RangeError(`${where}.name: a table name cannot contain NUL`);
  const { columnCount } = group;
  if (!Number.isInteger(columnCount) || columnCount < COLUMN_COUNT_MIN || columnCount > COLUMN_COUNT_MAX) {
    throw new RangeError(`${where}.columnCount: expected an integer in ${COLUMN_COUNT_MIN}..${COLUMN_COUNT_MAX}`);
  }
  if (!(group.pk instanceof Uint8Array) || group.pk.length !== columnCount) {
    throw new TypeError(`${where}.pk: expected a Uint8Array of columnCount bytes`);
  }
  if (!Array.isArray(group.changes)) throw new TypeError(`${where}.changes: expected an array`);
}

/** Which fields a record must, may or must not define. */
type Presence = 'required' | 'optional' | 'absent';

function writeChange(writer: ByteWriter, change: Change, patchset: boolean, isPk: boolean[], where: string): void {
  if (typeof change !== 'object' || change === null) throw new TypeError(`${where}: expected a change`);
  if (typeof change.indirect !== 'boolean') throw new TypeError(`${where}.indirect: expected a boolean`);
  const op = change.op === 'insert' ? OP_INSERT : change.op === 'update' ? OP_UPDATE : change.op === 'delete' ? OP_DELETE : -1;
  if (op < 0) throw new TypeError(`${where}.op: expected 'insert', 'update' or 'delete'`);
  writer.byte(op);
  writer.byte(change.indirect ? INDIRECT_TRUE : INDIRECT_FALSE);
  const always = isPk.map((): Presence => 'required');
  const optional = isPk.map((): Presence => 'optional');
  const pkOnly = isPk.map((pk): Presence => (pk ? 'required' : 'absent'));
  const nonPk = isPk.map((pk): Presence => (pk ? 'absent' : 'optional'));
  const pkRequired = isPk.map((pk): Presence => (pk ? 'required' : 'optional'));
  if (op === OP_INSERT) {
    expectAbsent(change.old, `${where}.old`);
    writeRecord(writer, fieldsOf(change.new, isPk.length, `${where}.new`), always, `${where}.new`);
  } else if (op === OP_DELETE) {
    expectAbsent(change.new, `${where}.new`);
    writeRecord(writer, fieldsOf(change.old, isPk.length, `${where}.old`), patchset ? pkOnly : always, `${where}.old`);
  } else if (patchset) {
    const old = fieldsOf(change.old, isPk.length, `${where}.old`);
    const fresh = fieldsOf(change.new, isPk.length, `${where}.new`);
    checkPresence(old, pkOnly, `${where}.old`);
    checkPresence(fresh, nonPk, `${where}.new`);
    writeRecord(writer, isPk.map((pk, column) => (pk ? old[column] : fresh[column])), optional, where);
  } else {
    writeRecord(writer, fieldsOf(change.old, isPk.length, `${where}.old`), pkRequired, `${where}.old`);
    writeRecord(writer, fieldsOf(change.new, isPk.length, `${where}.new`), optional, `${where}.new`);
  }
}

function fieldsOf(fields: Field[] | undefined, columnCount: number, where: string): Field[] {
  if (!Array.isArray(fields) || fields.length !== columnCount) throw new TypeError(`${where}: expected an array of columnCount fields`);
  return fields;
}

function expectAbsent(fields: Field[] | undefined, where: string): void {
  if (fields !== undefined) throw new TypeError(`${where}: must be absent for this op`);
}

function checkPresence(fields: Field[], presence: Presence[], where: string): void {
  fields.forEach((field, column) => {
    if (presence[column] === 'required' && field === undefined) throw new TypeError(`${where}[${column}]: a value is required`);
    if (presence[column] === 'absent' && field !== undefined) throw new TypeError(`${where}[${column}]: must be undefined`);
  });
}

/** Writes the fields; a patchset DELETE (`absent` non-PK columns) omits those fields entirely. */
function writeRecord(writer: ByteWriter, fields: Field[], presence: Presence[], where: string): void {
  checkPresence(fields, presence, where);
  fields.forEach((field, column) => {
    if (presence[column] !== 'absent') writeField(writer, field, `${where}[${column}]`);
  });
}

function writeField(writer: ByteWriter, field: Field, where: string): void {
  const { type, payload } = classifyField(field, where);
  writer.byte(type);
  if (type === TYPE_INTEGER || type === TYPE_REAL) {
    const { bytes, offset } = writer.reserve(FIXED_PAYLOAD_SIZE);
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, FIXED_PAYLOAD_SIZE);
    if (type === TYPE_INTEGER) view.setBigInt64(0, field as bigint, false);
    else view.setFloat64(0, field as number, false);
  } else if (payload !== null) {
    writer.varint(payload.length);
    writer.copy(payload);
  }
}
