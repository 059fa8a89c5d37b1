/** `sqlite3changeset_invert` in TypeScript (reference §2). */
import { ChangetrailError } from '../errors.js';
import { CHANGE_HEADER_SIZE, OP_DELETE, OP_INSERT, OP_UPDATE, TYPE_UNDEFINED } from './format.js';
import { headerExpected, isTableMarker, readTableHeader, scanChange, type TableHeader } from './reader.js';
import { copyBytes } from './copy-bytes.js';

/**
 * Inverts a changeset, byte-identical to SQLite's `sqlite3changeset_invert`: table headers are copied,
 * INSERT and DELETE swap op codes and keep their records, and each UPDATE swaps its old and new values
 * (PK values stay in old.*). Order and indirect flags are preserved. Applying the result after the
 * input restores the database; `invertChangeset(invertChangeset(x))` equals `x`.
 *
 * @example
 * db.applyChangeset(invertChangeset(changeset)); // undo
 * @throws TypeError if `bytes` is not a Uint8Array.
 * @throws ChangetrailError CHANGESET_KIND_UNSUPPORTED for a patchset group (patchsets lack old values).
 * @throws ChangetrailError CHANGESET_MALFORMED as {@link decodeChangeset}.
 */
export function invertChangeset(bytes: Uint8Array): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('invertChangeset: bytes must be a Uint8Array');
  // Inverting permutes bytes within each change, so the output is the input's size (smaller only when
  // an UPDATE carries defined new.* PK values, which SQLite never writes and invert drops). Starting
  // from a copy lets headers, INSERTs and DELETEs be patched in place instead of copied.
  const target = new Uint8Array(bytes.length);
  target.set(bytes);
  let header: TableHeader | null = null;
  let offsets = new Int32Array(0);
  let source = 0;
  let written = 0;
  while (source < bytes.length) {
    if (isTableMarker(bytes[source])) {
      header = readTableHeader(bytes, source);
      if (header.patchset) throw patchsetError();
      written = place(bytes, source, header.end, target, written);
      offsets = new Int32Array(2 * header.columnCount + 2);
      source = header.end;
      continue;
    }
    if (header === null) throw headerExpected(bytes, source);
    const op = bytes[source];
    const end = scanChange(bytes, source, header, op === OP_UPDATE ? offsets : null);
    if (op === OP_UPDATE) {
      written = writeInvertedUpdate(bytes, source, header, offsets, target, written);
    } else {
      const at = written;
      written = place(bytes, source, end, target, written);
      target[at] = op === OP_INSERT ? OP_DELETE : OP_INSERT;
    }
    source = end;
  }
  return written === target.length ? target : target.slice(0, written);
}

/** Copies a range to the same place in the output, which already holds it while nothing has shrunk. */
function place(bytes: Uint8Array, start: number, end: number, target: Uint8Array, written: number): number {
  return written === start ? end : copyBytes(bytes, start, end, target, written);
}

function patchsetError(): ChangetrailError<'CHANGESET_KIND_UNSUPPORTED'> {
  return new ChangetrailError('CHANGESET_KIND_UNSUPPORTED', 'invert changeset: a patchset has no old values to invert', {
    operation: 'invert', kind: 'patchset',
  });
}

/** old'[i] = PK ? old[i] : new[i]; new'[i] = PK ? undefined : old[i] (S:4252-4300). */
function writeInvertedUpdate(
  bytes: Uint8Array, source: number, header: TableHeader, offsets: Int32Array, target: Uint8Array, written: number,
): number {
  const { columnCount, isPk } = header;
  const newBase = columnCount + 1;
  target[written] = OP_UPDATE;
  target[written + 1] = bytes[source + 1]!;
  let at = written + CHANGE_HEADER_SIZE;
  for (let column = 0; column < columnCount; column++) {
    const field = isPk[column] === 1 ? column : newBase + column;
    at = copyBytes(bytes, offsets[field]!, offsets[field + 1]!, target, at);
  }
  for (let column = 0; column < columnCount; column++) {
    if (isPk[column] === 1) target[at++] = TYPE_UNDEFINED;
    else at = copyBytes(bytes, offsets[column]!, offsets[column + 1]!, target, at);
  }
  return at;
}
