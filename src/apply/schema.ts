/**
 * What a SQLite session can and cannot record, read from a database's schema.
 *
 * Sessions record only tables with a declared PRIMARY KEY, skip rows whose key is NULL, skip virtual
 * tables (but record their shadow tables, which are ordinary tables) and never record `temp` or attached
 * databases (reference/sqlite-session.md §5). {@link readSchema} lists every table of `main` with the
 * facts the capture guard and the exact apply need to decide what a write may touch.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ChangesetSchema } from '../changeset/index.js';
import { mainTable, quoteIdentifier } from './sql-identifier.js';

/** Why SQLite sessions cannot record a table's changes. */
export type NotCapturableReason =
  | 'no primary key'
  | 'virtual table'
  | 'attached database'
  | 'sqlite internal table'
  | 'changetrail table'
  | 'unknown table';

/** One table of the `main` database, as SQLite sessions see it. */
export interface TableSchema {
  /** The name as spelled in `sqlite_schema`. */
  readonly name: string;
  /** Non-hidden columns in table order: exactly the columns a changeset record holds (no generated columns). */
  readonly columns: readonly string[];
  /**
   * One entry per column of {@link columns}: 0 if not in the PRIMARY KEY, else the column's 1-based position
   * in the PRIMARY KEY clause. Equal to the pk bytes of this table's changeset header.
   */
  readonly pk: readonly number[];
  readonly withoutRowid: boolean;
  /** A virtual table (its rows live wherever its module keeps them). */
  readonly isVirtual: boolean;
  /** A shadow table of a virtual table (e.g. `ft_data` of FTS5): an ordinary table that sessions record. */
  readonly isShadow: boolean;
  /**
   * PRIMARY KEY columns that can hold NULL: those lacking NOT NULL in a rowid table whose key is not an
   * `INTEGER PRIMARY KEY` rowid alias (a long-standing SQLite quirk). Sessions silently skip rows whose key
   * is NULL, so writes to these tables are checked after the fact. Empty for every other table.
   */
  readonly nullablePkColumns: readonly string[];
  /** Whether sessions record this table's changes. */
  readonly capturable: boolean;
  /** Why not, when {@link capturable} is false; otherwise null. */
  readonly reason: NotCapturableReason | null;
}

/** The tables and views of a database's `main` schema at one schema version. */
export interface DatabaseSchema {
  /** `PRAGMA schema_version` when the schema was read. */
  readonly schemaVersion: number;
  /** Tables in `sqlite_schema` order. Excludes `sqlite_*` tables (except `sqlite_stat1`) and `_changetrail*` tables. */
  readonly tables: readonly TableSchema[];
  /** View names (writes to a view run its INSTEAD OF triggers, whose statements are checked on their own). */
  readonly views: readonly string[];
}

/** Prefix of the tables that changetrail keeps in the user's database (compared case-insensitively). */
export const CHANGETRAIL_TABLE_PREFIX = '_changetrail';

/** `sqlite_stat1` has no declared key, yet sessions record it with pk = [1, 2, 0] (reference §1.1). */
const STAT1_TABLE = 'sqlite_stat1';
const STAT1_PK: readonly number[] = [1, 2, 0];

/** `PRAGMA table_xinfo.hidden`: 0 = ordinary, 1 = hidden virtual-table column, 2/3 = generated column. */
const HIDDEN_NONE = 0;

interface TableListRow {
  name: string;
  type: string;
  wr: number;
}

interface ColumnRow {
  name: string;
  notnull: number;
  pk: number;
  hidden: number;
}

/**
 * Reads the `main` schema: every table with its recordable columns, primary key ordinals and whether SQLite
 * sessions can record it, plus the views.
 *
 * Names are passed to pragmas as bound parameters and quoted when spliced into SQL, so any table name is
 * safe. Cost: two pragma queries per table (about 30 µs each), so cache the result per schema version
 * ({@link createSchemaReader}).
 *
 * @example
 * const schema = readSchema(db);
 * schema.tables.filter((t) => !t.capturable).map((t) => `${t.name}: ${t.reason}`);
 */
