/**
 * The decoded form of changesets and patchsets. See {@link decodeChangeset} for how each op's `old` and
 * `new` arrays are filled for changesets and for patchsets.
 */
import type { SqlText } from './sql-text.js';

/**
 * One SQL value of a changeset field.
 *
 * - `null`: SQL NULL (type byte 0x05).
 * - `bigint`: INTEGER (0x01), always a bigint, full signed 64-bit range.
 * - `number`: REAL (0x02); -0 and ±Infinity are kept (NaN never occurs: SQLite stores NaN as NULL).
 * - `string`: TEXT (0x03) whose bytes are valid UTF-8.
 * - {@link SqlText}: TEXT whose bytes are not valid UTF-8 (SQLite can store such text); keeps the bytes.
 * - `Uint8Array`: BLOB (0x04).
 */
export type Value = null | bigint | number | string | SqlText | Uint8Array;

/** A field of a record: a {@link Value}, or `undefined` for the 0x00 "no value" placeholder. */
export type Field = Value | undefined;

/** Kind of a table group: 'T' (changeset) or 'P' (patchset) marker. */
export type ChangesetKind = 'changeset' | 'patchset';

/** The operation of one change. */
export type ChangeOp = 'insert' | 'update' | 'delete';

/** One change to one row. Which of `old` / `new` is present depends on `op` and the group's kind. */
export interface Change {
  op: ChangeOp;
  /** True when SQLite recorded the change as indirect (made by a trigger or FK action). */
  indirect: boolean;
  /** Old values: UPDATE and DELETE only. Always `columnCount` long. */
  old?: Field[];
  /** New values: INSERT and UPDATE only. Always `columnCount` long. */
  new?: Field[];
}

/** One table header and the changes that follow it. */
export interface TableChanges {
  kind: ChangesetKind;
  /** Table name exactly as written in the header. */
  name: string;
  /** Number of (non-hidden) columns: 1..65536. */
  columnCount: number;
  /**
   * The raw pk bytes, one per column: 0 = not in the PRIMARY KEY, else the column's 1-based position in
   * the PRIMARY KEY clause (`PRAGMA table_xinfo.pk`). Never normalised to 0/1.
   */
  pk: Uint8Array;
  changes: Change[];
}

/** A decoded changeset or patchset: its table groups in buffer order. */
export interface Changeset {
  tables: TableChanges[];
}
