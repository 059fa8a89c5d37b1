/**
 * Reproducing the rowids an entry records for keyed rowid tables (journal/REPLAY.md "Rowids"): before the
 * changeset is applied, every row the entry says existed must have the recorded `before` rowid; after it,
 * every row that exists afterwards is moved to its `after` rowid. Runs inside the exact apply's savepoint,
 * with the tables' triggers suspended, so moving a row fires nothing.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { SqlText, valueToJson, type Value } from '../changeset/index.js';
import type { JsonFieldValue } from '../changeset/index.js';
import type { TableRowids } from '../journal/rowids.js';
import { foldName } from './schema.js';
import { mainTable, quoteIdentifier } from './sql-identifier.js';

/** A rowid record matched to the target's table. */
export interface TargetRowids {
  /** The name as spelled in the target's schema. */
  readonly name: string;
  readonly keyColumns: readonly string[];
  readonly rows: TableRowids['rows'];
}

/**
 * Matches each table of the record with the target: it must be a rowid table whose PRIMARY KEY columns
 * have the recorded ordinals.
 *
 * @throws ChangetrailError CHANGESET_CONFLICT ('NO_SUCH_TABLE' | 'PRIMARY_KEY').
 */
export function resolveRowidTables(db: DatabaseSync, tables: readonly TableRowids[], seq: number | undefined): TargetRowids[] {
  const list = db.prepare(`SELECT name, type, wr FROM pragma_table_list(?) WHERE schema = 'main'`);
  const columns = db.prepare(`SELECT name, pk FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid`);
  return tables.map((table) => {
    const listed = list.get(table.table) as { name: string; type: string; wr: number } | undefined;
    if (listed === undefined || listed.type !== 'table') throw rowidConflict(table.table, 'NO_SUCH_TABLE', seq);
    const keys = (columns.all(listed.name) as { name: string; pk: number }[]).filter((column) => column.pk > 0);
    const ordinals = keys.map((column) => column.pk);
    if (listed.wr === 1 || ordinals.length !== table.keyOrdinals.length || ordinals.some((o, i) => o !== table.keyOrdinals[i])) {
      throw rowidConflict(table.table, 'PRIMARY_KEY', seq);
    }
    return { name: listed.name, keyColumns: keys.map((column) => column.name), rows: table.rows };
  });
}

/**
 * Checks that every row the record says existed before the entry has its recorded rowid on the target.
 *
 * @throws ChangetrailError CHANGESET_CONFLICT 'ROWID' naming the table and the row's key.
 */
export function checkRowidsBefore(db: DatabaseSync, tables: readonly TargetRowids[], seq: number | undefined): void {
  for (const table of tables) {
    const lookup = new RowidLookup(db, table);
    for (const row of table.rows) {
      if (row.before === null) continue;
      const current = lookup.rowidOf(row.key);
      if (current !== null && current !== row.before) throw rowidConflict(table.name, 'ROWID', seq, keyJson(table, row.key));
    }
  }
}

/**
 * What to do when a recorded `after` rowid is held by a row the record does not move: 'exact' (replay)
 * refuses, since the target diverged from the source; 'where-free' (undo, which writes a new entry)
 * leaves the row at the rowid the apply gave it.
 */
export type RowidMode = 'exact' | 'where-free';

/**
 * Moves every row that exists after the entry to its recorded rowid: first all rows that must move to
 * free rowids below the table's minimum, then each to its place, so that rows can swap rowids.
 *
 * @throws ChangetrailError CHANGESET_CONFLICT 'ROWID' if a recorded row is missing, 'ROWID_TAKEN' (mode
 *   'exact') if its rowid is held by a row the record does not move.
 */