export function readSchema(db: DatabaseSync): DatabaseSchema {
  const schemaVersion = readSchemaVersion(db);
  const rows = db.prepare(`SELECT l.name AS name, l.type AS type, l.wr AS wr
    FROM pragma_table_list AS l JOIN main.sqlite_schema AS s ON s.name = l.name AND s.type IN ('table', 'view')
    WHERE l.schema = 'main' ORDER BY s.rowid`).all() as unknown as TableListRow[];
  const listed = rows.filter((row) => isListedTable(row.name));
  const shadowNames = listed.filter((row) => row.type === 'shadow').map((row) => foldName(row.name));
  const tables = listed
    .filter((row) => row.type !== 'view')
    .map((row) => readTable(db, row, shadowNames));
  const views = listed.filter((row) => row.type === 'view').map((row) => row.name);
  return Object.freeze({ schemaVersion, tables: Object.freeze(tables), views: Object.freeze(views) });
}

/**
 * A reader that returns the same {@link DatabaseSchema} until `PRAGMA schema_version` changes (one pragma
 * read, about 2 µs, per call). Every schema change made through any connection bumps the version.
 */
export function createSchemaReader(db: DatabaseSync): () => DatabaseSchema {
  let cached: DatabaseSchema | null = null;
  return () => {
    if (cached === null || cached.schemaVersion !== readSchemaVersion(db)) cached = readSchema(db);
    return cached;
  };
}

/** `PRAGMA main.schema_version`: bumped by every schema change of `main`, whichever connection makes it. */
export function readSchemaVersion(db: DatabaseSync): number {
  let statement = SCHEMA_VERSION_STATEMENTS.get(db);
  if (statement === undefined) {
    statement = db.prepare('PRAGMA main.schema_version');
    SCHEMA_VERSION_STATEMENTS.set(db, statement);
  }
  const row = statement.get() as { schema_version: number } | undefined;
  return Number(row?.schema_version);
}

/** One statement per connection: the write path reads the version four times per write (3 µs a prepare). */
const SCHEMA_VERSION_STATEMENTS = new WeakMap<DatabaseSync, StatementSync>();

/**
 * The table of `schema` named `name`, compared ASCII-case-insensitively as SQLite does; undefined if absent.
 */
export function findTable(schema: DatabaseSchema, name: string): TableSchema | undefined {
  let index = TABLE_INDEX.get(schema);
  if (index === undefined) {
    index = new Map(schema.tables.map((table) => [foldName(table.name), table]));
    TABLE_INDEX.set(schema, index);
  }
  return index.get(foldName(name));
}

const TABLE_INDEX = new WeakMap<DatabaseSchema, Map<string, TableSchema>>();

/**
 * The column lists of a schema in the form the changeset renderers take (`changesetToRows`,
 * `changesetToSql`): `{ [table]: { columns } }`, recorded columns only, virtual tables left out.
 */
export function toChangesetSchema(schema: DatabaseSchema): ChangesetSchema {
  const result: Record<string, { columns: string[] }> = {};
  for (const table of schema.tables) {
    if (!table.isVirtual) result[table.name] = { columns: [...table.columns] };
  }
  return result;
}

/** True for names that are changetrail's own tables (`_changetrail*`, any letter case). */
export function isChangetrailTable(name: string): boolean {
  return foldName(name).startsWith(CHANGETRAIL_TABLE_PREFIX);
}

/** ASCII-only lower-casing: SQLite compares identifiers with `sqlite3_stricmp`, which folds ASCII only. */
export function foldName(name: string): string {
  // Most names are lower case already: the test is about a tenth of the replace (the capture guard folds
  // several names per authorizer call, on every write).
  return HAS_UPPER_ASCII.test(name) ? name.replace(/[A-Z]+/g, (letters) => letters.toLowerCase()) : name;
}

const HAS_UPPER_ASCII = /[A-Z]/;

function isListedTable(name: string): boolean {
  const folded = foldName(name);
  if (folded === STAT1_TABLE) return true;
  return !folded.startsWith('sqlite_') && !folded.startsWith(CHANGETRAIL_TABLE_PREFIX);
}

