/** Selecting the changes of some tables, or only direct or only indirect changes. */
import { headerExpected, isTableMarker, readTableHeader, scanChange, type TableHeader } from './reader.js';
import { foldTableName } from './table-name.js';
import { ByteWriter } from './byte-writer.js';

/** Which changes {@link filterChangeset} keeps. Omitted criteria keep everything. */
export interface ChangesetFilter {
  /** Tables to keep: a list of names (compared ASCII-case-insensitively) or a predicate on the header name. */
  tables?: string[] | ((name: string) => boolean);
  /** `true` keeps only indirect changes, `false` only direct ones. */
  indirect?: boolean;
}

/**
 * Returns the changes of `bytes` that pass `filter`, in their original order and encoding. A table
 * header is written before the first kept change of each group; groups left without changes are
 * omitted. Works on changesets and patchsets alike.
 *
 * @example
 * filterChangeset(bytes, { tables: ['orders'], indirect: false }); // direct changes to "orders"
 * @throws TypeError if `bytes` is not a Uint8Array or `filter` is malformed.
 * @throws ChangetrailError CHANGESET_MALFORMED as {@link decodeChangeset}.
 */
export function filterChangeset(bytes: Uint8Array, filter: ChangesetFilter): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('filterChangeset: bytes must be a Uint8Array');
  const keepTable = tablePredicate(filter);
  const wantIndirect = filter.indirect === undefined ? -1 : filter.indirect ? 1 : 0;
  const writer = new ByteWriter(bytes.length);
  let header: TableHeader | null = null;
  let keep = false;
  let headerWritten = false;
  let offset = 0;
  while (offset < bytes.length) {
    if (isTableMarker(bytes[offset])) {
      header = readTableHeader(bytes, offset);
      keep = keepTable(header.name);
      headerWritten = false;
      offset = header.end;
      continue;
    }
    if (header === null) throw headerExpected(bytes, offset);
    const end = scanChange(bytes, offset, header, null);
    if (keep && (wantIndirect < 0 || bytes[offset + 1] === wantIndirect)) {
      if (!headerWritten) writer.copy(bytes.subarray(header.start, header.end));
      headerWritten = true;
      writer.copy(bytes.subarray(offset, end));
    }
    offset = end;
  }
  return writer.finish();
}

function tablePredicate(filter: ChangesetFilter): (name: string) => boolean {
  if (typeof filter !== 'object' || filter === null) throw new TypeError('filterChangeset: filter must be an object');
  if (filter.indirect !== undefined && typeof filter.indirect !== 'boolean') throw new TypeError('filterChangeset: filter.indirect must be a boolean');
  const { tables } = filter;
  if (tables === undefined) return () => true;
  if (typeof tables === 'function') return (name) => Boolean(tables(name));
  if (!Array.isArray(tables) || !tables.every((name) => typeof name === 'string')) {
    throw new TypeError('filterChangeset: filter.tables must be an array of names or a predicate');
  }
  const wanted = new Set(tables.map(foldTableName));
  return (name) => wanted.has(foldTableName(name));
}
