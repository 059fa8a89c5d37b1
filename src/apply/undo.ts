/**
 * Undo at the level of the user's rows (journal/REPLAY.md "Undo"): the inverse of an entry is applied
 * exactly when nothing changed since; when a later entry changed other rows of a table that a virtual
 * table indexes, the index's shadow tables (shared structure, not rows) are not reversed byte for byte but
 * brought up to date with the restored rows through the virtual table itself. An undo is refused only
 * when a row being restored differs from what the entry left, and the refusal names the later entry that
 * changed it and the row's key.
 */
import type { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import {
  changesetToRows, decodeChangeset, filterChangeset, invertChangeset, rowChangeToJson, SqlText,
  type RowChangeJson, type Value,
} from '../changeset/index.js';
import { applyChangesetExactlyInTransaction, type ApplyExactlyOptions } from './apply-entry.js';
import { readChangesetTables } from './changeset-tables.js';
import { keyJson } from './rowid-apply.js';
import { findTable, foldName, readSchema, toChangesetSchema, type DatabaseSchema } from './schema.js';
import { mainTable, quoteIdentifier } from './sql-identifier.js';
import { readVirtualTables, type VirtualTable } from './virtual-tables.js';

/** The entry to undo. */
export interface UndoSource {
  readonly seq: number;
  readonly changeset: Uint8Array;
  readonly rowids?: Uint8Array;
}

/** An entry after the one being undone (to name the one that changed a row being restored). */
export interface LaterEntry {
  readonly seq: number;
  readonly changeset: Uint8Array;
  readonly rowids?: Uint8Array;
}

/** How undo treated a virtual table whose shadow tables the entry wrote. */
export type DerivedTreatment =
  /** Its shadow tables were reversed exactly (nothing wrote them since). */
  | 'exact'
  /** FTS5 external content: the restored rows were removed from and added to the index through the table. */
  | 'reindexed'
  /** Regular FTS5: its rows (the `_content` shadow table) were restored through the table. */
  | 'through-table';

/** What an undo did or would do. */
export interface UndoReport {
  readonly seq: number;
  /** The row changes of the undo on ordinary tables (direct and indirect), as JSON-friendly values. */
  readonly restores: RowChangeJson[];
  /** Virtual tables whose index the undo maintained, and how (null: not known, the undo was refused). */
  readonly derived: { table: string; module: string; treatment: DerivedTreatment | null }[];
}

/**
 * What undoing `source` would restore, without applying anything (rows from the inverse changeset): for
 * a preview of an undo that would be refused.
 */
export function describeUndo(db: DatabaseSync, source: UndoSource): UndoReport {
  const schema = readSchema(db);
  return report(schema, source, shadowOwners(db, schema, source.changeset), () => null);
}

/** A row being restored that a later entry changed. */
export interface UndoConflict {
  readonly table: string;
  readonly key: NonNullable<ChangetrailError<'CHANGESET_CONFLICT'>['details']['key']>;
  readonly laterSeq: number;
}

const SAVEPOINT = 'changetrail_undo';

/**
 * Undoes `source` inside the caller's transaction (foreign keys off, capture guard in 'internal').
 *
 * @throws ChangetrailError CHANGESET_CONFLICT ('ROW_CHANGED_LATER' with `laterSeq` and `key` when a later
 *   entry changed a row being restored; the apply's own conflicts otherwise), UNDO_UNSUPPORTED (a later
 *   migration changed the shape of a table the entry wrote: reason 'schema changed since'; an index
 *   that undo cannot maintain row by row: contentless FTS5, FTS3/4, R*Tree, other modules).
 */
export function undoEntryInTransaction(db: DatabaseSync, source: UndoSource, later: () => Iterable<LaterEntry>): UndoReport {
  const options: ApplyExactlyOptions = { invert: true, checkForeignKeys: true, seq: source.seq, ...(source.rowids === undefined ? {} : { rowids: source.rowids }) };
  const schema = readSchema(db);
  const owners = shadowOwners(db, schema, source.changeset);
  try {
    applyChangesetExactlyInTransaction(db, source.changeset, options);
    return report(schema, source, owners, () => 'exact');
  } catch (error) {
    if (!ChangetrailError.is(error, 'CHANGESET_CONFLICT')) throw error;
    const table = error.details.table;
    // A rowid that a later entry gave to another row: restore the row at a new rowid (below), and let
    // indexes follow the rowid it gets.
    if (isShapeConflict(error.details.conflict)) throw schemaChangedSince(source, error);
    const byRows = error.details.conflict === 'ROWID_TAKEN' || (table !== undefined && owners.has(foldName(table)));
    if (!byRows) throw blame(schema, source, later, error);
  }
  db.exec(`SAVEPOINT ${SAVEPOINT}`);
  try {
    const result = undoByRows(db, schema, source, later, owners, options);
    db.exec(`RELEASE ${SAVEPOINT}`);
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec(`ROLLBACK TO ${SAVEPOINT}; RELEASE ${SAVEPOINT}`);
    throw error;
  }
}

/**
 * Every row being restored that a later entry changed (oldest first, one per row), whatever the undo would
 * then find: for a preview.
 */
export function findLaterChanges(db: DatabaseSync, source: UndoSource, later: () => Iterable<LaterEntry>): UndoConflict[] {
  const schema = readSchema(db);
  const owners = shadowOwners(db, schema, source.changeset);
  const restored = restoredKeys(source, (table) => {
    const owner = owners.get(foldName(table));
    return owner === undefined || (owner.kind === 'fts5-regular' && foldName(table) === foldName(`${owner.name}_content`));
  });
  const found: UndoConflict[] = [];
  for (const entry of later()) {
    for (const change of keysOfEntry(entry)) {
      const keys = restored.get(foldName(change.table));
      const canonical = canonicalKey(change.key);
      if (keys === undefined || !keys.has(canonical)) continue;
      keys.delete(canonical);
      found.push({ table: change.table, key: namedKey(schema, change.table, change.pk, change.key), laterSeq: entry.seq });
    }
  }
  return found;
}

function undoByRows(
  db: DatabaseSync, schema: DatabaseSchema, source: UndoSource, later: () => Iterable<LaterEntry>,
  owners: Map<string, VirtualTable>, options: ApplyExactlyOptions,
): UndoReport {
  const indexes = [...new Map([...owners.values()].map((v) => [foldName(v.name), v])).values()];
  for (const index of indexes) checkSupported(index, source);
  const rowsOnly = filterChangeset(source.changeset, { tables: (name) => !owners.has(foldName(name)) });
  // An index whose content rows the entry did not change (an UPDATE that wrote equal values still rewrites
  // the index through the user's triggers; a 'rebuild') needs nothing: it matched its rows before and after.
  const external = indexes.filter((index) => index.kind === 'fts5-external');
  const before = external.map((index) => readIndexedRows(db, index, source.changeset));
  try {
    applyChangesetExactlyInTransaction(db, rowsOnly, { ...options, rowidMode: 'where-free' });
  } catch (error) {
    if (ChangetrailError.is(error, 'CHANGESET_CONFLICT')) throw blame(schema, source, later, error);
    throw error;
  }
  external.forEach((index, i) => reindex(db, index, before[i]!, readIndexedRows(db, index, source.changeset)));
  const inverse = invertChangeset(source.changeset);
  for (const index of indexes.filter((v) => v.kind === 'fts5-regular')) restoreThroughTable(db, schema, index, inverse, source, later);
  return report(schema, { ...source, changeset: rowsOnly }, owners, (index) => (index.kind === 'fts5-external' ? 'reindexed' : 'through-table'));
}

function checkSupported(index: VirtualTable, source: UndoSource): void {
  if (index.kind === 'fts5-external' || index.kind === 'fts5-regular') return;
  const what = index.kind === 'fts5-contentless' ? 'a contentless FTS5 index keeps no values to remove from it' : `${index.module} keeps its rows in shared shadow-table structure`;
  throw new ChangetrailError('UNDO_UNSUPPORTED', `undo: entry ${source.seq} changed "${index.name}" and later entries changed the same index; `
    + `${what}, so undo cannot restore only this entry's rows. Undo the later entries first (newest first), or make the change again as a new write.`, {
    seq: source.seq, kind: 'write', table: index.name, reason: index.kind === 'other' ? index.module : index.kind,
  });
}

/** Shadow table (folded) → the virtual table it belongs to, for the shadow tables the changeset writes. */
function shadowOwners(db: DatabaseSync, schema: DatabaseSchema, changeset: Uint8Array): Map<string, VirtualTable> {
  const shadows = readChangesetTables(changeset).filter((t) => t.changeCount > 0 && findTable(schema, t.name)?.isShadow === true);
  const owners = new Map<string, VirtualTable>();
  if (shadows.length === 0) return owners;
  const virtuals = readVirtualTables(db).sort((a, b) => b.name.length - a.name.length);
  for (const shadow of shadows) {
    const owner = virtuals.find((v) => foldName(shadow.name).startsWith(`${foldName(v.name)}_`));
    if (owner !== undefined) owners.set(foldName(shadow.name), owner);
  }
  return owners;
}

interface IndexedRow {
  readonly rowid: bigint;
  readonly values: unknown[];
}

/** The rows of an external-content index's content table that the changeset touches, as they are now. */
function readIndexedRows(db: DatabaseSync, index: VirtualTable, changeset: Uint8Array): IndexedRow[] {
  const content = index.content!;
  const keyed = [...keysOfChanges(changeset)].filter((change) => foldName(change.table) === foldName(content));
  if (keyed.length === 0) return [];
  const table = db.prepare(`SELECT name FROM pragma_table_xinfo(?, 'main') WHERE pk > 0 ORDER BY cid`).all(content) as { name: string }[];
  const where = table.map((column) => `${quoteIdentifier(column.name)} = ?`).join(' AND ');
  const select = db.prepare(`SELECT ${quoteIdentifier(index.contentRowid)} AS r, ${index.columns.map(quoteIdentifier).join(', ')} FROM ${mainTable(content)} WHERE ${where}`);
  select.setReadBigInts(true);
  select.setReturnArrays(true);
  const rows = new Map<bigint, IndexedRow>();
  for (const change of keyed) {
    const row = select.get(...change.key.map(bindable)) as unknown[] | undefined;
    if (row !== undefined) rows.set(row[0] as bigint, { rowid: row[0] as bigint, values: row.slice(1) });
  }
  return [...rows.values()];
}

/** Removes the rows' old values from an external-content FTS5 index and adds their new ones ('delete' command, then INSERT). */
function reindex(db: DatabaseSync, index: VirtualTable, before: readonly IndexedRow[], after: readonly IndexedRow[]): void {
  const name = quoteIdentifier(index.name);
  const columns = index.columns.map(quoteIdentifier).join(', ');
  const marks = index.columns.map(() => '?').join(', ');
  const remove = db.prepare(`INSERT INTO ${mainTable(index.name)}(${name}, rowid, ${columns}) VALUES ('delete', ?, ${marks})`);
  const add = db.prepare(`INSERT INTO ${mainTable(index.name)}(rowid, ${columns}) VALUES (?, ${marks})`);
  for (const row of before) remove.run(row.rowid, ...(row.values as never[]));
  for (const row of after) add.run(row.rowid, ...(row.values as never[]));
}

/**
 * Regular FTS5: its rows are the `<name>_content` shadow table (id, c0, c1, ...). The inverse's changes of
 * that table are made through the virtual table, after checking each row is as the entry left it.
 */
function restoreThroughTable(
  db: DatabaseSync, schema: DatabaseSchema, index: VirtualTable, inverse: Uint8Array, source: UndoSource, later: () => Iterable<LaterEntry>,
): void {
  const contentName = `${index.name}_content`;
  const groups = decodeChangeset(inverse).tables.filter((group) => foldName(group.name) === foldName(contentName));
  const target = mainTable(index.name);
  const columns = index.columns.map(quoteIdentifier);
  const stored = index.columns.map((_, i) => `c${i}`);
  for (const group of groups) {
    for (const change of group.changes) {
      const id = (change.old ?? change.new)![0] as bigint;
      const conflict = () => blame(schema, source, later, new ChangetrailError('CHANGESET_CONFLICT',
        `undo entry ${source.seq}: row ${String(id)} of "${index.name}" differs from what the entry left`, { table: contentName, conflict: 'DATA', seq: source.seq }));
      if (change.op === 'insert') {
        if (db.prepare(`SELECT 1 AS found FROM ${mainTable(contentName)} WHERE id = ?`).get(id) !== undefined) throw conflict();
        db.prepare(`INSERT INTO ${target}(rowid, ${columns.join(', ')}) VALUES (?, ${columns.map(() => '?').join(', ')})`).run(id, ...change.new!.slice(1).map((v) => bindable(v ?? null)));
        continue;
      }
      const old = change.old!;
      const tests = stored.map((column, i) => (old[i + 1] === undefined ? null : `${column} IS ?`)).filter((t) => t !== null);
      const values = old.slice(1).filter((v) => v !== undefined).map((v) => bindable(v!));
      const present = db.prepare(`SELECT 1 AS found FROM ${mainTable(contentName)} WHERE id = ?${tests.map((t) => ` AND ${t}`).join('')}`).get(id, ...values);
      if (present === undefined) throw conflict();
      if (change.op === 'delete') {
        db.prepare(`DELETE FROM ${target} WHERE rowid = ?`).run(id);
      } else {
        const sets = change.new!.slice(1).flatMap((v, i) => (v === undefined ? [] : [{ column: columns[i]!, value: bindable(v) }]));
        if (sets.length > 0) db.prepare(`UPDATE ${target} SET ${sets.map((s) => `${s.column} = ?`).join(', ')} WHERE rowid = ?`).run(...sets.map((s) => s.value), id);
      }
    }
  }
}

/** Turns a conflict into ROW_CHANGED_LATER when a later entry changed one of the entry's rows of that table. */
/** The live table no longer has the entry's shape: only a later migration (or resync) can have done that. */
function isShapeConflict(conflict: string | undefined): boolean {
  return conflict === 'NO_SUCH_TABLE' || conflict === 'COLUMN_COUNT' || conflict === 'PRIMARY_KEY';
}

function schemaChangedSince(source: UndoSource, error: ChangetrailError<'CHANGESET_CONFLICT'>): ChangetrailError<'UNDO_UNSUPPORTED'> {
  const table = error.details.table ?? '?';
  return new ChangetrailError('UNDO_UNSUPPORTED', `undo: entry ${source.seq} changed "${table}", whose schema a later entry changed `
    + `(${error.details.conflict}); write the change you want as a new entry`, {
    seq: source.seq, kind: 'write', table, reason: 'schema changed since',
  }, { cause: error });
}

function blame(schema: DatabaseSchema, source: UndoSource, later: () => Iterable<LaterEntry>, error: ChangetrailError<'CHANGESET_CONFLICT'>): ChangetrailError {
  const table = error.details.table;
  if (table === undefined) return error;
  const keys = restoredKeys(source, (t) => foldName(t) === foldName(table)).get(foldName(table));
  if (keys === undefined) return error;
  for (const entry of later()) {
    for (const change of keysOfEntry(entry)) {
      if (foldName(change.table) !== foldName(table) || !keys.has(canonicalKey(change.key))) continue;
      const key = namedKey(schema, change.table, change.pk, change.key);
      return new ChangetrailError('CHANGESET_CONFLICT', `undo entry ${source.seq}: entry ${entry.seq} changed row ${JSON.stringify(key)} of "${change.table}" since; `
        + `undo entry ${entry.seq} first, or write the change you want as a new entry`, {
        table: change.table, conflict: 'ROW_CHANGED_LATER', seq: source.seq, laterSeq: entry.seq, key,
      }, { cause: error });
    }
  }
  return error;
}

function report(schema: DatabaseSchema, source: UndoSource, owners: Map<string, VirtualTable>, treatment: (index: VirtualTable) => DerivedTreatment | null): UndoReport {
  const rows = filterChangeset(invertChangeset(source.changeset), { tables: (name) => !owners.has(foldName(name)) });
  let restores: RowChangeJson[];
  try {
    restores = changesetToRows(rows, toChangesetSchema(schema)).map(rowChangeToJson);
  } catch {
    restores = []; // a table the current schema cannot name (the apply refused it already)
  }
  const derived = [...new Map([...owners.values()].map((v) => [foldName(v.name), v])).values()]
    .map((index) => ({ table: index.name, module: index.module, treatment: treatment(index) }));
  return { seq: source.seq, restores, derived };
}

interface KeyedChange {
  readonly table: string;
  readonly pk: Uint8Array;
  readonly key: Value[];
}

/**
 * The key of every row an entry changed: its changeset's changes and its `rowids` (rows whose rowid alone
 * moved). `rowids` is a changeset whose pk bytes mark exactly the key columns, so one walk serves both.
 */
function* keysOfEntry(entry: { changeset: Uint8Array; rowids?: Uint8Array }): Generator<KeyedChange> {
  yield* keysOfChanges(entry.changeset);
  if (entry.rowids !== undefined) yield* keysOfChanges(entry.rowids);
}

/** The key of every change of a changeset (PK values in column order). */
function* keysOfChanges(changeset: Uint8Array): Generator<KeyedChange> {
  for (const group of decodeChangeset(changeset).tables) {
    for (const change of group.changes) {
      const fields = (change.old ?? change.new)!;
      yield { table: group.name, pk: group.pk, key: fields.filter((_, i) => group.pk[i] !== 0) as Value[] };
    }
  }
}

/** Folded table → canonical keys of the changeset's rows in the tables `keep` accepts. */
function restoredKeys(entry: { changeset: Uint8Array; rowids?: Uint8Array }, keep: (table: string) => boolean): Map<string, Set<string>> {
  const keys = new Map<string, Set<string>>();
  for (const change of keysOfEntry(entry)) {
    if (!keep(change.table)) continue;
    const folded = foldName(change.table);
    let set = keys.get(folded);
    if (set === undefined) keys.set(folded, (set = new Set()));
    set.add(canonicalKey(change.key));
  }
  return keys;
}

/** A string equal for byte-identical keys (type included), as sessions identify rows. */
function canonicalKey(key: readonly Value[]): string {
  return key.map((value) => {
    if (value === null) return 'n';
    if (typeof value === 'bigint') return `i${value}`;
    if (typeof value === 'number') return `r${Object.is(value, -0) ? '-0' : value}`;
    if (typeof value === 'string') return `t${value.length}:${value}`;
    const bytes = value instanceof SqlText ? value.bytes : value;
    return `${value instanceof SqlText ? 'x' : 'b'}${Buffer.from(bytes).toString('hex')}`;
  }).join('|');
}

function namedKey(schema: DatabaseSchema, table: string, pk: Uint8Array, key: readonly Value[]): UndoConflict['key'] {
  const columns = findTable(schema, table)?.columns;
  const names = Array.from(pk).flatMap((ordinal, i) => (ordinal === 0 ? [] : [columns?.[i] ?? `column${i}`]));
  return keyJson({ keyColumns: names }, key);
}

function bindable(value: Value): null | bigint | number | string | Uint8Array {
  return value instanceof SqlText ? value.bytes : value;
}
