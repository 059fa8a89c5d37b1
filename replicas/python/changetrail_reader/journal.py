"""Reading a changetrail journal directory (journal/FORMAT.md): manifest, head, segments, frames, entry
bodies and the hash chain. Nothing is yielded before its frame's CRC, body shape and prevHash are checked.
"""
import datetime
import errno
import hashlib
import math
import os
import re
import stat
import struct
import zlib

import msgpack

from .errors import ChangetrailError
from .rowids import decode_rowids

FORMAT_VERSION = 1
ENTRY_BODY_VERSION = 1
MANIFEST_FILE, MANIFEST_MAGIC, MANIFEST_SIZE = "manifest", 0x43544A4D, 80
SEGMENT_MAGIC, SEGMENT_HEADER_SIZE = 0x43544A53, 40
HEAD_FILE, HEAD_MAGIC, HEAD_SIZE = "head", 0x43544A48, 72
GENESIS_FILE = "genesis.db"
FRAME_HEADER_SIZE = 16
BODY_SIZE_MAX = 1 << 30
HASH_SIZE = 32
SEQ_MAX = (1 << 53) - 1
SEGMENT_NAME = re.compile(r"^(\d{20})\.seg$")
SNAPSHOT_FILE = re.compile(r"^[A-Za-z0-9._-]+$")
# FORMAT.md §6.2: limits shared by writers and readers.
TIME_MAX_MS = 253402300799999
TEXT_BYTES_MAX = 262144
SQL_BYTES_MAX = 16777216
META_DEPTH_MAX = 64
READ_CHUNK_SIZE = 1 << 20

ENTRY_BODY_VERSION_ROWIDS = 2
ENTRY_BODY_VERSION_CHECKPOINT = 3
BODY_KEYS = ("v", "seq", "kind", "time", "epoch", "actor", "message", "meta", "prevHash", "tables", "changeset",
             "sql", "snapshot", "undoes", "rowids", "at")
REQUIRED_KEYS = set(BODY_KEYS[:11])
KINDS = ("write", "schema", "resync", "checkpoint")
# FORMAT.md §11.2: the `base` file of a pruned journal.
BASE_FILE, BASE_MAGIC, BASE_SIZE = "base", 0x43544A42, 120


def crc32(*parts):
    value = 0
    for part in parts:
        value = zlib.crc32(part, value)
    return value & 0xFFFFFFFF


