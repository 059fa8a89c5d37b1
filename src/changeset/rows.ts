/** Changes as rows keyed by column name, for display, audit and export. */
import type { ChangeOp, Field, TableChanges, Value } from './types.js';
import { ChangetrailError } from '../errors.js';
import { decodeChangeset } from './decode.js';
import { foldTableName } from './table-name.js';

/**
 * Column names per table, as `PRAGMA table_xinfo` lists the non-hidden columns (`hidden = 0`) in table
 * order. Table names are looked up ASCII-case-insensitively.
 */
export type ChangesetSchema = Record<string, { columns: string[] }>;

/** Column values of one row, keyed by column name. */
export type RowValues = Record<string, Value>;

/** One change as named columns. */
export interface RowChange {
  /** Table name as written in the changeset. */
  table: string;
  op: ChangeOp;
  indirect: boolean;
  /** Primary key columns and their values (the row's identity). */
  pk: RowValues;
  /**
   * Values before the change: every column for a changeset DELETE; only the changed non-PK columns for a
   * changeset UPDATE; `null` for INSERT and for patchset DELETE/UPDATE (patchsets carry no old values).
   */
  before: RowValues | null;
  /**
   * Values after the change: every column for INSERT; only the changed non-PK columns for UPDATE (PK
   * columns are in `pk`, unchanged columns do not appear); `null` for DELETE.
   */
  after: RowValues | null;
}

/**
 * Decodes a changeset or patchset into one {@link RowChange} per change, in buffer order, naming columns
 * with `schema`. Changeset column i is schema column i; as with `sqlite3changeset_apply`, the schema may
 * list more columns than the changeset (columns added later by ALTER TABLE ADD COLUMN), never fewer.
 *
 * @example
 * changesetToRows(bytes, { t: { columns: ['id', 'name'] } });
 * // [{ table: 't', op: 'update', indirect: false, pk: { id: 2n }, before: { name: 'bob' }, after: { name: 'bobby' } }]
 * @throws TypeError if `schema` is not an object of `{ columns: string[] }`.
 * @throws ChangetrailError CHANGESET_SCHEMA_UNKNOWN (`details.table`, and the column counts when they disagree) if a
 *   table of the changeset is missing from `schema` or has fewer columns there.
 * @throws ChangetrailError CHANGESET_MALFORMED as {@link decodeChangeset}.
 */
export function changesetToRows(bytes: Uint8Array, schema: ChangesetSchema): RowChange[] {
  const lookup = schemaLookup(schema);
  const rows: RowChange[] = [];
  for (const group of decodeChangeset(bytes).tables) {
    const columns = columnsFor(lookup, group);
    for (const change of group.changes) {
      const base = { table: group.name, op: change.op, indirect: change.indirect };
      const patchset = group.kind === 'patchset';
      if (change.op === 'insert') {
        rows.push({ ...base, pk: pick(columns, change.new!, group.pk), before: null, after: pick(columns, change.new!, null) });
      } else if (change.op === 'delete') {
        rows.push({ ...base, pk: pick(columns, change.old!, group.pk), before: patchset ? null : pick(columns, change.old!, null), after: null });
      } else {
        const changed = change.new!.map((field, column) => field !== undefined && group.pk[column] === 0);
        const before = patchset ? null : pickWhere(columns, change.old!, changed);
        rows.push({ ...base, pk: pick(columns, change.old!, group.pk), before, after: pickWhere(columns, change.new!, changed) });
      }
    }
  }
  return rows;
}

/** Validated schema, keyed by folded table name. */
export type SchemaLookup = Map<string, string[]>;

/** Checks the shape of `schema` and indexes it by ASCII-folded table name. */
export function schemaLookup(schema: ChangesetSchema): SchemaLookup {
  if (typeof schema !== 'object' || schema === null) throw new TypeError('changeset schema must be an object');
  const lookup: SchemaLookup = new Map();
  for (const [table, entry] of Object.entries(schema)) {
    const columns = (entry as { columns?: unknown } | null)?.columns;
    if (!Array.isArray(columns) || !columns.every((column) => typeof column === 'string')) {
      throw new TypeError(`changeset schema: ${table}.columns must be an array of strings`);
    }
    lookup.set(foldTableName(table), columns);
  }
  return lookup;
}

/** The column names of a group's table. */
export function columnsFor(lookup: SchemaLookup, group: TableChanges): string[] {
  const columns = lookup.get(foldTableName(group.name));
  if (columns === undefined) {
    throw new ChangetrailError('CHANGESET_SCHEMA_UNKNOWN', `render changeset: table ${group.name} is not in the schema`, { table: group.name });
  }
  if (columns.length < group.columnCount) {
    throw new ChangetrailError('CHANGESET_SCHEMA_UNKNOWN',
      `render changeset: table ${group.name} has ${group.columnCount} columns in the changeset but ${columns.length} in the schema`,
      { table: group.name, changesetColumnCount: group.columnCount, schemaColumnCount: columns.length });
  }
  return columns;
}

/** Columns whose field is defined; with `pk`, only the PK columns. */
function pick(columns: string[], fields: Field[], pk: Uint8Array | null): RowValues {
  return pickWhere(columns, fields, fields.map((field, column) => field !== undefined && (pk === null || pk[column] !== 0)));
}

function pickWhere(columns: string[], fields: Field[], include: boolean[]): RowValues {
  const values: RowValues = {};
  fields.forEach((field, column) => {
    // defineProperty keeps a column named "__proto__" an ordinary own property.
    if (include[column] && field !== undefined) Object.defineProperty(values, columns[column]!, { value: field, enumerable: true, writable: true, configurable: true });
  });
  return values;
}
