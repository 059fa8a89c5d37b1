/**
 * The `rowids` of an entry body (journal/FORMAT.md §6.1): for rowid tables whose PRIMARY KEY is not the
 * rowid, which rows got, lost or changed their rowid in the entry. A changeset identifies such rows by
 * their key only, so without this record a replay gives re-inserted rows new rowids, and anything keyed by
 * rowid (FTS5 external-content indexes, `content_rowid`) then points at the wrong rows.
 *
 * Encoded as a changeset, so every reader already has the decoder: one group per table, whose columns are
 * the table's PRIMARY KEY columns (table order, with their pk ordinals) followed by `before` and `after`;
 * every change is a direct INSERT whose record holds the key, then the row's rowid before the entry and
 * after it (INTEGER, or NULL when the row did not exist then).
 */
import { decodeChangeset, encodeChangeset, type Value } from '../changeset/index.js';
import { ChangetrailError } from '../errors.js';

/** One row whose rowid the entry changed. */
export interface RowidChange {
  /** The PRIMARY KEY values, in table column order. */
  readonly key: readonly Value[];
  /** The rowid before the entry; null if the row did not exist. */
  readonly before: bigint | null;
  /** The rowid after the entry; null if the row does not exist afterwards. */
  readonly after: bigint | null;
}

/** The rowid changes of one table. */
export interface TableRowids {
  readonly table: string;
  /** PRIMARY KEY ordinals of the key columns, in table column order (the table's non-zero pk bytes). */
  readonly keyOrdinals: readonly number[];
  readonly rows: readonly RowidChange[];
}

/** Encodes rowid changes (tables without rows are left out). */
export function encodeRowids(tables: readonly TableRowids[]): Uint8Array {
  const groups = tables.filter((table) => table.rows.length > 0).map((table) => {
    const keyCount = table.keyOrdinals.length;
    return {
      kind: 'changeset' as const, name: table.table, columnCount: keyCount + 2,
      pk: Uint8Array.from([...table.keyOrdinals, 0, 0]),
      changes: table.rows.map((row) => ({ op: 'insert' as const, indirect: false, new: [...row.key, row.before, row.after] })),
    };
  });
  return encodeChangeset({ tables: groups });
}

/**
 * Decodes and validates the `rowids` bytes of an entry.
 *
 * @throws ChangetrailError JOURNAL_MALFORMED (with `where`) for bytes that are not a valid rowid record.
 */
export function decodeRowids(bytes: Uint8Array, where: { file: string; offset: number; seq?: number }): TableRowids[] {
  const malformed = (reason: string, cause?: unknown): ChangetrailError<'JOURNAL_MALFORMED'> => new ChangetrailError('JOURNAL_MALFORMED',
    `decode entry ${where.seq ?? '?'} in ${where.file}: rowids: ${reason}`, { ...where, reason: `rowids: ${reason}` }, cause === undefined ? undefined : { cause });
  let decoded;
  try {
    decoded = decodeChangeset(bytes);
  } catch (cause) {
    throw malformed('not a changeset', cause);
  }
  return decoded.tables.map((group) => {
    const keyCount = group.columnCount - 2;
    const ordinals = Array.from(group.pk.subarray(0, Math.max(keyCount, 0)));
    if (group.kind !== 'changeset' || keyCount < 1 || group.pk[keyCount] !== 0 || group.pk[keyCount + 1] !== 0 || ordinals.some((o) => o === 0)) {
      throw malformed(`group "${group.name}" does not have the shape key columns + before + after`);
    }
    const rows = group.changes.map((change) => {
      const fields = change.new;
      if (change.op !== 'insert' || change.indirect || fields === undefined) throw malformed(`group "${group.name}" holds a change that is not a direct INSERT`);
      const before = fields[keyCount];
      const after = fields[keyCount + 1];
      const rowidOrNull = (value: unknown): value is bigint | null => value === null || typeof value === 'bigint';
      if (!rowidOrNull(before) || !rowidOrNull(after) || before === after) throw malformed(`group "${group.name}": before/after must be distinct INTEGERs or NULL`);
      if (fields.slice(0, keyCount).some((value) => value === null)) throw malformed(`group "${group.name}": a key value is NULL`);
      return { key: fields.slice(0, keyCount) as Value[], before, after };
    });
    return { table: group.name, keyOrdinals: ordinals, rows };
  });
}

/** The rowid changes of the inverse entry (undo): before and after swapped. */
export function invertRowids(tables: readonly TableRowids[]): TableRowids[] {
  return tables.map((table) => ({ ...table, rows: table.rows.map((row) => ({ key: row.key, before: row.after, after: row.before })) }));
}
