/**
 * The replay guard: journal content is untrusted input. Anyone who can write the journal directory can
 * forge a schema entry with a valid CRC and chain (issue 9 §2.1: `ATTACH '/srv/victim.db' AS v; DELETE FROM
 * v.secrets;` run by `verify --replay` emptied another database). Every replay of journal SQL — verify,
 * replicas, restore, export, the schema history — runs it through {@link runUntrustedSql} on a connection
 * carrying this guard: SQLite's authorizer refuses, while journal SQL runs,
 *
 * - ATTACH and DETACH (and the connection's attach limit is 0 besides);
 * - any function named `load_extension` or `fts3_tokenizer`;
 * - writes to any schema but `main` (so no TEMP tables, triggers or views either);
 * - virtual tables of modules other than FTS3/4/5, R*Tree and Geopoly;
 * - transaction control (BEGIN/COMMIT/ROLLBACK: the replay owns the transaction) and savepoints named
 *   like changetrail's own;
 * - recursive CTEs (unbounded loops on any data), and every PRAGMA not on a short list of introspection
 *   pragmas plus `user_version`/`application_id` (data in the file header). `PRAGMA foreign_keys` is
 *   ignored: inside a transaction it is a no-op, as it was when the migration ran on the source.
 *
 * Work is bounded by {@link UNTRUSTED_SQL_SIZE_MAX} and SQLite's per-statement limits. Outside
 * `runUntrustedSql` the guard allows everything, so the exact apply's own statements run unchanged.
 * The language-neutral rule is journal/REPLAY.md §"Guarded replay".
 */
