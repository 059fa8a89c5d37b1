/**
 * One change of a changeset as named row images (key, before, after), in the column order of the table
 * as of the entry, for the row formats (ndjson, Debezium).
 */
import type { Change, Field, TableChanges, Value } from '../changeset/index.js';
import { ChangetrailError } from '../errors.js';
import { findTable, isChangetrailTable, type DatabaseSchema } from '../apply/schema.js';
import { foldAscii } from './export-format.js';

/** Column/value pairs in column order. */
export type RowImage = Array<readonly [string, Value]>;

export interface RowChangeImage {
  readonly table: string;
  readonly op: Change['op'];
  readonly indirect: boolean;
  /** The primary key, in PRIMARY KEY order. */
  readonly key: RowImage;
  /** INSERT: null. DELETE: every column (changesets) or null (patchsets). UPDATE: the changed columns' old values. */
  readonly before: RowImage | null;
  /** DELETE: null. INSERT: every column. UPDATE: the changed columns' new values. */
  readonly after: RowImage | null;
}

/** The names of a changeset group's columns in `schema`. */
export function columnNames(schema: DatabaseSchema, group: TableChanges, seq: number): readonly string[] {
  const table = findTable(schema, group.name);
  if (table === undefined || table.columns.length < group.columnCount) {
    throw new ChangetrailError('CHANGESET_SCHEMA_UNKNOWN', `export entry ${seq}: table ${group.name} is not in the schema of that entry`, {
      table: group.name, changesetColumnCount: group.columnCount, ...(table === undefined ? {} : { schemaColumnCount: table.columns.length }),
    });
  }
  return table.columns;
}

/** Whether row formats leave a table out unless asked: shadow tables of FTS/R*Tree and changetrail's own. */
export function isHiddenTable(schema: DatabaseSchema, name: string): boolean {
  return isChangetrailTable(name) || findTable(schema, name)?.isShadow === true;
}

export function toRowImage(group: TableChanges, original: Change, columns: readonly string[]): RowChangeImage {
  const change = foldAscii(group.name) === 'sqlite_stat1' ? stat1Nulls(original) : original;
  const base = { table: group.name, op: change.op, indirect: change.indirect };
  const keyFields = change.op === 'insert' ? change.new! : change.old!;
  const key = keyOrder(group).map((column) => [columns[column]!, keyFields[column] as Value] as const);
  if (change.op === 'insert') return { ...base, key, before: null, after: image(columns, change.new!, () => true) };
  if (change.op === 'delete') {
    return { ...base, key, before: group.kind === 'patchset' ? null : image(columns, change.old!, () => true), after: null };
  }
  const changed = (column: number): boolean => change.new![column] !== undefined && group.pk[column] === 0;
  return { ...base, key, before: group.kind === 'patchset' ? null : image(columns, change.old!, changed), after: image(columns, change.new!, changed) };
}

/** Column indexes of the primary key in PRIMARY KEY order (the pk bytes are 1-based ordinals). */
function keyOrder(group: TableChanges): number[] {
  const order: number[] = [];
  group.pk.forEach((ordinal, column) => {
    if (ordinal !== 0) order.push(column);
  });
  return order.sort((a, b) => group.pk[a]! - group.pk[b]!);
}

function image(columns: readonly string[], fields: ReadonlyArray<Value | undefined>, include: (column: number) => boolean): RowImage {
  const row: RowImage = [];
  fields.forEach((field, column) => {
    if (field !== undefined && include(column)) row.push([columns[column]!, field]);
  });
  return row;
}

/**
 * Sessions record a NULL `idx` of `sqlite_stat1` as a zero-length BLOB (its key cannot be NULL in a
 * changeset) and their apply turns it back into NULL; so does the script.
 */
export function stat1Nulls(change: Change): Change {
  const fix = (fields: Field[] | undefined): Field[] | undefined => fields?.map((field, column) => (column === 1 && field instanceof Uint8Array && field.byteLength === 0 ? null : field));
  return { ...change, ...(change.old === undefined ? {} : { old: fix(change.old)! }), ...(change.new === undefined ? {} : { new: fix(change.new)! }) };
}