function readTable(db: DatabaseSync, row: TableListRow, shadowNames: readonly string[]): TableSchema {
  const isVirtual = row.type === 'virtual';
  const columns = readColumns(db, row.name, isVirtual);
  const recorded = columns.filter((column) => column.hidden === HIDDEN_NONE);
  const isStat1 = foldName(row.name) === STAT1_TABLE;
  const pk = isStat1 ? STAT1_PK : recorded.map((column) => column.pk);
  const withoutRowid = row.wr === 1;
  const nullablePkColumns = isVirtual || isStat1 || withoutRowid || !hasPrimaryKeyIndex(db, row.name)
    ? []
    : recorded.filter((column) => column.pk > 0 && column.notnull === 0).map((column) => column.name);
  const reason = notCapturableReason(row.name, isVirtual, pk, shadowNames);
  return Object.freeze({
    name: row.name, columns: Object.freeze(recorded.map((column) => column.name)), pk: Object.freeze([...pk]),
    withoutRowid, isVirtual, isShadow: row.type === 'shadow', nullablePkColumns: Object.freeze(nullablePkColumns),
    capturable: reason === null, reason,
  });
}

function readColumns(db: DatabaseSync, table: string, isVirtual: boolean): ColumnRow[] {
  try {
    return db.prepare(`SELECT name, "notnull" AS "notnull", pk, hidden FROM pragma_table_xinfo(?, 'main') ORDER BY cid`)
      .all(table) as unknown as ColumnRow[];
  } catch (error) {
    // A virtual table whose module is not loaded on this connection cannot be described ("no such module");
    // it is reported as not capturable rather than failing the whole schema.
    if (isVirtual) return [];
    throw error;
  }
}

/**
 * True for a "keyed rowid table": an ordinary rowid table whose PRIMARY KEY is not the rowid (e.g.
 * `sku TEXT PRIMARY KEY`). Changesets name its rows by key only, so its rowids are recorded beside them
 * (journal/FORMAT.md §6.1). Shadow tables are excluded: their modules address rows by key.
 */
export function isKeyedRowidTable(db: DatabaseSync, table: TableSchema): boolean {
  if (!table.capturable || table.withoutRowid || table.isVirtual || table.isShadow || foldName(table.name).startsWith('sqlite_')) return false;
  return hasPrimaryKeyIndex(db, table.name);
}

/**
 * A rowid table has an index of origin 'pk' exactly when its PRIMARY KEY is not an alias of the rowid
 * (`INTEGER PRIMARY KEY DESC` is not an alias either: the index tells, the declared type does not).
 */
function hasPrimaryKeyIndex(db: DatabaseSync, table: string): boolean {
  return db.prepare(`SELECT 1 AS found FROM pragma_index_list(?, 'main') WHERE origin = 'pk'`).get(table) !== undefined;
}

function notCapturableReason(
  name: string, isVirtual: boolean, pk: readonly number[], shadowNames: readonly string[],
): NotCapturableReason | null {
  if (isVirtual) {
    // FTS3/4/5 and R*Tree keep every row in shadow tables, which sessions record; a module without shadow
    // tables keeps its rows where no session can see them.
    const prefix = `${foldName(name)}_`;
    return shadowNames.some((shadow) => shadow.startsWith(prefix)) ? null : 'virtual table';
  }
  return pk.some((ordinal) => ordinal > 0) ? null : 'no primary key';
}

/**
 * `SELECT 1 FROM main."t" WHERE "a" IS NULL OR ... LIMIT 1` for a table's nullable PK columns. The first
 * PK column is the leading column of the PRIMARY KEY index, so that test is an index seek; later PK
 * columns can need an index scan (declare them NOT NULL to avoid it).
 */
export function nullKeyQuery(table: TableSchema): string | null {
  if (table.nullablePkColumns.length === 0) return null;
  const tests = table.nullablePkColumns.map((column) => `${quoteIdentifier(column)} IS NULL`).join(' OR ');
  return `SELECT 1 AS found FROM ${mainTable(table.name)} WHERE ${tests} LIMIT 1`;
}
