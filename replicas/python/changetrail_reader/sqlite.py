"""The system's libsqlite3 through ctypes: one connection type, statements, sessions and changesets.

The standard library's sqlite3 module has no session API, and apply and the SQL around it must share one
connection (the same transaction), so every SQLite call of this package goes through this module.
"""
import ctypes
import ctypes.util

from .errors import ChangetrailError
from .rowids import Text

SQLITE_OK = 0
SQLITE_ROW = 100
SQLITE_DONE = 101
SQLITE_SCHEMA = 17

SQLITE_OPEN_READONLY = 0x1
SQLITE_OPEN_READWRITE = 0x2
SQLITE_OPEN_CREATE = 0x4
SQLITE_OPEN_URI = 0x40
SQLITE_OPEN_NOFOLLOW = 0x01000000

SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL = 1, 2, 3, 4, 5

SQLITE_DBCONFIG_DEFENSIVE = 1010

SQLITE_CHANGESET_ABORT = 2
CONFLICT_NAMES = {1: "DATA", 2: "NOTFOUND", 3: "CONFLICT", 4: "CONSTRAINT", 5: "FOREIGN_KEY"}

# Authorizer action codes and answers (sqlite3.h).
SQLITE_DENY = 1
SQLITE_OK_AUTH = 0

SQLITE_TRANSIENT = ctypes.c_void_p(-1)


def _load():
    path = ctypes.util.find_library("sqlite3") or "libsqlite3.so.0"
    lib = ctypes.CDLL(path)
    p, i, c = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
    pp = ctypes.POINTER(ctypes.c_void_p)
    signatures = {
        "sqlite3_libversion": (c, []),
        "sqlite3_open_v2": (i, [c, pp, i, c]),
        "sqlite3_close_v2": (i, [p]),
        "sqlite3_errmsg": (c, [p]),
        "sqlite3_extended_errcode": (i, [p]),
        "sqlite3_exec": (i, [p, c, p, p, p]),
        "sqlite3_prepare_v2": (i, [p, c, i, pp, pp]),
        "sqlite3_step": (i, [p]),
        "sqlite3_reset": (i, [p]),
        "sqlite3_finalize": (i, [p]),
        "sqlite3_column_count": (i, [p]),
        "sqlite3_column_type": (i, [p, i]),
        "sqlite3_column_int64": (ctypes.c_int64, [p, i]),
        "sqlite3_column_double": (ctypes.c_double, [p, i]),
        "sqlite3_column_blob": (p, [p, i]),
        "sqlite3_column_bytes": (i, [p, i]),
        "sqlite3_column_name": (c, [p, i]),
        "sqlite3_bind_int64": (i, [p, i, ctypes.c_int64]),
        "sqlite3_bind_double": (i, [p, i, ctypes.c_double]),
        "sqlite3_bind_blob": (i, [p, i, c, i, p]),
        "sqlite3_bind_text": (i, [p, i, c, i, p]),
        "sqlite3_bind_null": (i, [p, i]),
        "sqlite3_get_autocommit": (i, [p]),
        "sqlite3_busy_timeout": (i, [p, i]),
        "sqlite3_free": (None, [p]),
        "sqlite3_set_authorizer": (i, [p, p, p]),
        "sqlite3_limit": (i, [p, i, i]),
        "sqlite3session_create": (i, [p, c, pp]),
        "sqlite3session_attach": (i, [p, c]),
        "sqlite3session_changeset": (i, [p, ctypes.POINTER(i), pp]),
        "sqlite3session_delete": (None, [p]),
        "sqlite3changeset_start": (i, [pp, i, p]),
        "sqlite3changeset_next": (i, [p]),
        "sqlite3changeset_op": (i, [p, ctypes.POINTER(c), ctypes.POINTER(i), ctypes.POINTER(i), ctypes.POINTER(i)]),
        "sqlite3changeset_pk": (i, [p, ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)), ctypes.POINTER(i)]),
        "sqlite3changeset_finalize": (i, [p]),
        "sqlite3changeset_invert": (i, [i, c, ctypes.POINTER(i), pp]),
        "sqlite3changeset_apply_v2": (i, [p, i, c, p, p, p, pp, ctypes.POINTER(i), i]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    lib.sqlite3_db_config.restype = i  # variadic: (db, op, int, int*)
    return lib


LIB = _load()

FILTER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)
CONFLICT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
AUTHORIZER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_char_p, ctypes.c_char_p)