import { constants, DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { SQL_BYTES_MAX } from '../journal/entry.js';

/** Journal SQL longer than this many UTF-8 bytes is refused: the body limit of `sql` (16 MiB). */
export const UNTRUSTED_SQL_SIZE_MAX = SQL_BYTES_MAX;

const VIRTUAL_TABLE_MODULES = new Set(['fts3', 'fts4', 'fts5', 'rtree', 'rtree_i32', 'geopoly']);
const REFUSED_FUNCTIONS = new Set(['load_extension', 'fts3_tokenizer']);
/** Pragmas that only read, or write data that lives in the file (user_version, application_id). */
const READ_PRAGMAS = new Set([
  'table_info', 'table_xinfo', 'table_list', 'index_list', 'index_info', 'index_xinfo', 'foreign_key_list',
  'foreign_key_check', 'integrity_check', 'quick_check', 'collation_list', 'function_list', 'module_list',
  'pragma_list', 'compile_options', 'page_count', 'freelist_count', 'data_version', 'user_version',
  'application_id', 'defer_foreign_keys',
]);
/** Readable without a value only: with one they change the connection or the file's layout. */
const READ_ONLY_WITHOUT_VALUE = new Set(['encoding', 'schema_version', 'page_size', 'auto_vacuum', 'database_list']);
const IGNORED_PRAGMAS = new Set(['foreign_keys']);
const WRITE_ACTIONS = new Set([constants.SQLITE_INSERT, constants.SQLITE_UPDATE, constants.SQLITE_DELETE]);
const TEMP_ACTIONS = new Set([
  constants.SQLITE_CREATE_TEMP_INDEX, constants.SQLITE_CREATE_TEMP_TABLE, constants.SQLITE_CREATE_TEMP_TRIGGER,
  constants.SQLITE_CREATE_TEMP_VIEW, constants.SQLITE_DROP_TEMP_INDEX, constants.SQLITE_DROP_TEMP_TABLE,
  constants.SQLITE_DROP_TEMP_TRIGGER, constants.SQLITE_DROP_TEMP_VIEW,
]);

interface Refusal {
  action: string;
  reason: string;
}

class ReplayGuard {
  untrusted = false;
  refusal: Refusal | null = null;

  decide(action: number, arg1: string | null, arg2: string | null, dbName: string | null): number {
    if (!this.untrusted) return constants.SQLITE_OK;
    const refusal = refusalOf(action, arg1, arg2, dbName);
    if (refusal === 'ignore') return constants.SQLITE_IGNORE;
    if (refusal === null) return constants.SQLITE_OK;
    this.refusal ??= refusal;
    return constants.SQLITE_DENY;
  }
}

const GUARDS = new WeakMap<DatabaseSync, ReplayGuard>();

/**
 * Installs the replay guard as `db`'s authorizer (idempotent) and lowers its limits (no ATTACH, statement
 * size at most UNTRUSTED_SQL_SIZE_MAX). The guard replaces any authorizer the connection had:
 * pass only connections that replay (a replica target, a scratch copy), never a trail's own.
 */
export function installReplayGuard(db: DatabaseSync): void {
  if (GUARDS.has(db)) return;
  const guard = new ReplayGuard();
  db.setAuthorizer((action, arg1, arg2, dbName) => guard.decide(action, arg1, arg2, dbName));
  // db.limits exists from Node 24.15; on 24.12-24.14 the authorizer alone refuses ATTACH.
  const limits = db.limits as DatabaseSync['limits'] | undefined;
  if (limits !== undefined) {
    limits.attach = 0;
    limits.sqlLength = Math.min(limits.sqlLength, UNTRUSTED_SQL_SIZE_MAX);
  }
  GUARDS.set(db, guard);
}

/**
 * Opens a database file for replaying journal content into: extensions off, defensive on, the replay
 * guard installed. The one connection setup for verify, replicas, restore and export.
 *
 * @example
 * const target = openReplayDatabase(join(scratch, 'replay.db'));
 * applyEntryExactly(target, entry);
 */
export function openReplayDatabase(path: string, options: { readOnly?: boolean } = {}): DatabaseSync {
  const db = new DatabaseSync(path, { allowExtension: false, defensive: true, readOnly: options.readOnly ?? false });
  installReplayGuard(db);
  return db;
}

/**
 * Runs journal SQL (a schema entry's migration script) under the replay guard, installing it first if
 * the connection has none. Call inside the replay's transaction.
 *
 * @throws ChangetrailError REPLAY_REFUSED (`details.action`, `details.reason`; nothing outside the
 *   statement's own effects happened), SQLITE_ERROR if the script fails otherwise.
 */
export function runUntrustedSql(db: DatabaseSync, sql: string, seq?: number): void {
  const size = Buffer.byteLength(sql, 'utf8');
  if (size > UNTRUSTED_SQL_SIZE_MAX) {
    throw refused({ action: 'SQL', reason: `${size} UTF-8 bytes exceed the ${UNTRUSTED_SQL_SIZE_MAX}-byte limit` }, seq);
  }
  installReplayGuard(db);
  const guard = GUARDS.get(db)!;
  guard.untrusted = true;
  guard.refusal = null;
  try {
    db.exec(sql);
  } catch (error) {
    if (guard.refusal !== null) throw refused(guard.refusal, seq, error);
    if (isLimitError(error)) throw refused({ action: 'SQL', reason: (error as Error).message }, seq, error);
    throw sqliteError(`replay migration${seq === undefined ? '' : ` ${seq}`}`, error);
  } finally {
    guard.untrusted = false;
  }
}

function refusalOf(action: number, arg1: string | null, arg2: string | null, dbName: string | null): Refusal | 'ignore' | null {
  switch (action) {
    case constants.SQLITE_ATTACH: return { action: 'ATTACH', reason: 'journal SQL may not attach databases' };
    case constants.SQLITE_DETACH: return { action: 'DETACH', reason: 'journal SQL may not detach databases' };
    case constants.SQLITE_TRANSACTION: return { action: String(arg1 ?? 'TRANSACTION'), reason: 'the replay owns the transaction' };
    case constants.SQLITE_RECURSIVE: return { action: 'WITH RECURSIVE', reason: 'recursive queries are unbounded work' };
    case constants.SQLITE_FUNCTION: return REFUSED_FUNCTIONS.has(String(arg2).toLowerCase()) ? { action: `${arg2}()`, reason: 'function refused in journal SQL' } : null;
    case constants.SQLITE_CREATE_VTABLE: return VIRTUAL_TABLE_MODULES.has(String(arg2).toLowerCase()) ? null : { action: `USING ${arg2}`, reason: 'virtual table module refused in journal SQL' };
    case constants.SQLITE_SAVEPOINT: return String(arg2).toLowerCase().startsWith('changetrail') ? { action: `SAVEPOINT ${arg2}`, reason: 'reserved savepoint name' } : null;
    case constants.SQLITE_PRAGMA: return pragmaRefusal(String(arg1).toLowerCase(), arg2);
    default: break;
  }
  if (TEMP_ACTIONS.has(action)) return { action: 'TEMP', reason: 'journal SQL may only change main' };
  if (WRITE_ACTIONS.has(action) && dbName !== null && dbName !== 'main' && !isTempSchemaUpkeep(action, arg1, dbName)) {
    return { action: `write ${dbName}.${arg1}`, reason: 'journal SQL may only write main' };
  }
  return null;
}

/**
 * `ALTER TABLE ... RENAME` rewrites TEMP triggers that name the table (an UPDATE of temp's schema table);
 * creating TEMP objects stays refused, so only objects of the replaying code itself are touched.
 */
function isTempSchemaUpkeep(action: number, table: string | null, dbName: string): boolean {
  return dbName === 'temp' && action === constants.SQLITE_UPDATE && (table === 'sqlite_temp_master' || table === 'sqlite_temp_schema');
}

function pragmaRefusal(name: string, value: string | null): Refusal | 'ignore' | null {
  if (READ_PRAGMAS.has(name)) return null;
  if (READ_ONLY_WITHOUT_VALUE.has(name) && value === null) return null;
  if (IGNORED_PRAGMAS.has(name)) return 'ignore';
  return { action: `PRAGMA ${name}`, reason: 'pragma refused in journal SQL (it changes the connection or the file)' };
}

function refused(refusal: Refusal, seq: number | undefined, cause?: unknown): ChangetrailError<'REPLAY_REFUSED'> {
  return new ChangetrailError('REPLAY_REFUSED', `replay journal SQL${seq === undefined ? '' : ` of entry ${seq}`}: ${refusal.action} refused: ${refusal.reason}`, {
    action: refusal.action, reason: refusal.reason, ...(seq === undefined ? {} : { seq }),
  }, { cause });
}

/** SQLITE_TOOBIG (18) or a depth limit ("too many levels", "Expression tree is too large"). */
function isLimitError(error: unknown): boolean {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return errcode === 18 || /too (big|large|many levels)/i.test(String((error as Error)?.message));
}

function sqliteError(operation: string, error: unknown): unknown {
  if (error instanceof ChangetrailError || (error as { code?: unknown } | null)?.code !== 'ERR_SQLITE_ERROR') return error;
  const errcode = (error as { errcode?: unknown }).errcode;
  return new ChangetrailError('SQLITE_ERROR', `${operation}: ${(error as Error).message}`, {
    operation, ...(typeof errcode === 'number' ? { errcode } : {}),
  }, { cause: error });
}
