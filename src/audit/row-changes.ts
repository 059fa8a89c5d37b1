/**
 * The rows an entry's changeset touched: cheaply (table and key only, for the index) or with column names
 * as of that entry (for history and blame). Trigger and foreign-key-action changes are flagged indirect
 * by SQLite sessions; audit keeps the flag.
 */
import { decodeChangeset, type ChangeOp, type Field, type RowValues, type TableChanges, type Value } from '../changeset/index.js';
import { foldName } from '../apply/schema.js';
import { formatRowKey, keyValuesOf } from './row-key.js';

/** A row an entry touched, without values. `table` is folded (ASCII lower case), as SQLite compares names. */
export interface RowTouch {
  readonly table: string;
  readonly key: string;
  readonly op: ChangeOp;
}

/** A change to one row with column names: what history and blame print. */
export interface NamedRowChange {
  /** Table name as written in the changeset. */
  readonly table: string;
  readonly key: string;
  /** PRIMARY KEY columns and values. */
  readonly pk: RowValues;
  readonly op: ChangeOp;
  readonly indirect: boolean;
  /** DELETE: every column; UPDATE: the changed non-key columns; INSERT: null. */
  readonly before: RowValues | null;
  /** INSERT: every column; UPDATE: the changed non-key columns; DELETE: null. */
  readonly after: RowValues | null;
}

/** Column names of a table as of an entry, or null when unknown (columns are then named c0, c1, ...). */
export type ColumnsOf = (table: string) => readonly string[] | null;

/** Every row the changeset touched (table folded). */
export function rowTouchesOf(changeset: Uint8Array): RowTouch[] {
  if (changeset.byteLength === 0) return [];
  const touches: RowTouch[] = [];
  for (const group of decodeChangeset(changeset).tables) {
    const table = foldName(group.name);
    for (const change of group.changes) {
      touches.push({ table, key: formatRowKey(keyValuesOf(change.op === 'insert' ? change.new! : change.old!, group.pk)), op: change.op });
    }
  }
  return touches;
}

/**
 * The changes of `changeset` with column names, optionally only those of one row (`only`: folded table
 * and key).
 */
export function namedRowChangesOf(changeset: Uint8Array, columnsOf: ColumnsOf, only?: { table: string; key: string }): NamedRowChange[] {
  if (changeset.byteLength === 0) return [];
  const rows: NamedRowChange[] = [];
  for (const group of decodeChangeset(changeset).tables) {
    if (only !== undefined && foldName(group.name) !== only.table) continue;
    const columns = namesFor(group, columnsOf(group.name));
    for (const change of group.changes) {
      const identity = change.op === 'insert' ? change.new! : change.old!;
      const key = formatRowKey(keyValuesOf(identity, group.pk));
      if (only !== undefined && key !== only.key) continue;
      const pk = pick(columns, identity, (i) => group.pk[i]! > 0);
      const base = { table: group.name, key, pk, op: change.op, indirect: change.indirect };
      if (change.op === 'insert') rows.push({ ...base, before: null, after: pick(columns, change.new!, () => true) });
      else if (change.op === 'delete') rows.push({ ...base, before: pick(columns, change.old!, () => true), after: null });
      else {
        const changed = (i: number) => change.new![i] !== undefined && group.pk[i] === 0;
        rows.push({ ...base, before: pick(columns, change.old!, changed), after: pick(columns, change.new!, changed) });
      }
    }
  }
  return rows;
}

function namesFor(group: TableChanges, known: readonly string[] | null): readonly string[] {
  if (known !== null && known.length >= group.columnCount) return known;
  return Array.from({ length: group.columnCount }, (_, i) => `c${i}`);
}

function pick(columns: readonly string[], fields: readonly Field[], include: (index: number) => boolean): RowValues {
  const values: RowValues = {};
  fields.forEach((field, index) => {
    if (field === undefined || !include(index)) return;
    // defineProperty keeps a column named "__proto__" an ordinary own property.
    Object.defineProperty(values, columns[index]!, { value: field as Value, enumerable: true, writable: true, configurable: true });
  });
  return values;
}
