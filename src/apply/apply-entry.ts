/**
 * Applying a journal entry exactly: the one function that replicas, undo and any replay use, so that the
 * target ends with exactly the source's rows in every recorded table, including tables filled by triggers,
 * rows changed by FK actions and the shadow tables of FTS5/FTS4/R*Tree indexes.
 *
 * A session records the effects of triggers and FK actions as (indirect) changes of their own, so an
 * exact apply must keep both from acting again: triggers are dropped and re-created inside the apply's
 * transaction (see triggers.ts), and `PRAGMA foreign_keys` is off (it can only change outside a
 * transaction). Every conflict aborts; tables that SQLite's apply would silently skip are refused
 * (target-shape.ts). The language-neutral rule is journal/REPLAY.md.
 */
import { constants, type DatabaseSync } from 'node:sqlite';
import { assert } from '../assert.js';
import { ChangetrailError } from '../errors.js';
import { invertChangeset } from '../changeset/index.js';
import { bytesEqual, readChangesetTables, type ChangesetTable } from './changeset-tables.js';
import { checkTargetShapes, type TargetTable } from './target-shape.js';
import { restoreTriggers, suspendTriggers } from './triggers.js';
import { foldName } from './schema.js';
import { mainTable } from './sql-identifier.js';
import { decodeRowids, invertRowids, type TableRowids } from '../journal/rowids.js';
import { applyRowidsAfter, checkRowidsBefore, resolveRowidTables, type RowidMode } from './rowid-apply.js';
import { runUntrustedSql } from './replay-guard.js';

/** Options of {@link applyChangesetExactly}. */
export interface ApplyExactlyOptions {
  /** The journal sequence number of the entry, reported in errors. */
  seq?: number;
  /** Apply the inverse of the changeset (undo). */
  invert?: boolean;
  /**
   * Also run `PRAGMA foreign_key_check` on the changeset's tables and the tables referencing them, and
   * refuse the apply if it left a violation. Off by default: replaying a source exactly reproduces its
   * state, including violations a source running with `foreign_keys` off may legitimately hold, and the
   * check scans whole tables. Undo, which applies an old inverse onto a newer state, should turn it on.
   */
  checkForeignKeys?: boolean;
  /**
   * The entry's `rowids` (journal/FORMAT.md §6.1), as stored: rowids of keyed rowid tables to reproduce.
   * With `invert`, they are inverted too (before and after swapped).
   */
  rowids?: Uint8Array;
  /** When a recorded rowid is held by another row: refuse ('exact', the default) or keep the given one (undo). */
  rowidMode?: RowidMode;
}

/** Options of the functions that run their own transaction. */
export interface TransactionOptions {
  /**
   * Called inside the transaction after the apply succeeded, just before COMMIT: a replica records the
   * applied sequence number here, so that position and rows commit together (re-delivery is then a no-op).
   * If it throws, everything is rolled back.
   */
  beforeCommit?: (db: DatabaseSync) => void;
}

/** A journal entry to replay: a data write, or a migration with its script and its data changes. */
export interface ReplayableEntry {
  kind: 'write' | 'schema';
  /** The session changeset of the entry (for 'schema': of the migration's DML; may be empty). */
  changeset: Uint8Array;
  /** 'schema' entries: the migration script exactly as it ran on the source. */
  sql?: string;
  seq?: number;
  /** The entry's `rowids`, if it has any. */
  rowids?: Uint8Array;
}

const SAVEPOINT = 'changetrail_apply';

assert(constants.SQLITE_CHANGESET_DATA === 1, 'SQLITE_CHANGESET_DATA is 1');
assert(constants.SQLITE_CHANGESET_FOREIGN_KEY === 5, 'SQLITE_CHANGESET_FOREIGN_KEY is 5');

/**
 * SQLite's conflict types (sqlite3.h `SQLITE_CHANGESET_DATA` = 1 ... `SQLITE_CHANGESET_FOREIGN_KEY` = 5), as
 * named in `details.conflict` of CHANGESET_CONFLICT. Numbers, not `constants.*`: @types/node 24 lacks
 * `SQLITE_CHANGESET_CONSTRAINT` although node:sqlite exports it.
 */
const CONFLICT_NAMES = new Map<number, string>([[1, 'DATA'], [2, 'NOTFOUND'], [3, 'CONFLICT'], [4, 'CONSTRAINT'], [5, 'FOREIGN_KEY']]);