def library_version():
    return LIB.sqlite3_libversion().decode()


class SqliteFailure(ChangetrailError):
    """An SQLite call failed: changetrail's SQLITE_ERROR with the operation and SQLite's error code."""

    def __init__(self, operation, errcode, message):
        super().__init__("SQLITE_ERROR", f"{operation}: {message}", {"operation": operation, "errcode": errcode})
        self.errcode = errcode


class Connection:
    """One SQLite connection. `execute` runs a script; `rows` one statement with parameters."""

    def __init__(self, path, readonly=False):
        handle = ctypes.c_void_p()
        flags = SQLITE_OPEN_READONLY if readonly else SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        rc = LIB.sqlite3_open_v2(path.encode(), ctypes.byref(handle), flags, None)
        if rc != SQLITE_OK:
            message = LIB.sqlite3_errmsg(handle).decode() if handle else f"code {rc}"
            LIB.sqlite3_close_v2(handle)
            raise SqliteFailure(f"open {path}", rc, message)
        self.handle = handle
        self.path = path
        LIB.sqlite3_busy_timeout(handle, 5000)

    def close(self):
        if self.handle:
            LIB.sqlite3_close_v2(self.handle)
            self.handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def failure(self, operation, rc=None):
        code = LIB.sqlite3_extended_errcode(self.handle) if rc is None else rc
        return SqliteFailure(operation, code, LIB.sqlite3_errmsg(self.handle).decode("utf-8", "replace"))

    def execute(self, sql, operation="exec"):
        rc = LIB.sqlite3_exec(self.handle, sql.encode(), None, None, None)
        if rc != SQLITE_OK:
            raise self.failure(operation, rc)

    def rows(self, sql, params=()):
        """All rows of one statement, as tuples of Python values (int, float, str, bytes, None)."""
        statement = ctypes.c_void_p()
        encoded = sql.encode()
        tail = ctypes.c_void_p()
        rc = LIB.sqlite3_prepare_v2(self.handle, encoded, len(encoded), ctypes.byref(statement), ctypes.byref(tail))
        if rc != SQLITE_OK:
            raise self.failure(f"prepare {sql[:60]}", rc)
        try:
            for index, value in enumerate(params, start=1):
                self._bind(statement, index, value)
            result = []
            while True:
                rc = LIB.sqlite3_step(statement)
                if rc == SQLITE_DONE:
                    return result
                if rc != SQLITE_ROW:
                    raise self.failure(f"step {sql[:60]}", rc)
                result.append(tuple(self._column(statement, i) for i in range(LIB.sqlite3_column_count(statement))))
        finally:
            LIB.sqlite3_finalize(statement)

    def one(self, sql, params=()):
        found = self.rows(sql, params)
        return found[0] if found else None

    def _bind(self, statement, index, value):
        if value is None:
            rc = LIB.sqlite3_bind_null(statement, index)
        elif isinstance(value, bool) or isinstance(value, int):
            rc = LIB.sqlite3_bind_int64(statement, index, int(value))
        elif isinstance(value, float):
            rc = LIB.sqlite3_bind_double(statement, index, value)
        elif isinstance(value, Text):
            rc = LIB.sqlite3_bind_text(statement, index, bytes(value), len(value), SQLITE_TRANSIENT)
        elif isinstance(value, (bytes, bytearray)):
            rc = LIB.sqlite3_bind_blob(statement, index, bytes(value), len(value), SQLITE_TRANSIENT)
        elif isinstance(value, str):
            data = value.encode()
            rc = LIB.sqlite3_bind_text(statement, index, data, len(data), SQLITE_TRANSIENT)
        else:
            raise TypeError(f"cannot bind {type(value).__name__}")
        if rc != SQLITE_OK:
            raise self.failure("bind", rc)

    @staticmethod
    def _column(statement, i):
        kind = LIB.sqlite3_column_type(statement, i)
        if kind == SQLITE_INTEGER:
            return LIB.sqlite3_column_int64(statement, i)
        if kind == SQLITE_FLOAT:
            return LIB.sqlite3_column_double(statement, i)
        if kind == SQLITE_NULL:
            return None
        pointer = LIB.sqlite3_column_blob(statement, i)
        size = LIB.sqlite3_column_bytes(statement, i)
        data = ctypes.string_at(pointer, size) if size > 0 else b""
        return data.decode("utf-8", "surrogateescape") if kind == SQLITE_TEXT else data

    def in_transaction(self):
        return LIB.sqlite3_get_autocommit(self.handle) == 0

    def defensive(self, value=-1):
        """Reads (value -1) or sets SQLITE_DBCONFIG_DEFENSIVE; returns the setting after the call."""
        out = ctypes.c_int(0)
        rc = LIB.sqlite3_db_config(self.handle, ctypes.c_int(SQLITE_DBCONFIG_DEFENSIVE), ctypes.c_int(value), ctypes.byref(out))
        if rc != SQLITE_OK:
            raise self.failure("db_config DEFENSIVE", rc)
        return out.value

    def limit(self, category, value):
        """sqlite3_limit: sets the limit (value -1: only reads it); returns the previous value."""
        return LIB.sqlite3_limit(self.handle, category, value)

    def set_authorizer(self, callback):
        """Installs `callback(action, arg1, arg2, db, trigger) -> SQLITE_OK | SQLITE_DENY | SQLITE_IGNORE`;
        None removes it."""
        if callback is None:
            self._authorizer = None
            LIB.sqlite3_set_authorizer(self.handle, None, None)
            return

        def authorize(_ctx, action, a1, a2, a3, a4):
            texts = [None if t is None else t.decode("utf-8", "replace") for t in (a1, a2, a3, a4)]
            return callback(action, *texts)

        self._authorizer = AUTHORIZER(authorize)
        LIB.sqlite3_set_authorizer(self.handle, ctypes.cast(self._authorizer, ctypes.c_void_p), None)

    def record(self, fn):
        """Runs `fn()` under a session on every table of `main`; returns its changeset, or None when SQLite
        cannot produce one (SQLITE_SCHEMA: a recorded table was dropped or renamed)."""
        session = ctypes.c_void_p()
        rc = LIB.sqlite3session_create(self.handle, b"main", ctypes.byref(session))
        if rc != SQLITE_OK:
            raise self.failure("session create", rc)
        try:
            rc = LIB.sqlite3session_attach(session, None)
            if rc != SQLITE_OK:
                raise self.failure("session attach", rc)
            fn()
            size = ctypes.c_int(0)
            buffer = ctypes.c_void_p()
            rc = LIB.sqlite3session_changeset(session, ctypes.byref(size), ctypes.byref(buffer))
            if rc == SQLITE_SCHEMA:
                return None
            if rc != SQLITE_OK:
                raise SqliteFailure("session changeset", rc, "sqlite3session_changeset failed")
            try:
                return ctypes.string_at(buffer, size.value) if size.value > 0 else b""
            finally:
                LIB.sqlite3_free(buffer)
        finally:
            LIB.sqlite3session_delete(session)

    def apply_changeset(self, changeset, table_filter=None):
        """sqlite3changeset_apply_v2 with every conflict answered ABORT. Returns None on success, else
        (conflict name, table name) of the first conflict."""
        conflicts = []

        def on_conflict(_ctx, kind, iterator):
            conflicts.append((CONFLICT_NAMES.get(kind, f"type {kind}"), changeset_op(ctypes.c_void_p(iterator))[0]))
            return SQLITE_CHANGESET_ABORT

        def on_filter(_ctx, name):
            return 1 if table_filter(name.decode("utf-8", "surrogateescape")) else 0

        conflict_fn = CONFLICT(on_conflict)
        filter_fn = FILTER(on_filter) if table_filter is not None else None
        rc = LIB.sqlite3changeset_apply_v2(self.handle, len(changeset), changeset,
                                           ctypes.cast(filter_fn, ctypes.c_void_p) if filter_fn else None,
                                           ctypes.cast(conflict_fn, ctypes.c_void_p), None, None, None, 0)
        if conflicts:
            return conflicts[0]
        if rc != SQLITE_OK:
            raise self.failure("apply changeset", rc)
        return None


