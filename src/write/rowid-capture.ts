/**
 * Recording the rowids that a changeset cannot carry: for rowid tables whose PRIMARY KEY is not the rowid
 * ("keyed rowid tables", e.g. `p(sku TEXT PRIMARY KEY)`), a changeset names rows by key only, so a replay
 * or an undo would give re-inserted rows fresh rowids and break whatever is keyed by rowid (an FTS5
 * external-content index with `content_rowid='rowid'`). The writer records, per entry, every row of such a
 * table whose rowid the entry gave, took away or changed (journal/FORMAT.md §6.1).
 *
 * How: TEMP triggers on this connection (never in the user's schema; other connections do not see them)
 * log, for each key, the rowid the row had when the write first touched it, into a TEMP table:
 *
 * - BEFORE DELETE / BEFORE UPDATE: `old.rowid` under the old key (explicit deletes, FK cascades, key
 *   changes, `SET rowid = ...`);
 * - BEFORE INSERT / BEFORE UPDATE: the rows the new values could replace (`OR REPLACE` deletes them without
 *   firing DELETE triggers): one indexed lookup per unique key of the table (PRIMARY KEY, plain-column
 *   UNIQUE indexes, the rowid);
 * - AFTER INSERT / AFTER UPDATE: the new key, as "did not exist before" if nothing was logged for it yet.
 *
 * The first entry per key wins (a NOT EXISTS test against a unique index with the table's key collations), so
 * it is the rowid at the start of the write, or NULL for a row the write created. After the body, the
 * rowid each logged key has now is looked up (an index seek): `after`. Rows whose rowid did not change are
 * dropped. Unique indexes on expressions are not looked up: a REPLACE that deletes a row through one is
 * recorded as if that row had been created by the write (its `before` is lost; documented in REPLAY.md).
 *
 * The triggers are created once per schema version (TEMP DDL; `main`'s schema_version does not change)
 * and dropped before migrations, whose DML replay reproduces by re-running the script.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { createSchemaReader, foldName, isKeyedRowidTable, type DatabaseSchema, type TableSchema } from '../apply/schema.js';
import { mainTable, quoteIdentifier } from '../apply/sql-identifier.js';
import { SqlText, type Value } from '../changeset/index.js';
import type { TableRowids } from '../journal/rowids.js';

/** Prefix of the TEMP objects; the exact apply leaves triggers with it in place (they write TEMP only). */
export const ROWID_CAPTURE_PREFIX = '_changetrail_rowids_';

interface KeyColumn {
  readonly name: string;
  readonly ordinal: number;
  readonly collation: string;
}

interface CapturedTable {
  readonly table: string;
  readonly keyColumns: readonly KeyColumn[];
  readonly log: string;
  readonly clear: StatementSync;
  readonly collect: StatementSync;
}