/**
 * Applies a changeset so that the target reaches exactly the source's rows, in its own transaction.
 *
 * Turns `PRAGMA foreign_keys` off for the duration (restoring it afterwards), then in one `BEGIN IMMEDIATE`
 * transaction does what {@link applyChangesetExactlyInTransaction} describes and commits. On any error
 * everything is rolled back and the pragma restored.
 *
 * @example
 * applyChangesetExactly(replica, entry.changeset, { seq: entry.seq });
 * @throws TypeError if the connection is inside a transaction (use the in-transaction variant).
 * @throws ChangetrailError CHANGESET_CONFLICT (`details.table`, `details.conflict`: 'DATA' | 'NOTFOUND' |
 *   'CONFLICT' | 'CONSTRAINT' | 'FOREIGN_KEY' | 'NO_SUCH_TABLE' | 'COLUMN_COUNT' | 'PRIMARY_KEY'), target unchanged.
 * @throws ChangetrailError CHANGESET_MALFORMED, CHANGESET_KIND_UNSUPPORTED (patchset), SQLITE_ERROR.
 */
export function applyChangesetExactly(
  db: DatabaseSync, changeset: Uint8Array, options: ApplyExactlyOptions & TransactionOptions = {},
): void {
  if (db.isTransaction) throw new TypeError('applyChangesetExactly: the connection is inside a transaction; use applyChangesetExactlyInTransaction');
  withForeignKeysOff(db, () => inImmediateTransaction(db, options.beforeCommit, () => applyChangesetExactlyInTransaction(db, changeset, options)));
}

/**
 * Applies a changeset exactly inside the caller's transaction (undo within a write). Preconditions: a
 * transaction is open and `PRAGMA foreign_keys` was turned off before it began.
 *
 * Steps, all inside a savepoint that is rolled back on any error (so the caller's transaction is left as
 * it was): check every table's shape against the target; drop the triggers on the changeset's tables;
 * apply with every conflict answered ABORT (defensive mode lifted if a shadow table is written); re-create
 * the triggers; optionally check foreign keys; and, if a shadow table was written, reload the schema with
 * `PRAGMA writable_schema=RESET`. The reload is needed because FTS5 caches its index structure per
 * connection and only notices changes committed by *other* connections (`PRAGMA data_version`): without
 * it this connection would keep reading (and later write) a stale index.
 *
 * If the connection runs a capture guard, call this in mode 'internal' (it drops and creates triggers).
 *
 * @example
 * db.exec('PRAGMA foreign_keys = OFF');
 * db.exec('BEGIN IMMEDIATE');
 * applyChangesetExactlyInTransaction(db, entry.changeset, { invert: true, checkForeignKeys: true, seq: entry.seq });
 * db.exec('COMMIT');
 * db.exec('PRAGMA foreign_keys = ON');
 * @throws TypeError if no transaction is open or foreign keys are on.
 * @throws ChangetrailError as {@link applyChangesetExactly}.
 */
export function applyChangesetExactlyInTransaction(db: DatabaseSync, changeset: Uint8Array, options: ApplyExactlyOptions = {}): void {
  if (!(changeset instanceof Uint8Array)) throw new TypeError('applyChangesetExactly: changeset must be a Uint8Array');
  if (!db.isTransaction) throw new TypeError('applyChangesetExactlyInTransaction: no transaction is open');
  if (foreignKeysEnabled(db)) throw new TypeError('applyChangesetExactlyInTransaction: turn PRAGMA foreign_keys off before BEGIN');
  const bytes = options.invert === true ? invertChangeset(changeset) : changeset;
  const tables = readChangesetTables(bytes).filter((table) => table.changeCount > 0);
  const rowids = readRowids(options);
  if (tables.length === 0 && rowids.length === 0) return;
  // The savepoint also flushes FTS5's pending (in-memory) terms of this transaction into its shadow
  // tables before they are written directly: FTS5 flushes on xSavepoint.
  db.exec(`SAVEPOINT ${SAVEPOINT}`);
  try {
    applyInSavepoint(db, bytes, tables, rowids, options);
    db.exec(`RELEASE ${SAVEPOINT}`);
  } catch (error) {
    if (db.isTransaction) db.exec(`ROLLBACK TO ${SAVEPOINT}; RELEASE ${SAVEPOINT}`);
    throw error;
  }
}

