"""Exact replay of journal entries (journal/REPLAY.md): foreign keys off, shape checks, triggers suspended,
every conflict aborts; schema entries re-run their script under a session and correct it with the
entry's changeset. All on one ctypes connection (sqlite.py), so apply and the surrounding SQL share the
transaction.
"""
import re

from .errors import ChangetrailError
from .guard import run_untrusted_sql
from . import changeset as changeset_codec
from .rowids import Text, decode_rowids, invert_rowids
from .sqlite import changeset_tables, fold_name, invert_changeset, library_version, quote_identifier

SAVEPOINT = "changetrail_apply"
ROWID_CAPTURE_PREFIX = "_changetrail_rowids_"
STAT1_PK = bytes([1, 2, 0])
CREATE_TRIGGER_PREFIX = re.compile(r"^CREATE\s+TRIGGER\b", re.IGNORECASE)

def conflict(message, conflict_name, table=None, seq=None):
    details = {"conflict": conflict_name}
    if table is not None:
        details["table"] = table
    if seq is not None:
        details["seq"] = seq
    return ChangetrailError("CHANGESET_CONFLICT", message, details)


# SQLite before 3.47.0 reports the old value of a column added by ALTER TABLE ADD COLUMN as NULL, not its
# DEFAULT, for rows stored before the column was added (fixed by "Fix the preupdate hook so that it works
# when the old.* row has a column with a non-NULL default value that was added by ALTER TABLE ADD COLUMN",
# 2024-09-18). A migration's session changeset R then carries a wrong old value, and invert(R) would not
# restore the row. Such rows existed before the script, so their true old value is the DEFAULT.
PREUPDATE_DEFAULTS_FIXED = (3, 47, 0)
LIBRARY_VERSION = tuple(int(part) for part in library_version().split(".")[:3])


def recorded_column_counts(db):
    """Folded table name -> number of non-hidden columns, for the ordinary tables of main."""
    counts = {}
    for (name,) in db.rows("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'"):
        counts[fold_name(name)] = db.one("SELECT count(*) FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0", (name,))[0]
    return counts


def with_added_column_defaults(db, changeset, counts_before):
    """R with the old values of added columns of pre-existing rows set to the columns' DEFAULT."""
    groups = changeset_codec.decode(changeset)
    changed = False
    for group in groups:
        before = counts_before.get(fold_name(group.name))
        if before is None or len(group.pk) <= before:
            continue
        defaults = column_defaults(db, group.name)
        for change in group.changes:
            if change.old is None:
                continue
            for index in range(before, len(group.pk)):
                if change.old[index] == b"\x05" and index < len(defaults) and defaults[index] is not None:
                    change.old[index] = changeset_codec.encode_field(defaults[index])
                    changed = True
    return changeset_codec.encode(groups) if changed else changeset


def column_defaults(db, table):
    """The DEFAULT value of each non-hidden column (None: no default or NULL), with the column's affinity."""
    values = []
    for declared, default in db.rows("SELECT type, dflt_value FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid", (table,)):
        if default is None:
            values.append(None)
            continue
        value = db.one(f"SELECT {default}")[0]
        values.append(with_affinity(db, value, declared or ""))
    return values


def with_affinity(db, value, declared):
    """SQLite's column affinity rules (datatype3.html §3.1) applied to a DEFAULT value."""
    kind = declared.upper()
    if "INT" in kind:
        affinity = "INTEGER"
    elif "CHAR" in kind or "CLOB" in kind or "TEXT" in kind:
        affinity = "TEXT"
    elif "BLOB" in kind or kind == "":
        return value
    elif "REAL" in kind or "FLOA" in kind or "DOUB" in kind:
        affinity = "REAL"
    else:
        affinity = "NUMERIC"
    if affinity == "TEXT" and isinstance(value, (int, float)):
        return Text(db.one("SELECT CAST(? AS TEXT)", (value,))[0].encode())
    if isinstance(value, str):
        value = Text(value.encode("utf-8", "surrogateescape"))
    if affinity != "TEXT" and isinstance(value, Text):
        converted, kind_of = db.one("SELECT CAST(? AS NUMERIC), typeof(CAST(? AS NUMERIC))", (value, value))
        if kind_of in ("integer", "real") and db.one("SELECT CAST(? AS NUMERIC) = ?", (value, value))[0] == 1:
            value = converted
    if affinity == "REAL" and isinstance(value, int):
        return float(value)
    return value


def foreign_keys_enabled(db):
    return db.one("PRAGMA foreign_keys")[0] == 1


def in_transaction(db, before_commit, fn):
    """Foreign keys off (restored after), BEGIN IMMEDIATE, fn(), before_commit(), COMMIT; ROLLBACK on error."""
    if db.in_transaction():
        raise TypeError("apply: the connection is inside a transaction")
    enabled = foreign_keys_enabled(db)
    if enabled:
        db.execute("PRAGMA foreign_keys = OFF")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            fn()
            if before_commit is not None:
                before_commit()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction():
                db.execute("ROLLBACK")
            raise
    finally:
        if enabled:
            db.execute("PRAGMA foreign_keys = ON")


