/**
 * Suspending triggers during an exact apply: they are dropped inside the apply's transaction and created
 * again from their stored SQL before it ends, so no other connection ever sees them missing.
 *
 * Why: node:sqlite exposes no `SQLITE_DBCONFIG_ENABLE_TRIGGER`, and a changeset already holds every change
 * the source's triggers made (as indirect changes); letting them fire again would apply those twice.
 */
import type { DatabaseSync } from 'node:sqlite';
import { quoteIdentifier } from './sql-identifier.js';

/** A trigger taken out of the schema, with what is needed to create it again. */
export interface SuspendedTrigger {
  readonly schema: 'main' | 'temp';
  readonly name: string;
  readonly sql: string;
}

interface TriggerRow {
  schema: 'main' | 'temp';
  name: string;
  table: string;
  sql: string;
}

/** SQLite stores `CREATE TEMP TRIGGER x ...` as `CREATE TRIGGER x ...` in `sqlite_temp_schema`. */
const CREATE_TRIGGER_PREFIX = /^CREATE\s+TRIGGER\b/i;

/**
 * Drops the triggers (of `main`, and `temp` triggers of this connection) defined on any of `tables`, and
 * returns them in creation order. The writer's own TEMP triggers (`_changetrail*`, which record rowids
 * into TEMP tables, src/write/rowid-capture.ts) stay: they must see an undo's rows too. Triggers on other tables cannot fire: with foreign keys off, an apply
 * writes only the changeset's own tables.
 */
export function suspendTriggers(db: DatabaseSync, tables: readonly string[]): SuspendedTrigger[] {
  // NOCASE folds ASCII letters only, as SQLite's identifier comparison does. Filtering in SQL keeps the
  // cost at one scan of sqlite_schema (measured: 390 µs to return all 200 triggers of a 600-object schema).
  const rows = db.prepare(`SELECT 'main' AS schema, rowid AS position, name, tbl_name AS "table", sql FROM main.sqlite_schema
      WHERE type = 'trigger' AND tbl_name COLLATE NOCASE IN (SELECT value FROM json_each(?1))
    UNION ALL SELECT 'temp', rowid, name, tbl_name, sql FROM temp.sqlite_schema
      WHERE type = 'trigger' AND tbl_name COLLATE NOCASE IN (SELECT value FROM json_each(?1)) AND substr(name, 1, 20) <> '_changetrail_rowids_'
    ORDER BY schema, position`).all(JSON.stringify(tables)) as unknown as TriggerRow[];
  const suspended: SuspendedTrigger[] = [];
  for (const row of rows) {
    db.exec(`DROP TRIGGER ${row.schema}.${quoteIdentifier(row.name)}`);
    suspended.push({ schema: row.schema, name: row.name, sql: row.sql });
  }
  return suspended;
}

/**
 * Creates the suspended triggers again, in their original order, so that triggers on one table keep their
 * relative firing order. `prepare` compiles exactly one statement, so stored SQL cannot smuggle in another.
 */
export function restoreTriggers(db: DatabaseSync, suspended: readonly SuspendedTrigger[]): void {
  for (const trigger of suspended) {
    const sql = trigger.schema === 'temp' ? trigger.sql.replace(CREATE_TRIGGER_PREFIX, 'CREATE TEMP TRIGGER') : trigger.sql;
    db.prepare(sql).run();
  }
}