function applyInSavepoint(
  db: DatabaseSync, bytes: Uint8Array, tables: readonly ChangesetTable[], rowids: readonly TableRowids[], options: ApplyExactlyOptions,
): void {
  const targets = checkTargetShapes(db, tables, options.seq);
  const rowidTargets = resolveRowidTables(db, rowids, options.seq);
  checkRowidsBefore(db, rowidTargets, options.seq);
  const suspended = suspendTriggers(db, [...targets.map((target) => target.name), ...rowidTargets.map((target) => target.name)]);
  const writesShadow = targets.some((target) => target.isShadow);
  if (tables.length > 0) withDefensiveLifted(db, writesShadow ? targets : [], () => applyAbortingOnConflict(db, bytes, tables, options.seq));
  applyRowidsAfter(db, rowidTargets, options.seq, options.rowidMode ?? 'exact');
  restoreTriggers(db, suspended);
  if (options.checkForeignKeys === true) checkForeignKeys(db, targets, options.seq);
  // Reloading the schema costs about 1.4 ms for a 600-object schema (measured), paid only by entries that
  // write shadow tables.
  if (writesShadow) db.exec('PRAGMA writable_schema=RESET');
}

function readRowids(options: ApplyExactlyOptions): TableRowids[] {
  if (options.rowids === undefined) return [];
  if (!(options.rowids instanceof Uint8Array)) throw new TypeError('applyChangesetExactly: rowids must be a Uint8Array');
  const decoded = decodeRowids(options.rowids, { file: 'rowids', offset: 0, ...(options.seq === undefined ? {} : { seq: options.seq }) });
  return options.invert === true ? invertRowids(decoded) : decoded;
}

function applyAbortingOnConflict(db: DatabaseSync, bytes: Uint8Array, tables: readonly ChangesetTable[], seq: number | undefined): void {
  const conflicts: number[] = [];
  const onConflict = (type: number): number => {
    conflicts.push(type);
    return constants.SQLITE_CHANGESET_ABORT;
  };
  if (runApply(db, bytes, { onConflict })) return;
  // SQLite's handler is not told the table; find it by applying one table at a time (error path only,
  // inside the savepoint that the caller rolls back).
  const table = locateConflict(db, bytes, tables);
  const type = conflicts[0] ?? constants.SQLITE_CHANGESET_CONFLICT;
  const conflict = CONFLICT_NAMES.get(type) ?? `type ${type}`;
  throw new ChangetrailError('CHANGESET_CONFLICT', `apply changeset${seq === undefined ? '' : ` of entry ${seq}`}${table === undefined ? '' : ` to "${table}"`}: `
    + `${conflict} conflict: the target's rows differ from the source's`, {
    conflict, ...(table === undefined ? {} : { table }), ...(seq === undefined ? {} : { seq }),
  });
}

function locateConflict(db: DatabaseSync, bytes: Uint8Array, tables: readonly ChangesetTable[]): string | undefined {
  for (const table of tables) {
    const name = foldName(table.name);
    const applied = runApply(db, bytes, {
      filter: (candidate: string) => foldName(candidate) === name,
      onConflict: () => constants.SQLITE_CHANGESET_ABORT,
    });
    if (!applied) return table.name;
  }
  return undefined;
}

function runApply(db: DatabaseSync, bytes: Uint8Array, options: Parameters<DatabaseSync['applyChangeset']>[1]): boolean {
  try {
    return db.applyChangeset(bytes, options);
  } catch (error) {
    throw wrapSqliteError('apply changeset', error);
  }
}

/**
 * In defensive mode (node:sqlite's default since 24.12) shadow tables are read-only to ordinary SQL; lift
 * it for the apply if a probe says it is on, and put it back afterwards.
 */
function withDefensiveLifted(db: DatabaseSync, targets: readonly TargetTable[], fn: () => void): void {
  const shadow = targets.find((target) => target.isShadow);
  let lifted = false;
  if (shadow !== undefined) {
    try {
      db.prepare(`DELETE FROM ${mainTable(shadow.name)} WHERE 0`);
    } catch {
      db.enableDefensive(false);
      lifted = true;
    }
  }
  try {
    fn();
  } finally {
    if (lifted) db.enableDefensive(true);
  }
}

