/**
 * The state of the database at a point, rebuilt from the journal, and the row-level difference between
 * two such states. Used by `diff` when the entries between two points cannot simply be combined (schema
 * or resync entries among them) and to see what a resync entry changed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { RowValues, Value } from '../changeset/index.js';
import { replayJournal } from '../apply/replay.js';
import { columnRenames } from '../apply/schema-history.js';
import { foldName, isChangetrailTable, readSchema, type TableSchema } from '../apply/schema.js';
import { quoteIdentifier } from '../apply/sql-identifier.js';
import { journalAt, type AuditJournal } from './audit-journal.js';
import { formatRowKey, keyValuesOf } from './row-key.js';

/** One row that differs between two states. UPDATE lists only the columns that differ. */
export interface RowDifference {
  /** Table name as the later state spells it (or the earlier, for a table that is gone). */
  readonly table: string;
  readonly key: string;
  readonly pk: RowValues;
  readonly op: 'insert' | 'update' | 'delete';
  readonly before: RowValues | null;
  readonly after: RowValues | null;
}

/** Builds the state at `seq` (hash `hash`) in a temporary file, runs `fn` on it read-only, removes it. */
export function withStateAt<T>(journal: AuditJournal, seq: number, hash: Uint8Array, fn: (db: DatabaseSync) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'changetrail-audit-'));
  try {
    const target = join(dir, 'state.db');
    replayJournal(journalAt(journal, seq, hash), target);
    const db = new DatabaseSync(target, { readOnly: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Row-level differences from `before` to `after`, table by table (tables sessions record only). */
export function compareStates(before: DatabaseSync, after: DatabaseSync): RowDifference[] {
  const beforeTables = recordedTables(before);
  const afterTables = recordedTables(after);
  const names = [...new Set([...beforeTables.keys(), ...afterTables.keys()])].sort();
  const differences: RowDifference[] = [];
  for (const name of names) {
    const a = beforeTables.get(name);
    const b = afterTables.get(name);
    // Values of a renamed column are compared under its new name.
    const renames = a === undefined || b === undefined ? new Map<string, string>() : columnRenames(a.columns, b.columns);
    const rowsA = a === undefined ? new Map<string, KeyedRow>() : readRows(before, a, renames);
    const rowsB = b === undefined ? new Map<string, KeyedRow>() : readRows(after, b);
    const table = (b ?? a)!.name;
    for (const [key, row] of rowsA) {
      const other = rowsB.get(key);
      if (other === undefined) differences.push({ table, key, pk: row.pk, op: 'delete', before: row.values, after: null });
      else {
        const changed = changedColumns(row.values, other.values, row.pk);
        if (changed !== null) differences.push({ table, key, pk: other.pk, op: 'update', ...changed });
      }
    }
    for (const [key, row] of rowsB) {
      if (!rowsA.has(key)) differences.push({ table, key, pk: row.pk, op: 'insert', before: null, after: row.values });
    }
  }
  return differences;
}

interface KeyedRow {
  pk: RowValues;
  values: RowValues;
}

function recordedTables(db: DatabaseSync): Map<string, TableSchema> {
  const tables = new Map<string, TableSchema>();
  for (const table of readSchema(db).tables) {
    if (!table.capturable || table.isVirtual || isChangetrailTable(table.name)) continue;
    tables.set(foldName(table.name), table);
  }
  return tables;
}

function readRows(db: DatabaseSync, table: TableSchema, renames: ReadonlyMap<string, string> = new Map()): Map<string, KeyedRow> {
  const statement = db.prepare(`SELECT ${table.columns.map(quoteIdentifier).join(', ')} FROM main.${quoteIdentifier(table.name)}`);
  statement.setReadBigInts(true);
  statement.setReturnArrays(true);
  const rows = new Map<string, KeyedRow>();
  for (const fields of statement.iterate() as Iterable<Value[]>) {
    const values: RowValues = {};
    const pk: RowValues = {};
    table.columns.forEach((column, i) => {
      const name = renames.get(column) ?? column;
      define(values, name, fields[i]!);
      if (table.pk[i]! > 0) define(pk, name, fields[i]!);
    });
    const keyValues = keyValuesOf(fields, table.pk);
    // Sessions skip rows whose key holds NULL: they have no identity in the journal.
    if (keyValues.some((v) => v === null)) continue;
    rows.set(formatRowKey(keyValues), { pk, values });
  }
  return rows;
}

function changedColumns(a: RowValues, b: RowValues, pk: RowValues): { before: RowValues; after: RowValues } | null {
  const before: RowValues = {};
  const after: RowValues = {};
  let any = false;
  for (const column of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (Object.hasOwn(pk, column)) continue;
    const inA = Object.hasOwn(a, column);
    const inB = Object.hasOwn(b, column);
    if (inA && inB && valuesEqual(a[column]!, b[column]!)) continue;
    any = true;
    if (inA) define(before, column, a[column]!);
    if (inB) define(after, column, b[column]!);
  }
  return any ? { before, after } : null;
}

/** Equal SQL values: same storage class and the same value (BLOBs byte for byte). */
export function valuesEqual(a: Value, b: Value): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && 'bytes' in a && 'bytes' in b) return valuesEqual(a.bytes, b.bytes);
  return typeof a === typeof b && a === b;
}

function define(values: RowValues, column: string, value: Value): void {
  Object.defineProperty(values, column, { value, enumerable: true, writable: true, configurable: true });
}
