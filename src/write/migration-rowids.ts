/**
 * The rowids a migration leaves on rows of keyed rowid tables, recorded in its schema entry's `rowids`
 * (journal/FORMAT.md §6.1, "schema entries") so that replay reproduces them.
 *
 * Replay re-runs the script, and applies the entry's changeset instead when the script's data changes
 * differ there (journal/REPLAY.md "Schema entries"). Either way SQLite picks the rowids of the rows the
 * script or the apply creates: a script whose row order is not fixed (`ORDER BY random()`, a query plan
 * another SQLite version chooses differently) or an apply, which inserts in changeset order, numbers them
 * differently from the source. A changeset cannot say: it names rows of these tables by key only.
 *
 * Recorded, with `before` NULL (a schema entry's `rowids` say only where rows end) and `after` the rowid:
 * - every row of each keyed rowid table the migration created or rebuilt: its b-tree (root page) is not one
 *   that a table had before (CREATE TABLE, the "create, copy, drop, rename" pattern). A renamed table keeps
 *   its root page and rowids and is not listed; auto_vacuum moving a root page into a dropped table's
 *   place does not make a table new either;
 * - in the other keyed rowid tables, the rows the entry's changeset inserts.
 * The data writes' capture triggers (rowid-capture.ts) are not used: a table rebuild would break them.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { createSchemaReader, foldName, isKeyedRowidTable, type TableSchema } from '../apply/schema.js';
import { mainTable, quoteIdentifier } from '../apply/sql-identifier.js';
import { decodeChangeset, SqlText, type Value } from '../changeset/index.js';
import type { RowidChange, TableRowids } from '../journal/rowids.js';

/** The root pages of the tables of `main`: read before the migration runs. */
export type TableRoots = ReadonlySet<number>;

export function readTableRoots(db: DatabaseSync): TableRoots {
  return new Set(rootPages(db).values());
}

/** Root page of every table of `main`, by folded name. */
function rootPages(db: DatabaseSync): Map<string, number> {
  const rows = db.prepare(`SELECT name, rootpage FROM main.sqlite_schema WHERE type = 'table'`).all() as { name: string; rootpage: number }[];
  return new Map(rows.map((row) => [foldName(row.name), Number(row.rootpage)]));
}

/** The rowids to record for a migration that ran after `before` was read and produced `changeset`. */
export function collectMigrationRowids(db: DatabaseSync, before: TableRoots, changeset: Uint8Array): TableRowids[] {
  const after = rootPages(db);
  const inserted = insertedKeys(changeset);
  const result: TableRowids[] = [];
  for (const table of createSchemaReader(db)().tables) {
    if (!isKeyedRowidTable(db, table)) continue;
    const name = foldName(table.name);
    const rebuilt = !before.has(after.get(name) ?? 0);
    const rows = rebuilt ? allRows(db, table) : insertedRows(db, table, inserted.get(name) ?? []);
    if (rows.length > 0) result.push({ table: table.name, keyOrdinals: keyColumns(table).map((column) => column.ordinal), rows });
  }
  return result;
}

interface KeyColumn {
  readonly name: string;
  /** Index in the table's columns (and in a changeset record). */
  readonly index: number;
  /** 1-based position in the PRIMARY KEY clause. */
  readonly ordinal: number;
}

function keyColumns(table: TableSchema): KeyColumn[] {
  return table.columns.flatMap((name, index) => ((table.pk[index] ?? 0) > 0 ? [{ name, index, ordinal: table.pk[index]! }] : []));
}

/** Keys of the rows the changeset inserts, by folded table name, in table column order. */
function insertedKeys(changeset: Uint8Array): Map<string, Value[][]> {
  const keys = new Map<string, Value[][]>();
  if (changeset.byteLength === 0) return keys;
  for (const group of decodeChangeset(changeset).tables) {
    const columns = [...group.pk].flatMap((ordinal, index) => (ordinal > 0 ? [index] : []));
    const rows = group.changes.filter((change) => change.op === 'insert').map((change) => columns.map((index) => (change.new![index] ?? null) as Value));
    keys.set(foldName(group.name), [...(keys.get(foldName(group.name)) ?? []), ...rows]);
  }
  return keys;
}

/** Every row of the table with a non-NULL key (sessions skip the others), TEXT keys exact (SqlText). */
function allRows(db: DatabaseSync, table: TableSchema): RowidChange[] {
  const keys = keyColumns(table).map((column) => quoteIdentifier(column.name));
  const statement = db.prepare(`SELECT ${keys.join(', ')}, rowid, ${keys.map((k) => `CASE typeof(${k}) WHEN 'text' THEN CAST(${k} AS BLOB) END`).join(', ')}
    FROM ${mainTable(table.name)} WHERE ${keys.map((k) => `${k} IS NOT NULL`).join(' AND ')}`);
  statement.setReadBigInts(true);
  statement.setReturnArrays(true);
  const count = keys.length;
  return (statement.all() as unknown as Value[][]).map((row) => ({
    key: row.slice(0, count).map((value, i) => exactText(value, row[count + 1 + i] as Uint8Array | null)),
    before: null, after: row[count] as bigint,
  }));
}

/** The current rowid of each inserted key (a key the migration deleted again is left out). */
function insertedRows(db: DatabaseSync, table: TableSchema, keys: readonly Value[][]): RowidChange[] {
  if (keys.length === 0) return [];
  const lookups = new Map<string, StatementSync>();
  const rows: RowidChange[] = [];
  for (const key of keys) {
    const placeholders = key.map((value) => (value instanceof SqlText ? 'CAST(? AS TEXT)' : '?'));
    const sql = `SELECT rowid AS id FROM ${mainTable(table.name)} WHERE ${keyColumns(table).map((c, i) => `${quoteIdentifier(c.name)} = ${placeholders[i]}`).join(' AND ')}`;
    let lookup = lookups.get(sql);
    if (lookup === undefined) {
      lookup = db.prepare(sql);
      lookup.setReadBigInts(true);
      lookups.set(sql, lookup);
    }
    const found = lookup.get(...key.map((value) => (value instanceof SqlText ? value.bytes : value))) as { id: bigint } | undefined;
    if (found !== undefined) rows.push({ key, before: null, after: found.id });
  }
  return rows;
}

/** A TEXT value whose bytes are not the UTF-8 of the decoded string (invalid UTF-8) keeps its bytes. */
function exactText(value: Value, bytes: Uint8Array | null): Value {
  if (typeof value !== 'string' || bytes === null || Buffer.from(value, 'utf8').equals(bytes)) return value;
  return new SqlText(bytes);
}