/**
 * Finds foreign key violations among the applied tables and the tables that reference them. Each check
 * scans a whole table, which is why it is optional.
 */
function checkForeignKeys(db: DatabaseSync, targets: readonly TargetTable[], seq: number | undefined): void {
  const applied = new Set(targets.map((target) => foldName(target.name)));
  const children = db.prepare(`SELECT DISTINCT m.name AS name, f."table" AS parent
    FROM main.sqlite_schema AS m, pragma_foreign_key_list(m.name, 'main') AS f WHERE m.type = 'table'`).all() as { name: string; parent: string }[];
  const checked = new Set(applied);
  for (const row of children) if (applied.has(foldName(row.parent))) checked.add(foldName(row.name));
  const check = db.prepare(`SELECT "table" AS child FROM pragma_foreign_key_check(?, 'main') LIMIT 1`);
  for (const table of checked) {
    const violation = check.get(table) as { child: string } | undefined;
    if (violation === undefined) continue;
    throw new ChangetrailError('CHANGESET_CONFLICT', `apply changeset${seq === undefined ? '' : ` of entry ${seq}`}: `
      + `rows of "${violation.child}" reference missing parents afterwards`, {
      table: violation.child, conflict: 'FOREIGN_KEY', ...(seq === undefined ? {} : { seq }),
    });
  }
}

/**
 * Replays one journal entry exactly (the rule of journal/REPLAY.md).
 *
 * - 'write': {@link applyChangesetExactly}.
 * - 'schema': in one transaction, with foreign keys off: run `sql` with triggers active under a fresh
 *   session, giving R, the data changes the script made here. If R equals the entry's changeset C byte
 *   for byte (a deterministic script on an identical database), done. Otherwise apply inverse(R) and then
 *   C exactly, which leaves every recorded table as the source left it however the script's DML behaved
 *   here (`random()`, `CURRENT_TIMESTAMP`, row order). If the script renames or drops a table it wrote, no
 *   session can record R (SQLite fails with SQLITE_SCHEMA); then C must be empty too, and the script's own
 *   effects are kept. Then the rows the entry's `rowids` list move to the rowids the source gave them.
 *
 * @example
 * for (const entry of entries) {
 *   applyEntryExactly(replica, entry, { beforeCommit: (db) => recordAppliedSeq(db, entry.seq) });
 * }
 * @throws TypeError for an unknown kind, a 'schema' entry without `sql`, or an open transaction.
 * The script is journal content, so it runs under the replay guard ({@link runUntrustedSql}), which is
 * installed as `db`'s authorizer on first use: pass a replay target, never a connection with its own.
 *
 * @throws ChangetrailError as {@link applyChangesetExactly}; CHANGESET_CONFLICT 'UNRECORDABLE_MIGRATION' if
 *   R cannot be recorded but C is not empty; REPLAY_REFUSED if the guard refuses the script; SQLITE_ERROR if
 *   the script fails.
 */
export function applyEntryExactly(
  db: DatabaseSync, entry: ReplayableEntry, options: Pick<ApplyExactlyOptions, 'checkForeignKeys'> & TransactionOptions = {},
): void {
  const seq = entry.seq;
  if (entry.kind === 'write') {
    return applyChangesetExactly(db, entry.changeset, { ...options, ...(seq === undefined ? {} : { seq }), ...(entry.rowids === undefined ? {} : { rowids: entry.rowids }) });
  }
  if (entry.kind !== 'schema') throw new TypeError(`applyEntryExactly: unknown entry kind ${String(entry.kind)}`);
  const sql = entry.sql;
  if (typeof sql !== 'string') throw new TypeError('applyEntryExactly: a schema entry needs its sql');
  if (!(entry.changeset instanceof Uint8Array)) throw new TypeError('applyEntryExactly: changeset must be a Uint8Array');
  if (db.isTransaction) throw new TypeError('applyEntryExactly: the connection is inside a transaction');
  const applyOptions: ApplyExactlyOptions = { ...(options.checkForeignKeys === true ? { checkForeignKeys: true } : {}), ...(seq === undefined ? {} : { seq }) };
  withForeignKeysOff(db, () => inImmediateTransaction(db, options.beforeCommit, () => {
    replayMigrationRows(db, sql, entry.changeset, applyOptions);
    applyMigrationRowids(db, entry.rowids, seq);
  }));
}