def check_shapes(db, tables, seq):
    """REPLAY.md write step 4: each table exists in main as a table or shadow table, with exactly the
    changeset's recorded columns and pk bytes. Returns [(name as in the schema, is_shadow)]."""
    targets = []
    for table in tables:
        listed = db.one("SELECT name, type FROM pragma_table_list(?) WHERE schema = 'main'", (table["name"],))
        if listed is None or listed[1] not in ("table", "shadow"):
            raise conflict(f'apply changeset of entry {seq} to "{table["name"]}": the target has no such table', "NO_SUCH_TABLE", table["name"], seq)
        pks = [row[0] for row in db.rows("SELECT pk FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid", (listed[0],))]
        if len(pks) != table["columnCount"]:
            raise conflict(f'apply changeset of entry {seq} to "{table["name"]}": the column count differs', "COLUMN_COUNT", table["name"], seq)
        expected = STAT1_PK if fold_name(listed[0]) == "sqlite_stat1" else bytes(pks)
        if expected != table["pk"]:
            raise conflict(f'apply changeset of entry {seq} to "{table["name"]}": the PRIMARY KEY differs', "PRIMARY_KEY", table["name"], seq)
        targets.append((listed[0], listed[1] == "shadow"))
    return targets


def suspend_triggers(db, names):
    """REPLAY.md write step 5: drop the triggers on the changeset's tables (main and temp), in rowid order."""
    folded = {fold_name(name) for name in names}
    rows = []
    for schema in ("main", "temp"):
        for position, name, table, sql in db.rows(f"SELECT rowid, name, tbl_name, sql FROM {schema}.sqlite_schema WHERE type = 'trigger' ORDER BY rowid"):
            if fold_name(table) in folded and not (schema == "temp" and name.startswith(ROWID_CAPTURE_PREFIX)):
                rows.append((schema, name, sql))
    for schema, name, _sql in rows:
        db.execute(f"DROP TRIGGER {schema}.{quote_identifier(name)}")
    return rows


def restore_triggers(db, suspended):
    for schema, _name, sql in suspended:
        db.execute(CREATE_TRIGGER_PREFIX.sub("CREATE TEMP TRIGGER", sql, count=1) if schema == "temp" else sql)


def apply_changeset_in_transaction(db, changeset, seq, invert=False, rowids=None):
    """REPLAY.md write steps 4-10 (with 7a, rowids) inside the caller's transaction (foreign keys already
    off), in a savepoint rolled back on any error."""
    data = invert_changeset(changeset) if invert else changeset
    tables = [t for t in changeset_tables(data) if t["changeCount"] > 0]
    rowid_tables = [] if rowids is None else decode_rowids(rowids, {"file": "rowids", "offset": 0, "seq": seq})
    if invert:
        rowid_tables = invert_rowids(rowid_tables)
    if not tables and not rowid_tables:
        return
    db.execute(f"SAVEPOINT {SAVEPOINT}")
    try:
        targets = check_shapes(db, tables, seq)
        rowid_targets = resolve_rowid_tables(db, rowid_tables, seq)
        check_rowids_before(db, rowid_targets, seq)
        suspended = suspend_triggers(db, [name for name, _shadow in targets] + [t["name"] for t in rowid_targets])
        writes_shadow = any(shadow for _name, shadow in targets)
        if tables:
            apply_aborting_on_conflict(db, data, seq, writes_shadow)
        apply_rowids_after(db, rowid_targets, seq)
        restore_triggers(db, suspended)
        if writes_shadow:
            db.execute("PRAGMA writable_schema = RESET")
        db.execute(f"RELEASE {SAVEPOINT}")
    except BaseException:
        if db.in_transaction():
            db.execute(f"ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}")
        raise


def apply_aborting_on_conflict(db, data, seq, writes_shadow):
    """REPLAY.md steps 6-7: defensive mode lifted for shadow tables, every conflict aborts."""
    lifted = writes_shadow and db.defensive() == 1
    if lifted:
        db.defensive(0)
    try:
        failed = db.apply_changeset(data)
    finally:
        if lifted:
            db.defensive(1)
    if failed is not None:
        kind, table = failed
        raise conflict(f'apply changeset of entry {seq} to "{table}": {kind} conflict: the target\'s rows differ from the source\'s', kind, table, seq)


# ---- rowids (REPLAY.md step 7a) -----------------------------------------------------------------------------