def sha256(*parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def malformed(file, offset, reason, seq=None, message=None):
    details = {"file": file, "offset": offset, "reason": reason}
    if seq is not None:
        details["seq"] = seq
    return ChangetrailError("JOURNAL_MALFORMED", message or f"decode {file}{'' if seq is None else f' entry {seq}'}: {reason}", details)


JOURNAL_FILE = re.compile(r"^(manifest|head|base|genesis\.db|snapshot-\d+\.db|checkpoint-\d+\.db|\d+\.seg)$")


def unexpected_file(path, found):
    return ChangetrailError("JOURNAL_FILE_UNEXPECTED",
                            f"open {path}: it is a {'special file' if found == 'other' else found}, not a regular file; journal files are never followed through links",
                            {"path": path, "found": found})


def check_journal_files(directory):
    """Refuses a journal directory in which one of changetrail's files is a symlink or not a regular file."""
    for name in os.listdir(directory):
        if not JOURNAL_FILE.match(name):
            continue
        path = os.path.join(directory, name)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            raise unexpected_file(path, "symlink" if stat.S_ISLNK(mode) else "directory" if stat.S_ISDIR(mode) else "other")


def open_journal_file(path):
    """A journal file opened for reading without following a symlink (a binary file object), or None
    if it does not exist; anything but a regular file is JOURNAL_FILE_UNEXPECTED."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):
            raise unexpected_file(path, "symlink")
        if error.errno == errno.EISDIR:
            raise unexpected_file(path, "directory")
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise unexpected_file(path, "other")
    return os.fdopen(fd, "rb")


def read_file(path, size_max):
    """The first size_max + 1 bytes of a file, or None if it does not exist."""
    try:
        handle = open_journal_file(path)
        if handle is None:
            return None
        with handle:
            return handle.read(size_max + 1)
    except OSError as error:
        raise ChangetrailError("IO_ERROR", f"read {path}: {error.strerror}", {"operation": "read", "path": path, "errno": errno_name(error)})


def errno_name(error):
    return errno.errorcode.get(error.errno, str(error.errno))


def safe_u64(data, offset, file, field):
    (value,) = struct.unpack_from(">Q", data, offset)
    if value > SEQ_MAX:
        raise malformed(file, offset, f"{field} out of range")
    return value


def check_preamble(data, magic, file, what):
    if struct.unpack_from(">I", data, 0)[0] != magic:
        raise malformed(file, 0, "bad magic", message=f"decode {what} {file}: bad magic")
    version = struct.unpack_from(">H", data, 4)[0]
    if version != FORMAT_VERSION:
        raise ChangetrailError("JOURNAL_VERSION_UNSUPPORTED", f"decode {what} {file}: version {version} is not supported (this reader reads version 1)",
                               {"file": file, "version": version, "supported": FORMAT_VERSION})
    if struct.unpack_from(">H", data, 6)[0] != 0:
        raise malformed(file, 6, "unknown flags", message=f"decode {what} {file}: unknown flags")


def check_crc(data, at, file, what):
    if struct.unpack_from(">I", data, at)[0] != crc32(data[:at]):
        raise ChangetrailError("JOURNAL_CHECKSUM_MISMATCH", f"decode {what} {file}: checksum mismatch", {"file": file, "offset": 0})


class Identity:
    """The decoded manifest and the chain root (SHA-256 of its 80 bytes)."""

    def __init__(self, data):
        if len(data) != MANIFEST_SIZE:
            raise malformed(MANIFEST_FILE, 0, "wrong size", message=f"decode manifest: size {len(data)}, expected {MANIFEST_SIZE}")
        check_preamble(data, MANIFEST_MAGIC, MANIFEST_FILE, "manifest")
        check_crc(data, 76, MANIFEST_FILE, "manifest")
        self.journal_id = data[8:24]
        self.created_at_ms = safe_u64(data, 24, MANIFEST_FILE, "createdAtMs")
        self.genesis_sha256 = data[32:64]
        self.genesis_size = safe_u64(data, 64, MANIFEST_FILE, "genesisSize")
        self.root_hash = sha256(data)

    def to_json(self):
        return {"journalId": self.journal_id.hex(), "createdAtMs": self.created_at_ms,
                "genesisSha256": self.genesis_sha256.hex(), "genesisSize": self.genesis_size}


def read_identity(directory):
    if os.path.isdir(directory):
        check_journal_files(directory)
    data = read_file(os.path.join(directory, MANIFEST_FILE), MANIFEST_SIZE)
    if data is None:
        raise ChangetrailError("JOURNAL_MISMATCH", f"open {directory}: no manifest: not a changetrail journal directory",
                               {"databaseJournalId": None, "journalJournalId": None, "reason": "journal directory missing"})
    return Identity(data)


def decode_head(data):
    if len(data) < HEAD_SIZE:
        raise ChangetrailError("JOURNAL_TORN_TAIL", f"decode head: torn ({len(data)} bytes)", {"file": HEAD_FILE, "offset": 0})
    data = data[:HEAD_SIZE]
    check_preamble(data, HEAD_MAGIC, HEAD_FILE, "head")
    check_crc(data, 68, HEAD_FILE, "head")
    return {"journalId": data[8:24], "seq": safe_u64(data, 24, HEAD_FILE, "seq"), "hash": data[32:64]}


def read_head_marker(directory):
    """The head marker, or None when missing, torn or corrupt (it is advisory: keep the last valid one)."""
    data = read_file(os.path.join(directory, HEAD_FILE), HEAD_SIZE)
    if data is None:
        return None
    try:
        return decode_head(data)
    except ChangetrailError:
        return None


def segment_name(first_seq):
    return f"{first_seq:020d}.seg"


def list_segments(directory):
    found = []
    for name in os.listdir(directory):
        match = SEGMENT_NAME.match(name)
        if match and 1 <= int(match.group(1)) <= SEQ_MAX:
            found.append(int(match.group(1)))
    return sorted(found)


def decode_segment_header(data, file):
    if len(data) < SEGMENT_HEADER_SIZE:
        raise ChangetrailError("JOURNAL_TORN_TAIL", f"decode segment {file}: header is torn ({len(data)} bytes)", {"file": file, "offset": 0})
    data = data[:SEGMENT_HEADER_SIZE]
    check_preamble(data, SEGMENT_MAGIC, file, "segment")
    check_crc(data, 36, file, "segment")
    return data[8:24], safe_u64(data, 24, file, "firstSeq")


# ---- entry bodies ----------------------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _integral(value):
    """A msgpack integer, or a float64 holding an integer (how msgpack-javascript writers encode integers
    of 2^32 and more, FORMAT.md §6): the int, else None."""
    if _is_int(value):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= SEQ_MAX:
        return int(value)
    return None


INT_KEYS = ("v", "seq", "time", "epoch", "undoes")


def _count(value):
    return _is_int(value) and 0 <= value <= SEQ_MAX


def _is_json(value):
    if value is None or isinstance(value, (bool, str)):
        return True
    if _is_int(value):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_is_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _utf8_size(text):
    return len(text.encode("utf-8"))


def _depth_within(value, depth_max):
    """True if maps and arrays nest at most depth_max levels (value itself is level 1); no recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > depth_max:
            return False
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return True


KIND_RULES = {
    # kind: (required keys, forbidden keys)
    "schema": ({"sql"}, {"snapshot", "undoes", "at"}),
    "resync": ({"snapshot"}, {"sql", "undoes", "at"}),
    "write": (set(), {"sql", "snapshot", "at"}),
    "checkpoint": ({"snapshot", "at"}, {"sql", "undoes", "rowids"}),
}


def _check_kind(body):
    """FORMAT.md §6.2: which optional keys each kind has; the reason it breaks a rule, else None."""
    required, forbidden = KIND_RULES[body["kind"]]
    missing = sorted(required - set(body))
    present = sorted(forbidden & set(body))
    if missing or present:
        return f"a {body['kind']} entry " + ("needs " + ", ".join(missing) if missing else "may not have " + ", ".join(present))
    if body["kind"] == "resync" and body["snapshot"]["file"] != f"snapshot-{body['seq']}.db":
        return f"a resync entry's snapshot is snapshot-{body['seq']}.db"
    if body["kind"] == "write" and "undoes" in body and body["undoes"] >= body["seq"]:
        return "undoes names a later entry"
    if (body["kind"] == "checkpoint") != (body["v"] == ENTRY_BODY_VERSION_CHECKPOINT):
        return "checkpoint entries are exactly the version-3 bodies"
    if body["kind"] == "checkpoint":
        if body["snapshot"]["file"] != f"checkpoint-{body['seq']}.db":
            return f"a checkpoint entry's snapshot is checkpoint-{body['seq']}.db"
        if body["at"]["seq"] >= body["seq"]:
            return "a checkpoint holds the state of an earlier entry"
        if len(body["changeset"]) > 0 or len(body["tables"]) > 0:
            return "a checkpoint changes nothing"
    return None


def _check_table(value):
    return (isinstance(value, dict) and set(value) == {"table", "inserts", "updates", "deletes"} and isinstance(value["table"], str)
            and _count(value["inserts"]) and _count(value["updates"]) and _count(value["deletes"]))


def _check_snapshot(value):
    return (isinstance(value, dict) and set(value) == {"file", "sha256", "size"} and isinstance(value["file"], str)
            and SNAPSHOT_FILE.match(value["file"]) is not None and isinstance(value["sha256"], bytes)
            and len(value["sha256"]) == HASH_SIZE and _count(value["size"]))


FIELD_CHECKS = {
    "v": lambda v: _is_int(v) and v in (ENTRY_BODY_VERSION, ENTRY_BODY_VERSION_ROWIDS, ENTRY_BODY_VERSION_CHECKPOINT),
    "seq": lambda v: _is_int(v) and 1 <= v <= SEQ_MAX,
    "kind": lambda v: v in KINDS,
    "time": lambda v: _is_int(v) and 0 <= v <= TIME_MAX_MS,
    "epoch": _count,
    "actor": lambda v: v is None or (isinstance(v, str) and _utf8_size(v) <= TEXT_BYTES_MAX),
    "message": lambda v: v is None or (isinstance(v, str) and _utf8_size(v) <= TEXT_BYTES_MAX),
    "meta": lambda v: v is None or (isinstance(v, dict) and _depth_within(v, META_DEPTH_MAX) and _is_json(v)),
    "prevHash": lambda v: isinstance(v, bytes) and len(v) == HASH_SIZE,
    "tables": lambda v: isinstance(v, list) and all(_check_table(t) for t in v),
    "changeset": lambda v: isinstance(v, bytes),
    "sql": lambda v: isinstance(v, str) and _utf8_size(v) <= SQL_BYTES_MAX,
    "snapshot": _check_snapshot,
    "undoes": lambda v: _is_int(v) and 1 <= v <= SEQ_MAX,
    "rowids": lambda v: isinstance(v, bytes),
    "at": lambda v: isinstance(v, dict) and set(v) == {"seq", "hash"} and _count(v["seq"]) and isinstance(v["hash"], bytes) and len(v["hash"]) == HASH_SIZE,
}


def decode_body(data, file, offset, seq):
    """Decodes and validates an entry body (FORMAT.md §6): a msgpack map with exactly the known keys."""
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except Exception as error:  # msgpack raises several types (ExtraData, FormatError, UnicodeDecodeError...)
        raise malformed(file, offset, "body is not msgpack", seq, f"decode entry {seq} in {file}: not msgpack ({type(error).__name__})")
    if not isinstance(body, dict) or not all(isinstance(k, str) for k in body):
        raise malformed(file, offset, "body is not a map with string keys", seq)
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise malformed(file, offset, f"unknown keys {unknown}", seq)
    missing = [k for k in BODY_KEYS if k in REQUIRED_KEYS and k not in body]
    if missing:
        raise malformed(file, offset, f"missing keys {missing}", seq)
    for key in INT_KEYS:
        if key in body and _integral(body[key]) is not None:
            body[key] = _integral(body[key])
    for table in body["tables"] if isinstance(body["tables"], list) else []:
        if isinstance(table, dict):
            for key in ("inserts", "updates", "deletes"):
                if _integral(table.get(key)) is not None:
                    table[key] = _integral(table[key])
    if isinstance(body.get("snapshot"), dict) and _integral(body["snapshot"].get("size")) is not None:
        body["snapshot"]["size"] = _integral(body["snapshot"]["size"])
    if isinstance(body.get("at"), dict) and _integral(body["at"].get("seq")) is not None:
        body["at"]["seq"] = _integral(body["at"]["seq"])
    for key, value in body.items():
        if not FIELD_CHECKS[key](value):
            raise malformed(file, offset, f"{key}: wrong type or out of range", seq)
    reason = _check_kind(body)
    if reason is not None:
        raise malformed(file, offset, reason, seq)
    if ("rowids" in body) != (body["v"] == ENTRY_BODY_VERSION_ROWIDS):
        raise malformed(file, offset, "rowids: present exactly in version-2 bodies", seq)
    if "rowids" in body:
        decode_rowids(body["rowids"], {"file": file, "offset": offset, "seq": seq})
    return body


# ---- reading committed entries ---------------------------------------------------------------------------

class Entry:
    """A verified entry: its decoded body, hash, and where its frame is."""

    __slots__ = ("body", "hash", "file", "offset", "end")

    def __init__(self, body, entry_hash, file, offset, end):
        self.body, self.hash, self.file, self.offset, self.end = body, entry_hash, file, offset, end

    @property
    def seq(self):
        return self.body["seq"]

    @property
    def kind(self):
        return self.body["kind"]


def read_base(directory, identity):
    """FORMAT.md §11.2: where retained history starts (None: at genesis). A pointer checked by the chain."""
    data = read_file(os.path.join(directory, BASE_FILE), BASE_SIZE)
    if data is None:
        return None
    if len(data) != BASE_SIZE:
        raise malformed(BASE_FILE, 0, "wrong size")
    check_preamble(data, BASE_MAGIC, BASE_FILE, "base")
    check_crc(data, 116, BASE_FILE, "base")
    if data[8:24] != identity.journal_id:
        raise malformed(BASE_FILE, 0, "base names another journal")
    seq = safe_u64(data, 24, BASE_FILE, "seq")
    checkpoint_seq = safe_u64(data, 64, BASE_FILE, "checkpointSeq")
    if seq < 1 or checkpoint_seq <= seq:
        raise malformed(BASE_FILE, 0, "base is not before its checkpoint")
    return {"seq": seq, "hash": data[32:64], "checkpointSeq": checkpoint_seq,
            "snapshot": {"file": f"checkpoint-{checkpoint_seq}.db", "sha256": data[72:104], "size": safe_u64(data, 104, BASE_FILE, "size")}}


def starting_state(directory, identity):
    """The file history starts from and the position it is the state at (FORMAT.md §11)."""
    base = read_base(directory, identity)
    if base is None:
        return {"file": GENESIS_FILE, "sha256": identity.genesis_sha256, "size": identity.genesis_size}, 0, identity.root_hash, None
    return base["snapshot"], base["seq"], base["hash"], base


def history_pruned(seq, base):
    return ChangetrailError("HISTORY_PRUNED", f"read journal: entry {seq} was pruned; retained history begins at entry {base['seq'] + 1}",
                            {"seq": seq, "earliestSeq": base["seq"] + 1, "baseSeq": base["seq"], "checkpointSeq": base["checkpointSeq"]})


def behind(database_seq, journal_seq):
    return ChangetrailError("JOURNAL_BEHIND_DATABASE",
                            f"read journal: the committed head is entry {database_seq} but the journal ends at entry {journal_seq}: committed entries are missing",
                            {"databaseSeq": database_seq, "journalSeq": journal_seq})


class Cursor:
    """Reads committed entries in order from entry 1. `read(head_seq, head_hash)` yields the entries up to
    that head and can be called again with a later head (tailing). Nothing is yielded before the chain
    from it up to the head is verified (FORMAT.md §8): a first pass checks every frame, body and link up
    to the head and keeps the hashes; a second pass re-reads and yields the entries whose hash matches."""

    def __init__(self, directory, identity):
        self.directory = directory
        self.identity = identity
        # A pruned journal starts after its base (FORMAT.md §11.2): entry base+1 names the base hash.
        _, base_seq, base_hash, self.base = starting_state(directory, identity)
        self.next_seq = base_seq + 1
        self.prev_hash = base_hash
        self.segment = None  # first seq of the segment holding entry next_seq (None: not known yet)
        self.offset = SEGMENT_HEADER_SIZE
        self.outbox = _Lazy(None)

    def read(self, head_seq, head_hash, outbox=None):
        """`outbox`, when the head came from the database: a callable returning its outbox rows
        ({seq: OutboxRow}), read only if the segments end before the head (FORMAT.md §7.1)."""
        self.outbox = _Lazy(outbox)
        if head_seq == 0 and head_hash != self.identity.root_hash:
            raise ChangetrailError("JOURNAL_CHAIN_BROKEN", "read journal: the head at entry 0 is not the chain root", {"seq": 0})
        if self.next_seq > head_seq:
            return
        start = (self.next_seq, self.prev_hash, self.segment, self.offset)
        hashes = [entry.hash for entry in self._scan(head_seq)]
        if hashes[-1] != head_hash:
            self._restore(start)
            raise ChangetrailError("JOURNAL_CHAIN_BROKEN", f"read journal: entry {head_seq} is not the committed head's entry",
                                   {"seq": head_seq})
        self._restore(start)
        for entry in self._scan(head_seq):
            if entry.hash != hashes[entry.seq - start[0]]:
                raise ChangetrailError("JOURNAL_CHAIN_BROKEN", f"read {entry.file}: entry {entry.seq} changed while it was read",
                                       {"seq": entry.seq, "file": entry.file})
            yield entry

    def _restore(self, state):
        self.next_seq, self.prev_hash, self.segment, self.offset = state

    def _scan(self, head_seq):
        """Verified entries next_seq..head_seq; on error the cursor is left where the scan started."""
        start = (self.next_seq, self.prev_hash, self.segment, self.offset)
        try:
            while self.next_seq <= head_seq:
                yield self._next_entry(head_seq)
        except Exception:
            self._restore(start)
            raise

    def _next_entry(self, head_seq):
        try:
            return self._next_segment_entry(head_seq)
        except ChangetrailError as error:
            if error.code not in ("JOURNAL_TORN_TAIL", "JOURNAL_BEHIND_DATABASE"):
                raise
            rows = self.outbox.get()
            if not rows:
                raise
            row = rows.get(self.next_seq)
            if row is None:
                # Deleted since the segment was read: rows go only once their frames are in the segments.
                return self._next_segment_entry(head_seq)
            if not segment_holds_prefix(self.directory, row):
                raise
            return self._outbox_entry(row)

    def _outbox_entry(self, row):
        """Entry next_seq from the outbox: the same checks as a segment frame (FORMAT.md §7.1)."""
        name = segment_name(row.segment)
        frame = row.frame
        if len(frame) < FRAME_HEADER_SIZE:
            raise malformed(OUTBOX_TABLE, 0, "frame is torn", row.seq)
        (size,) = struct.unpack_from(">I", frame, 0)
        if size < 1 or size > BODY_SIZE_MAX or len(frame) != FRAME_HEADER_SIZE + size:
            raise malformed(OUTBOX_TABLE, 0, "frame size out of range", row.seq)
        entry = self._verified_entry(frame[:FRAME_HEADER_SIZE], frame[FRAME_HEADER_SIZE:], name, row.offset, row.seq)
        self.segment = row.segment
        return entry

    def _next_segment_entry(self, head_seq):
        seq = self.next_seq
        if self.segment is None and self.base is not None:
            self._locate(seq, head_seq)
        elif self.segment is None or self._segment_size() <= self.offset:
            self._enter_segment(seq, head_seq)
        name = segment_name(self.segment)
        path = os.path.join(self.directory, name)
        handle = open_journal_file(path)
        if handle is None:
            raise behind(head_seq, seq - 1)
        with handle:
            handle.seek(self.offset)
            header = handle.read(FRAME_HEADER_SIZE)
            if len(header) < FRAME_HEADER_SIZE:
                raise ChangetrailError("JOURNAL_TORN_TAIL", f"decode frame in {name} at {self.offset}: header is torn",
                                       {"file": name, "offset": self.offset, "seq": seq})
            (size,) = struct.unpack_from(">I", header, 0)
            if size < 1 or size > BODY_SIZE_MAX:
                raise malformed(name, self.offset, "body size out of range", seq)
            body = handle.read(size)
        if len(body) < size:
            raise ChangetrailError("JOURNAL_TORN_TAIL", f"decode frame in {name} at {self.offset}: body is torn",
                                   {"file": name, "offset": self.offset, "seq": seq})
        return self._verified_entry(header, body, name, self.offset, seq)

    def _verified_entry(self, header, body, name, offset, seq):
        """CRC, seq, body shape and prevHash of the frame of entry `seq` at `offset` of segment `name`;
        advances the cursor past it."""
        self.offset = offset
        if struct.unpack_from(">I", header, 12)[0] != crc32(header[:12], body):
            raise ChangetrailError("JOURNAL_CHECKSUM_MISMATCH", f"decode frame in {name} at {self.offset}: checksum mismatch (entry {seq})",
                                   {"file": name, "offset": self.offset, "seq": seq})
        frame_seq = safe_u64(header, 4, name, "seq")
        if frame_seq != seq:
            raise ChangetrailError("JOURNAL_GAP", f"read {name}: expected entry {seq}, found {frame_seq}",
                                   {"file": name, "expectedSeq": seq, "foundSeq": frame_seq})
        decoded = decode_body(body, name, self.offset, seq)
        if decoded["seq"] != seq:
            raise malformed(name, self.offset, "frame and body seq differ", seq)
        if decoded["prevHash"] != self.prev_hash:
            raise ChangetrailError("JOURNAL_CHAIN_BROKEN", f"read {name}: entry {seq} does not chain to entry {seq - 1}", {"seq": seq, "file": name})
        entry = Entry(decoded, sha256(body), name, self.offset, self.offset + FRAME_HEADER_SIZE + len(body))
        self.offset = entry.end
        self.prev_hash = entry.hash
        self.next_seq = seq + 1
        return entry

    def _segment_size(self):
        return os.path.getsize(os.path.join(self.directory, segment_name(self.segment)))

    def _locate(self, seq, head_seq):
        """The first retained entry of a pruned journal may sit inside a segment: hop its frame headers."""
        first = [s for s in list_segments(self.directory) if s <= seq]
        if not first:
            self._missing(seq, head_seq)
        self._enter_segment(first[-1], head_seq)
        with open_journal_file(os.path.join(self.directory, segment_name(self.segment))) as handle:
            for _ in range(seq - self.segment):
                handle.seek(self.offset)
                header = handle.read(FRAME_HEADER_SIZE)
                if len(header) < FRAME_HEADER_SIZE:
                    raise behind(head_seq, seq - 1)
                (size,) = struct.unpack_from(">I", header, 0)
                if size < 1 or size > BODY_SIZE_MAX:
                    raise malformed(segment_name(self.segment), self.offset, "body size out of range", seq)
                self.offset += FRAME_HEADER_SIZE + size

    def _missing(self, seq, head_seq):
        base = read_base(self.directory, self.identity)
        if base is not None and seq <= base["seq"]:
            raise history_pruned(seq, base)
        raise behind(head_seq, seq - 1)

    def _enter_segment(self, seq, head_seq):
        path = os.path.join(self.directory, segment_name(seq))
        data = read_file(path, SEGMENT_HEADER_SIZE)
        if data is None:
            self._missing(seq, head_seq)
            if self.segment is None and seq == 1:
                raise behind(head_seq, 0)
            raise behind(head_seq, seq - 1)
        name = segment_name(seq)
        journal_id, first_seq = decode_segment_header(data, name)
        if journal_id != self.identity.journal_id or first_seq != seq:
            raise malformed(name, 0, "segment header does not match its journal or name",
                            message=f"read {name}: header names journal {journal_id.hex()} seq {first_seq}")
        self.segment = seq
        self.offset = SEGMENT_HEADER_SIZE


OUTBOX_TABLE = "_changetrail_outbox"


class OutboxRow:
    """One row of the database's outbox: a committed frame and where it belongs (FORMAT.md §7.1)."""

    def __init__(self, seq, segment, offset, frame):
        self.seq, self.segment, self.offset, self.frame = seq, segment, offset, frame


def decode_outbox_row(row):
    """Checks one (seq, segment, offset, frame) row as stored; the frame itself is checked when read."""
    seq, segment, offset, frame = row
    if not _is_int(seq) or not 1 <= seq <= SEQ_MAX:
        raise malformed(OUTBOX_TABLE, 0, "seq is not a positive integer")
    if not _is_int(segment) or not 1 <= segment <= seq:
        raise malformed(OUTBOX_TABLE, 0, "segment out of range", seq)
    if not _is_int(offset) or offset < SEGMENT_HEADER_SIZE or (segment == seq and offset != SEGMENT_HEADER_SIZE):
        raise malformed(OUTBOX_TABLE, 0, "offset out of range", seq)
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise malformed(OUTBOX_TABLE, 0, "frame is not a blob", seq)
    return OutboxRow(seq, segment, offset, bytes(frame))


def segment_holds_prefix(directory, row):
    """Whether the row's segment exists and holds a prefix (none, part or all) of the row's frame at its
    offset: the segment lacks it, it was never damaged (FORMAT.md §7.1)."""
    handle = open_journal_file(os.path.join(directory, segment_name(row.segment)))
    if handle is None:
        return False
    with handle:
        handle.seek(row.offset)
        present = handle.read(len(row.frame))
    return row.frame.startswith(present)


class _Lazy:
    """Calls `load` once, on first use; {} without one."""

    def __init__(self, load):
        self.load = load
        self.value = None

    def get(self):
        if self.value is None:
            self.value = {} if self.load is None else self.load()
        return self.value


def count_whole_frames(directory, first_seq, start):
    """Whole frames with a valid CRC from `start` in a segment; a torn or corrupt one ends the count."""
    handle = open_journal_file(os.path.join(directory, segment_name(first_seq)))
    if handle is None:
        return 0
    count = 0
    with handle:
        handle.seek(start)
        while True:
            header = handle.read(FRAME_HEADER_SIZE)
            if len(header) < FRAME_HEADER_SIZE:
                return count
            (size,) = struct.unpack_from(">I", header, 0)
            if size < 1 or size > BODY_SIZE_MAX:
                return count
            body = handle.read(size)
            if len(body) < size or struct.unpack_from(">I", header, 12)[0] != crc32(header[:12], body):
                return count
            count += 1


def verify_snapshot(directory, file, expected_sha256, expected_size):
    path = os.path.join(directory, file)
    digest = hashlib.sha256()
    size = 0
    try:
        handle = open_journal_file(path)
        if handle is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        with handle:
            while True:
                chunk = handle.read(READ_CHUNK_SIZE)
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
    except OSError as error:
        raise ChangetrailError("IO_ERROR", f"digest {path}: {error.strerror}", {"operation": "digest", "path": path, "errno": errno_name(error)})
    if size != expected_size or digest.digest() != expected_sha256:
        raise ChangetrailError("JOURNAL_CHECKSUM_MISMATCH", f"verify {file}: its SHA-256 or size differs from the journal's record",
                               {"file": file, "offset": 0})


def iso_time(ms):
    """JavaScript's Date.prototype.toISOString for ms since the epoch (extended years beyond 9999)."""
    cycle_ms = 146097 * 86400000  # 400 Gregorian years
    shift = 0
    while ms >= 253402300800000:  # 10000-01-01
        ms -= cycle_ms
        shift += 400
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)
    year = moment.year + shift
    text = f"{year:04d}" if year <= 9999 else f"+{year:06d}"
    return text + moment.strftime("-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _js_numbers(value):
    """JSON numbers as JavaScript prints them: integral floats without a fraction (msgpack writers in
    JavaScript encode large integers as float64)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_js_numbers(v) for v in value]
    return value


def log_line(entry):
    """The fields `changetrail log --json` prints for an entry."""
    body = entry.body
    line = {"seq": body["seq"], "kind": body["kind"], "time": iso_time(body["time"]), "actor": body["actor"],
            "message": body["message"], "hash": entry.hash.hex(), "prevHash": body["prevHash"].hex(), "tables": body["tables"]}
    if body["meta"] is not None:
        line["meta"] = _js_numbers(body["meta"])
    if "undoes" in body:
        line["undoes"] = body["undoes"]
    return line


def _hex_bytes(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _hex_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hex_bytes(v) for v in value]
    return value


def body_line(entry):
    """The whole decoded body (without `v`), byte strings as hex, plus the entry hash."""
    line = {k: _hex_bytes(v) for k, v in entry.body.items() if k != "v"}
    line["hash"] = entry.hash.hex()
    return line