def changeset_op(iterator):
    name = ctypes.c_char_p()
    column_count = ctypes.c_int()
    op = ctypes.c_int()
    indirect = ctypes.c_int()
    LIB.sqlite3changeset_op(iterator, ctypes.byref(name), ctypes.byref(column_count), ctypes.byref(op), ctypes.byref(indirect))
    return name.value.decode("utf-8", "surrogateescape"), column_count.value, op.value


def changeset_tables(changeset):
    """Tables with at least one change, in order of first appearance (names folded ASCII-case-insensitively):
    a list of dicts {name, columnCount, pk (bytes), changeCount}. Malformed input → CHANGESET_MALFORMED."""
    if len(changeset) == 0:
        return []
    if changeset[0:1] == b"P":
        raise ChangetrailError("CHANGESET_KIND_UNSUPPORTED", "apply exactly: a patchset has no old values, so conflicts cannot be detected",
                               {"operation": "apply exactly", "kind": "patchset"})
    iterator = ctypes.c_void_p()
    rc = LIB.sqlite3changeset_start(ctypes.byref(iterator), len(changeset), changeset)
    if rc != SQLITE_OK:
        raise ChangetrailError("CHANGESET_MALFORMED", f"read changeset: sqlite3changeset_start failed ({rc})", {"offset": 0, "reason": f"rc {rc}"})
    tables, by_name = [], {}
    try:
        while True:
            rc = LIB.sqlite3changeset_next(iterator)
            if rc == SQLITE_DONE:
                break
            if rc != SQLITE_ROW:
                raise ChangetrailError("CHANGESET_MALFORMED", f"read changeset: malformed ({rc})", {"offset": 0, "reason": f"rc {rc}"})
            name, column_count, _op = changeset_op(iterator)
            pk_pointer = ctypes.POINTER(ctypes.c_ubyte)()
            pk_count = ctypes.c_int()
            LIB.sqlite3changeset_pk(iterator, ctypes.byref(pk_pointer), ctypes.byref(pk_count))
            pk = bytes(pk_pointer[i] for i in range(pk_count.value))
            key = fold_name(name)
            known = by_name.get(key)
            if known is None:
                known = {"name": name, "columnCount": column_count, "pk": pk, "changeCount": 0}
                by_name[key] = known
                tables.append(known)
            elif known["columnCount"] != column_count or known["pk"] != pk:
                raise ChangetrailError("CHANGESET_MALFORMED", f'read changeset: table "{name}" appears with two different shapes',
                                       {"offset": 0, "reason": "table shapes differ"})
            known["changeCount"] += 1
    finally:
        rc = LIB.sqlite3changeset_finalize(iterator)
    if rc != SQLITE_OK:
        raise ChangetrailError("CHANGESET_MALFORMED", f"read changeset: malformed ({rc})", {"offset": 0, "reason": f"rc {rc}"})
    return tables


def invert_changeset(changeset):
    if len(changeset) == 0:
        return b""
    size = ctypes.c_int(0)
    buffer = ctypes.c_void_p()
    rc = LIB.sqlite3changeset_invert(len(changeset), changeset, ctypes.byref(size), ctypes.byref(buffer))
    if rc != SQLITE_OK:
        raise ChangetrailError("CHANGESET_MALFORMED", f"invert changeset: SQLite refused it ({rc})", {"offset": 0, "reason": f"rc {rc}"})
    try:
        return ctypes.string_at(buffer, size.value) if size.value > 0 else b""
    finally:
        LIB.sqlite3_free(buffer)


def fold_name(name):
    """ASCII-only lower-casing, as SQLite compares identifiers."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in name)


def quote_identifier(name):
    return '"' + name.replace('"', '""') + '"'
