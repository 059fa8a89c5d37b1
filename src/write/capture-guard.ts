/**
 * The capture guard: SQLite's authorizer on the trail's connection, refusing every statement whose effect
 * a session would not record, before it runs.
 *
 * A session silently ignores DDL, tables without a PRIMARY KEY, rows whose key is NULL, `temp` and
 * attached databases, and anything written outside an admitted write. The guard knows what the connection
 * is doing ({@link CaptureMode}) and refuses, at prepare time, every statement that could write what the
 * journal would miss: DDL in a write, INSERT/UPDATE/DELETE on a table sessions cannot record (also when
 * the write would happen inside a trigger or an FK action, whose statements SQLite compiles into the
 * statement that fires them), writes to attached databases, writes outside a write, and transaction
 * control inside an operation that owns the transaction.
 *
 * **Why prepare-time checks are enough.** The authorizer only runs when a statement is compiled, so a
 * statement compiled in one mode and run in another would escape it. `sqlite3_set_authorizer` expires
 * every prepared statement of the connection (it calls `sqlite3ExpirePreparedStatements`), and an expired
 * statement is recompiled, through the authorizer, before its next run. The guard re-installs its
 * authorizer whenever it enters a mode that refuses something a statement compiled since the last
 * install may do: every statement that runs in a mode was authorized in that mode or in a stricter one
 * (one that refuses at least everything this mode refuses, {@link STRICTER}), including statements the
 * user cached and those that virtual-table modules such as FTS5 prepare internally.
 *
 * Re-installing is what costs: it walks every live statement of the connection (19 µs with 5,000 not yet
 * garbage-collected ones) and each one is recompiled before its next run (3-5 µs for the head row's). So
 * the guard records in which modes it allowed a statement whose verdict depends on the mode (a write, DDL,
 * transaction control, a guarded pragma, REINDEX; never a read, a temp object or a savepoint), and
 * re-installs only when one of them is not at least as strict as the mode entered. A write body and the
 * bookkeeping around it then cost one re-install (when the connection returns to 'idle'), and a group of
 * bodies committed together one in all. changetrail's own statements in 'internal' mode — its head row,
 * transaction control — are not recorded: no user code can reach a statement compiled there (temp
 * triggers on changetrail's tables, the one way user SQL could run inside them, are refused), while a
 * write 'internal' mode allows to a user table (FTS5 flushing its terms) is recorded like any other.
 *
 * What the authorizer cannot see, {@link verifyCapturable} checks before COMMIT: rows left with a NULL
 * key (values are unknown at prepare time) and any change of `PRAGMA schema_version` (a backstop for DDL).
 * Together with `run('write')`'s check that the authorizer is still installed, nothing that commits in a
 * write escapes the session.
 */
