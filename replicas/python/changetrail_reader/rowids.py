"""The `rowids` of a version-2 entry body (FORMAT.md §6.1): a changeset with one group per keyed rowid
table — the PRIMARY KEY columns, then `before` and `after` — whose changes are direct INSERTs. Decoded
here in pure Python (no SQLite needed to validate a journal)."""
import struct

from .errors import ChangetrailError

OP_INSERT = 0x12


class Text(bytes):
    """A TEXT value kept as its stored bytes (which need not be valid UTF-8)."""


class Malformed(Exception):
    pass


def _varint(data, at):
    value = 0
    for index in range(9):
        if at >= len(data):
            raise Malformed("truncated varint")
        byte = data[at]
        at += 1
        if index == 8:
            return (value << 8) | byte, at
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at
    raise Malformed("varint")


def _value(data, at):
    if at >= len(data):
        raise Malformed("truncated record")
    kind = data[at]
    at += 1
    if kind in (1, 2):
        if at + 8 > len(data):
            raise Malformed("truncated number")
        raw = data[at:at + 8]
        return (struct.unpack(">q", raw)[0] if kind == 1 else struct.unpack(">d", raw)[0]), at + 8
    if kind in (3, 4):
        size, at = _varint(data, at)
        if at + size > len(data):
            raise Malformed("truncated text or blob")
        raw = data[at:at + size]
        return (Text(raw) if kind == 3 else bytes(raw)), at + size
    if kind == 5:
        return None, at
    raise Malformed(f"value type {kind}")


def parse_groups(data):
    """[(name, pk bytes, [(op, indirect, values)])] of a changeset made of INSERTs only."""
    groups, at = [], 0
    while at < len(data):
        if data[at] != 0x54:
            raise Malformed("not a changeset table header")
        column_count, at = _varint(data, at + 1)
        if column_count < 1 or column_count > 65536 or at + column_count > len(data):
            raise Malformed("column count")
        pk = bytes(data[at:at + column_count])
        at += column_count
        end = data.find(b"\x00", at)
        if end < 0:
            raise Malformed("table name not terminated")
        name = data[at:end].decode("utf-8", "surrogateescape")
        at = end + 1
        changes = []
        while at < len(data) and data[at] != 0x54:
            if at + 2 > len(data):
                raise Malformed("truncated change")
            op, indirect = data[at], data[at + 1]
            at += 2
            if op != OP_INSERT:
                raise Malformed(f'group "{name}" holds a change that is not a direct INSERT')
            values = []
            for _ in range(column_count):
                value, at = _value(data, at)
                values.append(value)
            changes.append((op, indirect, values))
        groups.append((name, pk, changes))
    return groups


def decode_rowids(data, where):
    """[{table, keyOrdinals, rows: [(key, before, after)]}]; JOURNAL_MALFORMED if it breaks §6.1."""
    def malformed(reason):
        return ChangetrailError("JOURNAL_MALFORMED", f"decode entry {where.get('seq', '?')} in {where['file']}: rowids: {reason}",
                                dict(where, reason=f"rowids: {reason}"))

    try:
        groups = parse_groups(data)
    except Malformed as error:
        raise malformed(f"not a changeset ({error})")
    tables = []
    for name, pk, changes in groups:
        key_count = len(pk) - 2
        if key_count < 1 or pk[key_count] != 0 or pk[key_count + 1] != 0 or 0 in pk[:key_count]:
            raise malformed(f'group "{name}" does not have the shape key columns + before + after')
        rows = []
        for _op, indirect, values in changes:
            if indirect != 0:
                raise malformed(f'group "{name}" holds a change that is not a direct INSERT')
            before, after = values[key_count], values[key_count + 1]
            if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (before, after)) or before == after:
                raise malformed(f'group "{name}": before/after must be distinct INTEGERs or NULL')
            if any(v is None for v in values[:key_count]):
                raise malformed(f'group "{name}": a key value is NULL')
            rows.append((values[:key_count], before, after))
        tables.append({"table": name, "keyOrdinals": list(pk[:key_count]), "rows": rows})
    return tables


def invert_rowids(tables):
    return [dict(t, rows=[(key, after, before) for key, before, after in t["rows"]]) for t in tables]