export function applyRowidsAfter(db: DatabaseSync, tables: readonly TargetRowids[], seq: number | undefined, mode: RowidMode = 'exact'): void {
  for (const table of tables) {
    const lookup = new RowidLookup(db, table);
    const moves: { key: readonly Value[]; from: bigint; to: bigint }[] = [];
    for (const row of table.rows) {
      if (row.after === null) continue;
      const current = lookup.rowidOf(row.key);
      if (current === null) throw rowidConflict(table.name, 'ROWID', seq, keyJson(table, row.key));
      if (current !== row.after) moves.push({ key: row.key, from: current, to: row.after });
    }
    if (moves.length === 0) continue;
    const target = mainTable(table.name);
    const minimum = db.prepare(`SELECT min(rowid) AS low FROM ${target}`);
    minimum.setReadBigInts(true);
    const low = (minimum.get() as { low: bigint | null }).low ?? 0n;
    const base = (low < 0n ? low : 0n) - 1n;
    const move = db.prepare(`UPDATE ${target} SET rowid = ? WHERE rowid = ?`);
    const maximum = db.prepare(`SELECT max(rowid) AS high FROM ${target}`);
    maximum.setReadBigInts(true);
    const taken = db.prepare(`SELECT 1 AS found FROM ${target} WHERE rowid = ?`);
    moves.forEach((m, index) => move.run(base - BigInt(index), m.from));
    moves.forEach((m, index) => {
      const free = taken.get(m.to) === undefined;
      if (!free && mode === 'exact') throw rowidConflict(table.name, 'ROWID_TAKEN', seq, keyJson(table, m.key));
      // Not free (undo only): a fresh rowid, as SQLite would pick for a new row (max + 1).
      move.run(free ? m.to : (maximum.get() as { high: bigint | null }).high! + 1n, base - BigInt(index));
    });
  }
}

/** `SELECT rowid FROM t WHERE k1 = ? AND ...`, with TEXT that is not valid UTF-8 bound as bytes and cast. */
class RowidLookup {
  readonly #db: DatabaseSync;
  readonly #table: TargetRowids;
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync, table: TargetRowids) {
    this.#db = db;
    this.#table = table;
  }

  rowidOf(key: readonly Value[]): bigint | null {
    const placeholders = key.map((value) => (value instanceof SqlText ? 'CAST(? AS TEXT)' : '?'));
    const sql = `SELECT rowid AS id FROM ${mainTable(this.#table.name)} WHERE ${this.#table.keyColumns.map((c, i) => `${quoteIdentifier(c)} = ${placeholders[i]}`).join(' AND ')}`;
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      statement.setReadBigInts(true);
      this.#statements.set(sql, statement);
    }
    const row = statement.get(...key.map((value) => (value instanceof SqlText ? value.bytes : value))) as { id: bigint } | undefined;
    return row === undefined ? null : row.id;
  }
}

/** The key as `{ column: value }`, JSON-friendly, for error details. */
export function keyJson(table: { keyColumns: readonly string[] }, key: readonly Value[]): Record<string, JsonFieldValue> {
  return Object.fromEntries(table.keyColumns.map((column, index) => [column, valueToJson(key[index] ?? null)]));
}

function rowidConflict(
  table: string, conflict: 'NO_SUCH_TABLE' | 'PRIMARY_KEY' | 'ROWID' | 'ROWID_TAKEN', seq: number | undefined, key?: Record<string, JsonFieldValue>,
): ChangetrailError<'CHANGESET_CONFLICT'> {
  const what = {
    ROWID: `the row ${JSON.stringify(key)} does not have the rowid the source gave it`,
    ROWID_TAKEN: `the rowid the source gave the row ${JSON.stringify(key)} is held by another row`,
    NO_SUCH_TABLE: 'the target has no such rowid table',
    PRIMARY_KEY: 'the target\'s PRIMARY KEY differs from the recorded one',
  }[conflict];
  return new ChangetrailError('CHANGESET_CONFLICT', `apply rowids${seq === undefined ? '' : ` of entry ${seq}`} to "${table}": ${what}`, {
    table, conflict, ...(seq === undefined ? {} : { seq }), ...(key === undefined ? {} : { key }),
  });
}

/** Folded names of the record's tables (their triggers are suspended with the changeset's). */
export function rowidTableNames(tables: readonly TargetRowids[]): string[] {
  return tables.map((table) => foldName(table.name));
}