import { constants, type DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import {
  findTable, foldName, isChangetrailTable, nullKeyQuery, readSchemaVersion, type DatabaseSchema, type NotCapturableReason,
} from '../apply/schema.js';

/**
 * What the connection is doing, which decides what its statements may do:
 *
 * | mode | data writes (main) | DDL (main) | BEGIN/COMMIT/ROLLBACK |
 * |---|---|---|---|
 * | `'idle'` | refused (STATEMENT_NOT_ALLOWED) | refused | allowed |
 * | `'read'` | refused (STATEMENT_NOT_ALLOWED) | refused | refused |
 * | `'write'` | capturable tables only (else TABLE_NOT_CAPTURABLE) | refused (SCHEMA_CHANGE_IN_WRITE) | refused |
 * | `'migrate'` | allowed | allowed | refused |
 * | `'internal'` | allowed | allowed | allowed |
 *
 * In every mode `temp` tables, temp DDL, savepoints and reads are allowed (temp objects are private to the
 * connection; effects of temp triggers on `main` tables are recorded like any trigger's). Writes and DDL
 * on attached databases are refused in 'read', 'write' and 'migrate' (in the last two as
 * TABLE_NOT_CAPTURABLE, reason 'attached database'); in 'idle' they are not the guard's concern, which
 * also lets `VACUUM` and `VACUUM INTO` (which write through a temporary attached schema) run between
 * operations. `_changetrail*` tables are changetrail's alone. `PRAGMA user_version`, `application_id`,
 * `schema_version` and `writable_schema` may only be set in 'migrate' and 'internal'; `ANALYZE` and
 * `REINDEX` may not run in 'idle' or 'read', and `ANALYZE` not in 'write' either.
 */
export type CaptureMode = 'idle' | 'read' | 'write' | 'migrate' | 'internal';

/** What a write run leaves for {@link verifyCapturable} to check. */
export interface WriteRunContext {
  /** `PRAGMA schema_version` before the write body ran. */
  readonly schemaVersionBefore: number;
  /** Tables whose statements may have stored a key value: INSERT targets and UPDATEs of nullable PK columns. */
  readonly keyWrittenTables: Iterable<string>;
}

/** The guard installed on a connection by {@link installCaptureGuard}. */
export interface CaptureGuard {
  /** The current mode ('idle' between operations). */
  readonly mode: CaptureMode;
  /** The first refusal recorded by the innermost running (or last finished) `run`, if any. */
  readonly violation: ChangetrailError | null;
  /**
   * Runs `fn` synchronously in `mode` and restores the previous mode afterwards (runs nest).
   *
   * A refused statement throws its `ChangetrailError` from `prepare`/`exec`. If `fn` catches it and
   * carries on, `run` still throws that error when `fn` returns: a refused write never commits. In
   * 'write' mode `run` also calls {@link verifyCapturable} after `fn` returns, before the caller commits.
   * The caller owns the transaction and must roll back when `run` throws.
   *
   * @throws ChangetrailError SCHEMA_CHANGE_IN_WRITE, TABLE_NOT_CAPTURABLE, NULL_PRIMARY_KEY, STATEMENT_NOT_ALLOWED
   * @throws TypeError if `fn` returns a promise (bodies must be synchronous), if the mode is unknown, if the
   *   guard was uninstalled, or if the connection's authorizer was replaced behind the guard's back.
   */
  run<T>(mode: CaptureMode, fn: () => T): T;
  /** Removes the authorizer. Idempotent. */
  uninstall(): void;
}

/** The savepoint in which the writer runs each body of a group (src/write/commit.ts); bodies may not touch it. */
export const MEMBER_SAVEPOINT = 'changetrail_member';

const MODES: ReadonlySet<string> = new Set<CaptureMode>(['idle', 'read', 'write', 'migrate', 'internal']);

/**
 * For each mode, the modes that refuse nothing it refuses: a statement compiled in the key's mode may run
 * in these without being checked again. 'read' refuses every write, DDL and transaction control; 'write'
 * everything 'migrate' refuses (transaction control, attached databases, changetrail's tables) and more;
 * 'idle' and 'write' are incomparable ('idle' allows transaction control and attached writes, 'write' allows
 * writes to `main`).
 */
const STRICTER: Readonly<Record<CaptureMode, ReadonlySet<CaptureMode>>> = {
  read: new Set<CaptureMode>(['read', 'idle', 'write', 'migrate', 'internal']),
  write: new Set<CaptureMode>(['write', 'migrate', 'internal']),
  migrate: new Set<CaptureMode>(['migrate', 'internal']),
  idle: new Set<CaptureMode>(['idle', 'internal']),
  internal: new Set<CaptureMode>(['internal']),
};

/** Authorizer action codes that change the `main` (or an attached) schema. */
const SCHEMA_ACTIONS: ReadonlySet<number> = new Set([
  constants.SQLITE_CREATE_INDEX, constants.SQLITE_CREATE_TABLE, constants.SQLITE_CREATE_TRIGGER,
  constants.SQLITE_CREATE_VIEW, constants.SQLITE_DROP_INDEX, constants.SQLITE_DROP_TABLE,
  constants.SQLITE_DROP_TRIGGER, constants.SQLITE_DROP_VIEW, constants.SQLITE_ALTER_TABLE,
  constants.SQLITE_CREATE_VTABLE, constants.SQLITE_DROP_VTABLE, constants.SQLITE_ANALYZE,
]);

const DATA_ACTIONS: ReadonlySet<number> = new Set([constants.SQLITE_INSERT, constants.SQLITE_UPDATE, constants.SQLITE_DELETE]);

/** Pragmas whose assignment changes persistent, logical state that no changeset carries. */
const GUARDED_PRAGMAS: ReadonlySet<string> = new Set(['user_version', 'application_id', 'schema_version', 'writable_schema']);

/** The schema tables DDL writes through nested statements; DDL is judged by its own action code instead. */
const SCHEMA_TABLES: ReadonlySet<string> = new Set(['sqlite_master', 'sqlite_schema', 'sqlite_temp_master', 'sqlite_temp_schema']);

/** 'SQLITE_CREATE_TABLE' → 'CREATE TABLE', for error details. */
const ACTION_NAMES = new Map<number, string>(Object.entries(constants)
  .filter(([key]) => key.startsWith('SQLITE_') && !key.startsWith('SQLITE_CHANGESET_') && !['SQLITE_OK', 'SQLITE_DENY', 'SQLITE_IGNORE', 'SQLITE_COPY'].includes(key))
  .map(([key, code]) => [code as number, key.slice('SQLITE_'.length).replaceAll('_', ' ')]));

/** A statement prepared (never run) to prove that the authorizer is still the guard's: SELECT reports SQLITE_SELECT. */
const PROBE_SQL = 'SELECT 0 AS changetrail_probe';

/**
 * Installs the capture guard as the connection's authorizer (`db.setAuthorizer`) in mode 'idle'.
 *
 * `getSchema` is called once at the start of every 'write' run (never from inside the authorizer, where
 * SQLite forbids running statements); pass a cached reader such as `createSchemaReader(db)`. The guard
 * owns the connection's authorizer: replacing it disables the guard, which the next 'write' run detects.
 *
 * The write path: BEGIN and COMMIT run in 'idle'; the body in 'write'; `session.changeset()` and
 * changetrail's own bookkeeping in 'internal'. `changeset()` must not run in 'idle': it opens a savepoint,
 * which makes FTS5 write its pending terms into its shadow tables, and 'idle' refuses those writes. For the
 * same reason a COMMIT that would flush FTS5 terms no changeset has seen is refused (the data would
 * commit unrecorded).
 *
 * @example
 * const guard = installCaptureGuard(db, createSchemaReader(db));
 * db.exec('BEGIN IMMEDIATE');
 * const session = db.createSession();
 * try {
 *   guard.run('write', () => db.prepare('INSERT INTO t VALUES (?, ?)').run(1, 'a'));
 *   const changeset = guard.run('internal', () => session.changeset());
 *   // ... append the changeset to the journal, update the head row in 'internal' ...
 *   db.exec('COMMIT');
 * } catch (error) {
 *   if (db.isTransaction) db.exec('ROLLBACK');
 *   throw error;
 * } finally {
 *   session.close();
 * }
 */
export function installCaptureGuard(db: DatabaseSync, getSchema: () => DatabaseSchema): CaptureGuard {
  if (typeof getSchema !== 'function') throw new TypeError('installCaptureGuard: getSchema must be a function');
  return new SessionCaptureGuard(db, getSchema);
}

class SessionCaptureGuard implements CaptureGuard {
  readonly #db: DatabaseSync;
  readonly #getSchema: () => DatabaseSchema;
  readonly #authorizer = this.#authorize.bind(this);
  #mode: CaptureMode = 'idle';
  #schema: DatabaseSchema | null = null;
  #violation: ChangetrailError | null = null;
  /**
   * Tables in which a statement compiled in 'write' mode since the last install may store a key: such a
   * statement may run again in a later write without being recompiled, so the set lasts until the install.
   */
  #keyWrittenTables = new Set<string>();
  /** Modes in which a statement with a mode-dependent verdict was allowed since the authorizer was installed. */
  readonly #compiledIn = new Set<CaptureMode>();
  #authorizerCalls = 0;
  #depth = 0;
  #installed = true;

  constructor(db: DatabaseSync, getSchema: () => DatabaseSchema) {
    this.#db = db;
    this.#getSchema = getSchema;
    db.setAuthorizer(this.#authorizer);
  }

  get mode(): CaptureMode {
    return this.#mode;
  }

  get violation(): ChangetrailError | null {
    return this.#violation;
  }

  run<T>(mode: CaptureMode, fn: () => T): T {
    if (!MODES.has(mode)) throw new TypeError(`capture guard: unknown mode ${String(mode)}`);
    if (typeof fn !== 'function') throw new TypeError('capture guard: fn must be a function');
    if (!this.#installed) throw new TypeError('capture guard: run after uninstall');
    // A refusal inside a nested run stays recorded for the enclosing run, so catching it does not help.
    const outer = { mode: this.#mode, schema: this.#schema, violation: this.#depth === 0 ? null : this.#violation };
    const schemaVersionBefore = mode === 'write' ? readSchemaVersion(this.#db) : 0;
    this.#schema = mode === 'write' ? this.#getSchema() : null;
    this.#violation = null;
    this.#enter(mode);
    this.#depth++;
    try {
      const result = fn();
      if (isThenable(result)) {
        // The body is refused; its promise settling later can no longer matter and must not crash the process.
        (result as PromiseLike<unknown>).then(undefined, () => undefined);
        throw new TypeError('capture guard: the body returned a promise; bodies must be synchronous');
      }
      if (this.#violation !== null) throw this.#violation;
      if (mode === 'write') this.#verifyWrite(schemaVersionBefore);
      return result;
    } catch (error) {
      throw this.#violation ?? error;
    } finally {
      this.#depth--;
      const inner = this.#violation;
      this.#schema = outer.schema;
      // Inside changetrail's own code ('internal') a refusal is not sticky: the run that recorded it threw it,
      // and the writer rolls back that body alone (group commit) — the bodies after it must not inherit it.
      this.#violation = outer.mode === 'internal' ? outer.violation : outer.violation ?? inner;
      this.#enter(outer.mode);
    }
  }

  uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    if (this.#db.isOpen) this.#db.setAuthorizer(null);
  }

  /**
   * Switches mode, re-installing the authorizer (which expires every prepared statement, see the file
   * comment) when a statement compiled since the last install may do something `mode` refuses.
   */
  #enter(mode: CaptureMode): void {
    if (mode === this.#mode) return;
    this.#mode = mode;
    // A closed connection has no statements left to expire (and setAuthorizer would throw).
    if (!this.#installed || !this.#db.isOpen) return;
    for (const compiled of this.#compiledIn) {
      if (STRICTER[compiled].has(mode)) continue;
      this.#db.setAuthorizer(this.#authorizer);
      this.#compiledIn.clear();
      this.#keyWrittenTables.clear();
      return;
    }
  }

  #verifyWrite(schemaVersionBefore: number): void {
    const before = this.#authorizerCalls;
    this.#db.prepare(PROBE_SQL);
    if (this.#authorizerCalls === before) {
      throw new TypeError('capture guard: the connection\'s authorizer was replaced; changetrail owns db.setAuthorizer');
    }
    const schema = this.#schema;
    if (schema === null) throw new TypeError('capture guard: write run without a schema');
    verifyCapturable(this.#db, schema, { schemaVersionBefore, keyWrittenTables: this.#keyWrittenTables });
  }

  #authorize(action: number, arg1: string | null, arg2: string | null, dbName: string | null, source: string | null): number {
    this.#authorizerCalls++;
    const refusal = this.#judge(action, arg1, arg2, dbName, source);
    if (refusal === null) {
      if (this.#mode !== 'read' && this.#dependsOnMode(action, arg1, arg2, dbName)) this.#compiledIn.add(this.#mode);
      return constants.SQLITE_OK;
    }
    this.#violation ??= refusal;
    // node:sqlite rethrows an exception thrown by the authorizer from prepare()/exec()/run() (observed on
    // Node 24.21 and 26.10, also when an expired statement is recompiled inside run()), so the caller sees
    // the ChangetrailError itself rather than SQLite's "not authorized".
    throw refusal;
  }

  /**
   * Whether an allowed action could be judged differently in another mode (so a statement holding it must
   * be checked again when it runs in a stricter one). Reads, temp objects and savepoints are allowed in
   * every mode. In 'internal' mode changetrail's own head-row writes and transaction control are not
   * counted: only changetrail compiles statements there (see the file comment).
   */
  #dependsOnMode(action: number, arg1: string | null, arg2: string | null, dbName: string | null): boolean {
    if (DATA_ACTIONS.has(action)) {
      const table = arg1 ?? '';
      if (SCHEMA_TABLES.has(foldName(table)) || foldName(dbName ?? 'main') === 'temp') return false;
      return this.#mode !== 'internal' || !isChangetrailTable(table);
    }
    if (SCHEMA_ACTIONS.has(action) || action === constants.SQLITE_REINDEX) return true;
    if (action === constants.SQLITE_TRANSACTION) return this.#mode !== 'internal';
    if (action === constants.SQLITE_PRAGMA) return arg2 !== null && GUARDED_PRAGMAS.has(foldName(arg1 ?? ''));
    return action === constants.SQLITE_CREATE_TEMP_TRIGGER && arg2 !== null && isChangetrailTable(arg2);
  }

  #judge(action: number, arg1: string | null, arg2: string | null, dbName: string | null, source: string | null): ChangetrailError | null {
    if (DATA_ACTIONS.has(action)) return this.#judgeDataWrite(action, arg1 ?? '', arg2, dbName ?? 'main', source);
    if (SCHEMA_ACTIONS.has(action)) return this.#judgeSchemaChange(action, arg1, arg2, dbName);
    switch (action) {
      case constants.SQLITE_SAVEPOINT:
        // Group commit runs each body in this savepoint: releasing or rolling it back would merge or undo
        // other writes of the group.
        return this.#mode !== 'internal' && arg2 !== null && foldName(arg2) === MEMBER_SAVEPOINT
          ? notAllowed(this.#mode, `${arg1 ?? 'SAVEPOINT'} ${MEMBER_SAVEPOINT}`)
          : null;
      case constants.SQLITE_CREATE_TEMP_TRIGGER:
        // A temp trigger on changetrail's tables would run user SQL inside changetrail's bookkeeping,
        // after the session's changeset was taken: what it wrote would commit unrecorded.
        return this.#mode !== 'internal' && arg2 !== null && isChangetrailTable(arg2) ? notCapturable(arg2, 'changetrail table', null) : null;
      case constants.SQLITE_TRANSACTION:
        return this.#mode === 'read' || this.#mode === 'write' || this.#mode === 'migrate'
          ? notAllowed(this.#mode, arg1 ?? 'TRANSACTION')
          : null;
      case constants.SQLITE_PRAGMA:
        return this.#judgePragma(arg1 ?? '', arg2);
      case constants.SQLITE_REINDEX:
        return this.#mode === 'idle' || this.#mode === 'read' ? notAllowed(this.#mode, 'REINDEX') : null;
      default:
        return null;
    }
  }

  #judgeDataWrite(action: number, table: string, column: string | null, dbName: string, source: string | null): ChangetrailError | null {
    if (SCHEMA_TABLES.has(foldName(table)) || foldName(dbName) === 'temp' || this.#mode === 'internal') return null;
    const qualified = foldName(dbName) === 'main' ? table : `${dbName}.${table}`;
    if (this.#mode === 'idle' && qualified !== table) return null;
    if (this.#mode === 'idle' || this.#mode === 'read') return notAllowed(this.#mode, actionName(action), qualified);
    if (qualified !== table) return notCapturable(qualified, 'attached database', source);
    if (isChangetrailTable(table)) return notCapturable(table, 'changetrail table', source);
    if (this.#mode === 'migrate') return null;
    return this.#judgeCapturedWrite(action, table, column, source);
  }

  /** A write in 'write' mode to a `main` table: allowed only if sessions record the table. */
  #judgeCapturedWrite(action: number, table: string, column: string | null, source: string | null): ChangetrailError | null {
    const schema = this.#schema;
    if (schema === null) return notCapturable(table, 'unknown table', source);
    const found = findTable(schema, table);
    if (found === undefined) {
      if (schema.views.some((view) => foldName(view) === foldName(table))) return null;
      return notCapturable(table, foldName(table).startsWith('sqlite_') ? 'sqlite internal table' : 'unknown table', source);
    }
    if (!found.capturable) return notCapturable(found.name, found.reason ?? 'no primary key', source);
    const storesKey = action === constants.SQLITE_INSERT
      || (action === constants.SQLITE_UPDATE && column !== null && found.nullablePkColumns.some((c) => foldName(c) === foldName(column)));
    if (storesKey && found.nullablePkColumns.length > 0) this.#keyWrittenTables.add(found.name);
    return null;
  }

  #judgeSchemaChange(action: number, arg1: string | null, arg2: string | null, dbName: string | null): ChangetrailError | null {
    const mode = this.#mode;
    if (mode === 'internal') return null;
    // ALTER TABLE reports (database, table) in (arg1, arg2); every other DDL code reports (object, table or module).
    const database = action === constants.SQLITE_ALTER_TABLE ? arg1 : dbName;
    const object = action === constants.SQLITE_ALTER_TABLE ? arg2 : arg1;
    const statement = `${actionName(action)} ${object ?? ''}`.trim();
    const inMain = database === null || foldName(database) === 'main';
    if (mode === 'idle' && !inMain) return null;
    if (mode === 'idle' || mode === 'read') return notAllowed(mode, actionName(action), object ?? undefined);
    if (mode === 'write') {
      return new ChangetrailError('SCHEMA_CHANGE_IN_WRITE', `refuse ${statement} in a write: schema changes go through trail.migrate`, { statement });
    }
    if (!inMain) return notCapturable(`${database}.${object ?? ''}`, 'attached database', null);
    if (action !== constants.SQLITE_ANALYZE && [object, arg2].some((name) => name !== null && isChangetrailTable(name))) {
      return notCapturable(object ?? '', 'changetrail table', null);
    }
    return null;
  }

  #judgePragma(name: string, value: string | null): ChangetrailError | null {
    const pragma = foldName(name);
    if (value === null || !GUARDED_PRAGMAS.has(pragma)) return null;
    const mode = this.#mode;
    if (mode === 'migrate' || mode === 'internal') return null;
    if (mode === 'write') {
      return new ChangetrailError('SCHEMA_CHANGE_IN_WRITE', `refuse PRAGMA ${pragma} in a write: set it through trail.migrate`, {
        statement: `PRAGMA ${pragma}`,
      });
    }
    return notAllowed(mode, `PRAGMA ${pragma}`);
  }
}

/**
 * Checks, inside the write's transaction and before COMMIT, what the authorizer cannot see at prepare
 * time: that no table whose key can be NULL holds a row with a NULL key (sessions skip such rows), and
 * that `PRAGMA schema_version` did not change (a backstop: DDL is refused at prepare time already).
 *
 * Only tables in `context.keyWrittenTables` are queried, one indexed lookup each (see `nullKeyQuery`), so a
 * write that stores no key in a nullable-key table costs one pragma read.
 *
 * @throws ChangetrailError NULL_PRIMARY_KEY, SCHEMA_CHANGE_IN_WRITE
 */
export function verifyCapturable(db: DatabaseSync, schema: DatabaseSchema, context: WriteRunContext): void {
  if (readSchemaVersion(db) !== context.schemaVersionBefore) {
    throw new ChangetrailError('SCHEMA_CHANGE_IN_WRITE', 'verify write: the schema changed during the write; schema changes go through trail.migrate', {});
  }
  for (const name of context.keyWrittenTables) {
    const table = findTable(schema, name);
    const query = table === undefined ? null : nullKeyQuery(table);
    if (table === undefined || query === null || db.prepare(query).get() === undefined) continue;
    throw new ChangetrailError('NULL_PRIMARY_KEY', `verify write: table "${table.name}" holds a row whose PRIMARY KEY `
      + `(${table.nullablePkColumns.join(', ')}) is NULL, which SQLite sessions do not record; store a key, and declare `
      + 'the key columns NOT NULL through trail.migrate', { table: table.name });
  }
}

const FIX_HINTS: Record<NotCapturableReason, string> = {
  'no primary key': 'it has no PRIMARY KEY, so SQLite sessions cannot record its rows; give it one through trail.migrate '
    + '(rebuild it with e.g. `id INTEGER PRIMARY KEY`)',
  'virtual table': 'it is a virtual table whose module keeps its rows outside SQLite tables, where sessions cannot record them',
  'attached database': 'it belongs to an attached database, which this trail does not journal; write it through its own trail',
  'sqlite internal table': 'it is an internal SQLite table that sessions do not record',
  'changetrail table': 'it is changetrail\'s own bookkeeping, written only by changetrail',
  'unknown table': 'it is not in the schema read at the start of the write',
};

function notCapturable(table: string, reason: NotCapturableReason, source: string | null): ChangetrailError {
  const via = source === null ? '' : ` (from trigger or view "${source}")`;
  return new ChangetrailError('TABLE_NOT_CAPTURABLE', `refuse write to "${table}"${via}: ${FIX_HINTS[reason]}`, { table, reason });
}

function notAllowed(mode: 'idle' | 'read' | 'write' | 'migrate', action: string, table?: string): ChangetrailError {
  const where = mode === 'idle' ? 'outside trail.write/trail.migrate' : `inside trail.${mode}`;
  const target = table === undefined ? '' : ` on "${table}"`;
  return new ChangetrailError('STATEMENT_NOT_ALLOWED', `refuse ${action}${target} ${where}`, {
    mode, action, ...(table === undefined ? {} : { table }),
  });
}

function actionName(action: number): string {
  return ACTION_NAMES.get(action) ?? `action ${action}`;
}

function isThenable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
