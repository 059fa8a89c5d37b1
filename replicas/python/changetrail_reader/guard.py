"""The replay guard (the rule of src/apply/replay-guard.ts): journal SQL is untrusted input. While a schema
entry's script runs, SQLite's authorizer refuses ATTACH/DETACH, load_extension and fts3_tokenizer, writes
to any schema but `main` (so no TEMP objects), virtual tables of modules other than FTS3/4/5, R*Tree and
Geopoly, transaction control and changetrail's savepoint names, recursive CTEs, and every PRAGMA but a
short introspection list plus user_version/application_id (`foreign_keys` is ignored: a no-op inside the
transaction, as it was on the source). The connection allows no ATTACH at all and statements of at most
16 MiB. A refusal is REPLAY_REFUSED."""
from .errors import ChangetrailError

UNTRUSTED_SQL_SIZE_MAX = 16 * 1024 * 1024
SQLITE_OK, SQLITE_DENY, SQLITE_IGNORE = 0, 1, 2
SQLITE_LIMIT_SQL_LENGTH, SQLITE_LIMIT_ATTACHED = 1, 7

(CREATE_TEMP_INDEX, CREATE_TEMP_TABLE, CREATE_TEMP_TRIGGER, CREATE_TEMP_VIEW) = (3, 4, 5, 6)
(DROP_TEMP_INDEX, DROP_TEMP_TABLE, DROP_TEMP_TRIGGER, DROP_TEMP_VIEW) = (12, 13, 14, 15)  # sqlite3.h
DELETE, INSERT, PRAGMA, UPDATE = 9, 18, 19, 23
TRANSACTION, ATTACH, DETACH, CREATE_VTABLE, FUNCTION, SAVEPOINT, RECURSIVE = 22, 24, 25, 29, 31, 32, 33
TEMP_ACTIONS = {CREATE_TEMP_INDEX, CREATE_TEMP_TABLE, CREATE_TEMP_TRIGGER, CREATE_TEMP_VIEW,
                DROP_TEMP_INDEX, DROP_TEMP_TABLE, DROP_TEMP_TRIGGER, DROP_TEMP_VIEW}
WRITE_ACTIONS = {INSERT, UPDATE, DELETE}
VIRTUAL_TABLE_MODULES = {"fts3", "fts4", "fts5", "rtree", "rtree_i32", "geopoly"}
REFUSED_FUNCTIONS = {"load_extension", "fts3_tokenizer"}
READ_PRAGMAS = {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
                "foreign_key_check", "integrity_check", "quick_check", "collation_list", "function_list", "module_list",
                "pragma_list", "compile_options", "page_count", "freelist_count", "data_version", "user_version",
                "application_id", "defer_foreign_keys"}
READ_ONLY_WITHOUT_VALUE = {"encoding", "schema_version", "page_size", "auto_vacuum", "database_list"}
IGNORED_PRAGMAS = {"foreign_keys"}


def _lower(text):
    return "" if text is None else text.lower()


def refusal_of(action, arg1, arg2, database):
    """(action, reason) to refuse, "ignore", or None to allow."""
    if action == ATTACH:
        return ("ATTACH", "journal SQL may not attach databases")
    if action == DETACH:
        return ("DETACH", "journal SQL may not detach databases")
    if action == TRANSACTION:
        return (arg1 or "TRANSACTION", "the replay owns the transaction")
    if action == RECURSIVE:
        return ("WITH RECURSIVE", "recursive queries are unbounded work")
    if action == FUNCTION:
        return (f"{arg2}()", "function refused in journal SQL") if _lower(arg2) in REFUSED_FUNCTIONS else None
    if action == CREATE_VTABLE:
        return None if _lower(arg2) in VIRTUAL_TABLE_MODULES else (f"USING {arg2}", "virtual table module refused in journal SQL")
    if action == SAVEPOINT:
        return (f"SAVEPOINT {arg2}", "reserved savepoint name") if _lower(arg2).startswith("changetrail") else None
    if action == PRAGMA:
        name = _lower(arg1)
        if name in READ_PRAGMAS or (name in READ_ONLY_WITHOUT_VALUE and arg2 is None):
            return None
        if name in IGNORED_PRAGMAS:
            return "ignore"
        return (f"PRAGMA {name}", "pragma refused in journal SQL (it changes the connection or the file)")
    if action in TEMP_ACTIONS:
        return ("TEMP", "journal SQL may only change main")
    if action in WRITE_ACTIONS and database is not None and database != "main" and not (
            database == "temp" and action == UPDATE and arg1 in ("sqlite_temp_master", "sqlite_temp_schema")):
        return (f"write {database}.{arg1}", "journal SQL may only write main")
    return None


def refused(action, reason, seq):
    details = {"action": action, "reason": reason}
    if seq is not None:
        details["seq"] = seq
    return ChangetrailError("REPLAY_REFUSED", f"replay journal SQL of entry {seq}: {action} refused: {reason}", details)


def run_untrusted_sql(db, sql, seq):
    """Runs a schema entry's script under the guard, inside the caller's transaction."""
    if len(sql) > UNTRUSTED_SQL_SIZE_MAX:
        raise refused("SQL", f"{len(sql)} characters exceed the {UNTRUSTED_SQL_SIZE_MAX} limit", seq)
    db.limit(SQLITE_LIMIT_ATTACHED, 0)
    db.limit(SQLITE_LIMIT_SQL_LENGTH, min(db.limit(SQLITE_LIMIT_SQL_LENGTH, -1), UNTRUSTED_SQL_SIZE_MAX))
    first = []

    def decide(action, arg1, arg2, database, _trigger):
        found = refusal_of(action, arg1, arg2, database)
        if found == "ignore":
            return SQLITE_IGNORE
        if found is None:
            return SQLITE_OK
        if not first:
            first.append(found)
        return SQLITE_DENY

    db.set_authorizer(decide)
    try:
        db.execute(sql, f"replay migration {seq}")
    except ChangetrailError as error:
        if first:
            raise refused(first[0][0], first[0][1], seq) from error
        if getattr(error, "errcode", None) in (18,):  # SQLITE_TOOBIG: a statement over the length limit
            raise refused("SQL", error.message, seq) from error
        raise
    finally:
        db.set_authorizer(None)