/** REPLAY.md "Schema entries" steps 2-5: the script, and the entry's changeset where the script's changes differ. */
function replayMigrationRows(db: DatabaseSync, sql: string, changeset: Uint8Array, applyOptions: ApplyExactlyOptions): void {
  const seq = applyOptions.seq;
  const replayed = runRecorded(db, sql, seq);
  if (replayed === null) {
    if (changeset.byteLength === 0) return;
    throw new ChangetrailError('CHANGESET_CONFLICT', `replay migration${seq === undefined ? '' : ` ${seq}`}: the script's changes cannot be recorded here but the entry holds some`, {
      conflict: 'UNRECORDABLE_MIGRATION', ...(seq === undefined ? {} : { seq }),
    });
  }
  if (bytesEqual(replayed, changeset)) return;
  applyChangesetExactlyInTransaction(db, replayed, { ...applyOptions, invert: true });
  applyChangesetExactlyInTransaction(db, changeset, applyOptions);
}

/**
 * A schema entry's `rowids` (FORMAT.md §6.1): once the migration's rows are in place, each listed row moves
 * to the rowid the source gave it, with its table's triggers suspended so that moving it fires nothing
 * (REPLAY.md "Schema entries" step 6). Inside the caller's transaction.
 *
 * @throws ChangetrailError JOURNAL_MALFORMED (rowids), CHANGESET_CONFLICT 'NO_SUCH_TABLE' | 'PRIMARY_KEY' | 'ROWID' | 'ROWID_TAKEN'.
 */
export function applyMigrationRowids(db: DatabaseSync, rowids: Uint8Array | undefined, seq: number | undefined): void {
  if (rowids === undefined) return;
  const tables = decodeRowids(rowids, { file: 'rowids', offset: 0, ...(seq === undefined ? {} : { seq }) });
  const targets = resolveRowidTables(db, tables, seq);
  const suspended = suspendTriggers(db, targets.map((target) => target.name));
  applyRowidsAfter(db, targets, seq, 'exact');
  restoreTriggers(db, suspended);
}

/** Runs a migration script under a session; its changeset, or null if SQLite cannot produce one. */
function runRecorded(db: DatabaseSync, sql: string, seq: number | undefined): Uint8Array | null {
  const session = db.createSession();
  try {
    runUntrustedSql(db, sql, seq);
    try {
      return session.changeset();
    } catch (error) {
      if (isUnrecordableSchemaChange(error)) return null;
      throw wrapSqliteError('record migration replay', error);
    }
  } finally {
    session.close();
  }
}

/**
 * `changeset()` fails with SQLITE_SCHEMA (17) when a table with recorded changes was dropped or renamed;
 * node:sqlite 24.21/26.10 reports it with errcode 0, "not an error" (reference §5).
 */
function isUnrecordableSchemaChange(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return (error as { code?: unknown } | null)?.code === 'ERR_SQLITE_ERROR' && (errcode === 0 || errcode === 17);
}

function foreignKeysEnabled(db: DatabaseSync): boolean {
  const row = db.prepare('PRAGMA foreign_keys').get() as { foreign_keys: number } | undefined;
  return Number(row?.foreign_keys) === 1;
}

function withForeignKeysOff(db: DatabaseSync, fn: () => void): void {
  const enabled = foreignKeysEnabled(db);
  if (enabled) db.exec('PRAGMA foreign_keys = OFF');
  try {
    fn();
  } finally {
    if (enabled) db.exec('PRAGMA foreign_keys = ON');
  }
}

function inImmediateTransaction(db: DatabaseSync, beforeCommit: ((db: DatabaseSync) => void) | undefined, fn: () => void): void {
  if (beforeCommit !== undefined && typeof beforeCommit !== 'function') throw new TypeError('apply exactly: beforeCommit must be a function');
  db.exec('BEGIN IMMEDIATE');
  try {
    fn();
    beforeCommit?.(db);
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

function wrapSqliteError(operation: string, error: unknown): unknown {
  if (error instanceof ChangetrailError || (error as { code?: unknown } | null)?.code !== 'ERR_SQLITE_ERROR') return error;
  const errcode = (error as { errcode?: unknown }).errcode;
  return new ChangetrailError('SQLITE_ERROR', `${operation}: ${(error as Error).message}`, {
    operation, ...(typeof errcode === 'number' ? { errcode } : {}),
  }, { cause: error });
}
