"""The `rowids` of a version-2 entry body (FORMAT.md §6.1): a changeset with one group per keyed rowid
table — the PRIMARY KEY columns, then `before` and `after` — whose changes are direct INSERTs. Decoded
here in pure Python (no SQLite needed to validate a journal)."""
from .changeset import OP_INSERT, UNDEFINED, Malformed, decode, field_value
from .errors import ChangetrailError


class Text(bytes):
    """A TEXT value kept as its stored bytes (which need not be valid UTF-8)."""


def _insert_groups(data):
    """[(name, pk bytes, [(indirect, values)])] of a changeset that must hold INSERTs only."""
    groups = []
    for group in decode(data):
        changes = []
        for change in group.changes:
            if change.op != OP_INSERT:
                raise Malformed(f'group "{group.name}" holds a change that is not a direct INSERT')
            changes.append((change.indirect, [_plain(field_value(raw)) for raw in change.new]))
        groups.append((group.name, group.pk, changes))
    return groups


def _plain(value):
    if isinstance(value, tuple):
        return Text(value[1])
    if value is UNDEFINED:
        raise Malformed("an undefined value in an INSERT")
    return value


def decode_rowids(data, where):
    """[{table, keyOrdinals, rows: [(key, before, after)]}]; JOURNAL_MALFORMED if it breaks §6.1."""
    def malformed(reason):
        return ChangetrailError("JOURNAL_MALFORMED", f"decode entry {where.get('seq', '?')} in {where['file']}: rowids: {reason}",
                                dict(where, reason=f"rowids: {reason}"))

    try:
        groups = _insert_groups(data)
    except Malformed as error:
        raise malformed(f"not a changeset ({error})")
    tables = []
    for name, pk, changes in groups:
        key_count = len(pk) - 2
        if key_count < 1 or pk[key_count] != 0 or pk[key_count + 1] != 0 or 0 in pk[:key_count]:
            raise malformed(f'group "{name}" does not have the shape key columns + before + after')
        rows = []
        for indirect, values in changes:
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