export class RowidCapture {
  readonly #db: DatabaseSync;
  readonly #readSchema: () => DatabaseSchema;
  #schemaVersion: number | null = null;
  /** `PRAGMA temp.schema_version` right after installing: any other change to TEMP objects moves it. */
  #tempSchemaVersion: number | null = null;
  #tables: CapturedTable[] = [];
  #tempSchemaVersionStatement: StatementSync | null = null;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#readSchema = createSchemaReader(db);
  }

  /** Before a write body: triggers for the current schema, logs emptied. */
  begin(): void {
    const schema = this.#readSchema();
    if (schema.schemaVersion !== this.#schemaVersion || !this.#installed()) this.#install(schema);
    for (const table of this.#tables) table.clear.run();
  }

  /** The rowid changes the body made (call after the body, inside its transaction). */
  collect(): TableRowids[] {
    const result: TableRowids[] = [];
    for (const table of this.#tables) {
      const keyCount = table.keyColumns.length;
      const rows = (table.collect.all() as unknown as Value[][]).map((row) => ({
        key: row.slice(0, keyCount).map((value, i) => exactText(value, row[keyCount + 2 + i] as Uint8Array | null)),
        before: row[keyCount] as bigint | null, after: row[keyCount + 1] as bigint | null,
      }));
      if (rows.length > 0) result.push({ table: table.table, keyOrdinals: table.keyColumns.map((c) => c.ordinal), rows });
    }
    return result;
  }

  /** Drops the TEMP triggers and tables (before a migration; they vanish with the connection anyway). */
  suspend(): void {
    // Everything with the prefix: a rolled-back transaction may have undone a drop or a creation.
    const existing = this.#db.prepare(`SELECT type, name FROM temp.sqlite_schema WHERE type IN ('table', 'trigger') AND substr(name, 1, ?) = ?`)
      .all(ROWID_CAPTURE_PREFIX.length, ROWID_CAPTURE_PREFIX) as { type: string; name: string }[];
    for (const object of existing) this.#db.exec(`DROP ${object.type === 'table' ? 'TABLE' : 'TRIGGER'} IF EXISTS temp.${quoteIdentifier(object.name)}`);
    this.#tables = [];
    this.#schemaVersion = null;
    this.#tempSchemaVersion = null;
  }

  /**
   * Our TEMP objects are as installed unless the TEMP schema changed since: the user (through
   * `trail.database`) or a rolled-back transaction may have dropped or undone them.
   */
  #installed(): boolean {
    return this.#tempSchemaVersion === this.#readTempSchemaVersion();
  }

  #readTempSchemaVersion(): number {
    // Prepared once: a statement prepared per write also lengthens the capture guard's re-install, which walks every live statement.
    this.#tempSchemaVersionStatement ??= this.#db.prepare('PRAGMA temp.schema_version');
    return Number((this.#tempSchemaVersionStatement.get() as { schema_version: number }).schema_version);
  }

  #install(schema: DatabaseSchema): void {
    this.suspend();
    schema.tables.filter((table) => isKeyedRowidTable(this.#db, table)).forEach((table, index) => {
      this.#tables.push(this.#installTable(table, `${ROWID_CAPTURE_PREFIX}${index}`));
    });
    this.#schemaVersion = schema.schemaVersion;
    this.#tempSchemaVersion = this.#readTempSchemaVersion();
  }

  #installTable(table: TableSchema, log: string): CapturedTable {
    const keyColumns = this.#keyColumns(table);
    const keys = keyColumns.map((column) => quoteIdentifier(column.name));
    const logName = quoteIdentifier(log);
    const target = mainTable(table.name);
    // Not `INSERT OR IGNORE`: the conflict policy of the statement that fires a trigger overrides the
    // trigger's own (an outer OR REPLACE would make the last observation win), so test for the key instead.
    const absent = (row: string) => `NOT EXISTS (SELECT 1 FROM ${logName} AS l WHERE ${keys.map((k) => `l.${k} = ${row}.${k}`).join(' AND ')})`;
    const column = (name: string) => (name === 'rowid' ? 'rowid' : quoteIdentifier(name));
    // One statement for all unique keys (SQLite's OR optimisation seeks each index): a trigger statement
    // costs more than the seek itself.
    const lookups = `INSERT INTO ${logName} SELECT ${keys.map((k) => `t.${k}`).join(', ')}, t.rowid FROM ${target} AS t `
      + `WHERE (${this.#uniqueSets(table).map((set) => `(${set.map((name) => `t.${column(name)} = new.${column(name)}`).join(' AND ')})`).join(' OR ')}) AND ${absent('t')};`;
    const logRow = (row: 'old' | 'new', rowid: string) => `INSERT INTO ${logName} SELECT ${keys.map((k) => `${row}.${k}`).join(', ')}, ${rowid} WHERE ${absent(row)};`;
    // An UPDATE that changes neither the rowid, the key nor a unique column cannot move or replace a row:
    // skip it (an update of other columns then costs one WHEN test per trigger).
    const sets = this.#uniqueSets(table);
    const watched = [...new Set(['rowid', ...keyColumns.map((c) => c.name), ...sets.flat()])];
    const changes = `WHEN ${watched.map((name) => `old.${column(name)} IS NOT new.${column(name)}`).join(' OR ')}`;
    const statements = [
      `CREATE TEMP TABLE ${logName} (${keyColumns.map((c, i) => `${keys[i]} COLLATE ${quoteIdentifier(c.collation)}`).join(', ')}, "before" INTEGER)`,
      `CREATE UNIQUE INDEX temp.${quoteIdentifier(`${log}_key`)} ON ${logName} (${keys.join(', ')})`,
      `CREATE TEMP TRIGGER ${quoteIdentifier(`${log}_bd`)} BEFORE DELETE ON ${target} BEGIN ${logRow('old', 'old.rowid')} END`,
      `CREATE TEMP TRIGGER ${quoteIdentifier(`${log}_bu`)} BEFORE UPDATE ON ${target} ${changes} BEGIN ${logRow('old', 'old.rowid')}\n${lookups} END`,
      `CREATE TEMP TRIGGER ${quoteIdentifier(`${log}_bi`)} BEFORE INSERT ON ${target} BEGIN ${lookups} END`,
      `CREATE TEMP TRIGGER ${quoteIdentifier(`${log}_ai`)} AFTER INSERT ON ${target} BEGIN ${logRow('new', 'NULL')} END`,
      `CREATE TEMP TRIGGER ${quoteIdentifier(`${log}_au`)} AFTER UPDATE ON ${target} ${changes} BEGIN ${logRow('new', 'NULL')} END`,
    ];
    for (const sql of statements) this.#db.exec(sql);
    const match = keys.map((k) => `t.${k} = l.${k}`).join(' AND ');
    // Rows whose key is NULL are left out: sessions do not record them (the capture guard refuses the
    // write). TEXT keys also come as bytes, for text that is not valid UTF-8 (SqlText).
    const collect = this.#db.prepare(`SELECT * FROM (SELECT ${keys.map((k) => `l.${k}`).join(', ')}, l."before" AS "before",
      (SELECT t.rowid FROM ${target} AS t WHERE ${match}) AS "after",
      ${keys.map((k) => `CASE typeof(l.${k}) WHEN 'text' THEN CAST(l.${k} AS BLOB) END`).join(', ')}
      FROM temp.${logName} AS l WHERE ${keys.map((k) => `l.${k} IS NOT NULL`).join(' AND ')}) WHERE "before" IS NOT "after"`);
    collect.setReadBigInts(true);
    collect.setReturnArrays(true);
    return { table: table.name, keyColumns, log, clear: this.#db.prepare(`DELETE FROM temp.${logName}`), collect };
  }

  /** The PRIMARY KEY columns in table order, with their pk ordinals and the key index's collations. */
  #keyColumns(table: TableSchema): KeyColumn[] {
    const index = this.#db.prepare(`SELECT name FROM pragma_index_list(?, 'main') WHERE origin = 'pk'`).get(table.name) as { name: string };
    const collations = new Map((this.#db.prepare(`SELECT name, coll FROM pragma_index_xinfo(?, 'main') WHERE key = 1`).all(index.name) as { name: string; coll: string }[])
      .map((row) => [foldName(row.name), row.coll]));
    return table.columns.flatMap((name, column) => {
      const ordinal = table.pk[column] ?? 0;
      return ordinal > 0 ? [{ name, ordinal, collation: collations.get(foldName(name)) ?? 'BINARY' }] : [];
    });
  }

  /** Column sets whose equality makes an INSERT/UPDATE OR REPLACE delete a row: the rowid and every unique index on plain columns. */
  #uniqueSets(table: TableSchema): string[][] {
    const indexes = this.#db.prepare(`SELECT name FROM pragma_index_list(?, 'main') WHERE "unique" = 1`).all(table.name) as { name: string }[];
    const sets: string[][] = [['rowid']];
    for (const { name } of indexes) {
      const columns = this.#db.prepare(`SELECT cid, name FROM pragma_index_xinfo(?, 'main') WHERE key = 1 ORDER BY seqno`).all(name) as { cid: number; name: string | null }[];
      if (columns.every((column) => column.cid >= 0 && column.name !== null)) sets.push(columns.map((column) => column.name!));
    }
    return sets;
  }
}

/** A TEXT value whose bytes are not the UTF-8 of the decoded string (invalid UTF-8) keeps its bytes. */
function exactText(value: Value, bytes: Uint8Array | null): Value {
  if (typeof value !== 'string' || bytes === null || Buffer.from(value, 'utf8').equals(bytes)) return value;
  return new SqlText(bytes);
}
