"""A small codec of SQLite's changeset format (the session extension's; see
shared/reference/sqlite-session.md §1): table groups of INSERT/UPDATE/DELETE records. Values are kept as
their exact bytes, so decode + encode gives the input back byte for byte."""
import struct

OP_INSERT, OP_UPDATE, OP_DELETE = 0x12, 0x17, 0x09
UNDEFINED = b"\x00"


class Malformed(Exception):
    pass


def read_varint(data, at):
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


def write_varint(value):
    if value < 0:
        raise ValueError("varint of a negative number")
    if value <= 0x7F:
        return bytes([value])
    if value > 0x00FFFFFFFFFFFFFF:  # 9 bytes: the last carries 8 bits
        out = [value & 0xFF]
        value >>= 8
        for _ in range(8):
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        return bytes(reversed(out))
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def read_field(data, at):
    """The raw bytes of one value (type byte included) and the offset after it."""
    if at >= len(data):
        raise Malformed("truncated record")
    kind = data[at]
    if kind in (0, 5):
        return bytes(data[at:at + 1]), at + 1
    if kind in (1, 2):
        if at + 9 > len(data):
            raise Malformed("truncated number")
        return bytes(data[at:at + 9]), at + 9
    if kind in (3, 4):
        size, end = read_varint(data, at + 1)
        if end + size > len(data):
            raise Malformed("truncated text or blob")
        return bytes(data[at:end + size]), end + size
    raise Malformed(f"value type {kind}")


def field_value(raw):
    """A raw field as a Python value: None (NULL), int, float, ('text', bytes), bytes (blob); UNDEFINED stays."""
    kind = raw[0]
    if kind == 0:
        return UNDEFINED
    if kind == 5:
        return None
    if kind == 1:
        return struct.unpack(">q", raw[1:9])[0]
    if kind == 2:
        return struct.unpack(">d", raw[1:9])[0]
    _size, at = read_varint(raw, 1)
    return ("text", raw[at:]) if kind == 3 else raw[at:]


def encode_field(value):
    if value is None:
        return b"\x05"
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"\x01" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\x02" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode()
        return b"\x03" + write_varint(len(data)) + data
    if isinstance(value, tuple) and value[0] == "text":
        return b"\x03" + write_varint(len(value[1])) + bytes(value[1])
    if type(value).__name__ == "Text":
        return b"\x03" + write_varint(len(value)) + bytes(value)
    data = bytes(value)
    return b"\x04" + write_varint(len(data)) + data


class Change:
    __slots__ = ("op", "indirect", "old", "new")

    def __init__(self, op, indirect, old, new):
        self.op, self.indirect, self.old, self.new = op, indirect, old, new


class Group:
    __slots__ = ("header", "name", "pk", "changes")

    def __init__(self, header, name, pk, changes):
        self.header, self.name, self.pk, self.changes = header, name, pk, changes


def decode(data):
    """[Group] of a changeset ('T' groups; a patchset is Malformed here)."""
    groups, at = [], 0
    while at < len(data):
        start = at
        if data[at] != 0x54:
            raise Malformed("not a changeset table header")
        column_count, at = read_varint(data, at + 1)
        if column_count < 1 or column_count > 65536 or at + column_count > len(data):
            raise Malformed("column count")
        pk = bytes(data[at:at + column_count])
        at += column_count
        end = data.find(b"\x00", at)
        if end < 0:
            raise Malformed("table name not terminated")
        name = data[at:end].decode("utf-8", "surrogateescape")
        at = end + 1
        group = Group(bytes(data[start:at]), name, pk, [])
        while at < len(data) and data[at] != 0x54:
            if at + 2 > len(data):
                raise Malformed("truncated change")
            op, indirect = data[at], data[at + 1]
            at += 2
            if op not in (OP_INSERT, OP_UPDATE, OP_DELETE):
                raise Malformed(f"op {op}")
            old = new = None
            if op in (OP_UPDATE, OP_DELETE):
                old = []
                for _ in range(column_count):
                    raw, at = read_field(data, at)
                    old.append(raw)
            if op in (OP_UPDATE, OP_INSERT):
                new = []
                for _ in range(column_count):
                    raw, at = read_field(data, at)
                    new.append(raw)
            group.changes.append(Change(op, indirect, old, new))
        groups.append(group)
    return groups


def encode(groups):
    out = bytearray()
    for group in groups:
        out += group.header
        for change in group.changes:
            out += bytes([change.op, change.indirect])
            for record in (change.old, change.new):
                if record is not None:
                    for raw in record:
                        out += raw
    return bytes(out)