def resolve_rowid_tables(db, tables, seq):
    """Each table of the record must be a rowid table whose PRIMARY KEY columns have the recorded ordinals."""
    resolved = []
    for table in tables:
        listed = db.one("SELECT name, type, wr FROM pragma_table_list(?) WHERE schema = 'main'", (table["table"],))
        if listed is None or listed[1] != "table":
            raise conflict(f'apply rowids of entry {seq} to "{table["table"]}": the target has no such rowid table', "NO_SUCH_TABLE", table["table"], seq)
        keys = [(name, pk) for name, pk in db.rows("SELECT name, pk FROM pragma_table_xinfo(?, 'main') WHERE hidden = 0 ORDER BY cid", (listed[0],)) if pk > 0]
        if listed[2] == 1 or [pk for _name, pk in keys] != table["keyOrdinals"]:
            raise conflict(f'apply rowids of entry {seq} to "{table["table"]}": the PRIMARY KEY differs from the recorded one', "PRIMARY_KEY", table["table"], seq)
        resolved.append({"name": listed[0], "keyColumns": [name for name, _pk in keys], "rows": table["rows"]})
    return resolved


def rowid_of(db, table, key):
    where = " AND ".join(f"{quote_identifier(column)} = ?" for column in table["keyColumns"])
    row = db.one(f"SELECT rowid FROM main.{quote_identifier(table['name'])} WHERE {where}", tuple(key))
    return None if row is None else row[0]


def rowid_conflict(table, seq):
    return conflict(f'apply rowids of entry {seq} to "{table}": a row does not have the rowid the source gave it', "ROWID", table, seq)


def check_rowids_before(db, tables, seq):
    for table in tables:
        for key, before, _after in table["rows"]:
            if before is None:
                continue
            current = rowid_of(db, table, key)
            if current is not None and current != before:
                raise rowid_conflict(table["name"], seq)


def apply_rowids_after(db, tables, seq):
    """Moves every row that exists after the entry to its recorded rowid, in two passes (first below the
    table's minimum, then into place) so rows can swap rowids."""
    for table in tables:
        moves = []
        for key, _before, after in table["rows"]:
            if after is None:
                continue
            current = rowid_of(db, table, key)
            if current is None:
                raise rowid_conflict(table["name"], seq)
            if current != after:
                moves.append((current, after))
        if not moves:
            continue
        target = f"main.{quote_identifier(table['name'])}"
        low = db.one(f"SELECT min(rowid) FROM {target}")[0] or 0
        base = min(low, 0) - 1
        for index, (source, _destination) in enumerate(moves):
            db.rows(f"UPDATE {target} SET rowid = ? WHERE rowid = ?", (base - index, source))
        for index, (_source, destination) in enumerate(moves):
            if db.one(f"SELECT 1 FROM {target} WHERE rowid = ?", (destination,)) is not None:
                raise rowid_conflict(table["name"], seq)
            db.rows(f"UPDATE {target} SET rowid = ? WHERE rowid = ?", (destination, base - index))


def apply_write(db, entry, before_commit=None):
    in_transaction(db, before_commit, lambda: apply_changeset_in_transaction(db, entry.body["changeset"], entry.seq, rowids=entry.body.get("rowids")))


def apply_schema(db, entry, before_commit=None):
    """REPLAY.md schema entries: run the script under a session (R); if R differs from the entry's C,
    apply invert(R) then C exactly; if R cannot be recorded, C must be empty. Then the rows the entry's
    rowids list move to the rowids the source gave them (FORMAT.md §6.1, schema entries)."""
    seq = entry.seq
    sql = entry.body.get("sql")
    if not isinstance(sql, str):
        raise ChangetrailError("JOURNAL_MALFORMED", f"replay entry {seq}: a schema entry without sql",
                               {"file": entry.file, "offset": entry.offset, "reason": "schema entry without sql", "seq": seq})
    changeset = entry.body["changeset"]

    def run():
        column_counts = recorded_column_counts(db)
        replayed = db.record(lambda: run_untrusted_sql(db, sql, seq))
        if replayed is None:
            if len(changeset) == 0:
                return
            raise conflict(f"replay migration {seq}: the script's changes cannot be recorded here but the entry holds some",
                           "UNRECORDABLE_MIGRATION", seq=seq)
        if replayed != changeset and LIBRARY_VERSION < PREUPDATE_DEFAULTS_FIXED:
            replayed = with_added_column_defaults(db, replayed, column_counts)
        if replayed == changeset:
            return
        apply_changeset_in_transaction(db, replayed, seq, invert=True)
        apply_changeset_in_transaction(db, changeset, seq)

    def run_with_rowids():
        run()
        apply_migration_rowids(db, entry.body.get("rowids"), seq)

    in_transaction(db, before_commit, run_with_rowids)


def apply_migration_rowids(db, rowids, seq):
    """REPLAY.md schema entries step 6: every listed row moves to its recorded rowid, triggers suspended."""
    if rowids is None:
        return
    targets = resolve_rowid_tables(db, decode_rowids(rowids, {"file": "rowids", "offset": 0, "seq": seq}), seq)
    suspended = suspend_triggers(db, [t["name"] for t in targets])
    apply_rowids_after(db, targets, seq)
    restore_triggers(db, suspended)
