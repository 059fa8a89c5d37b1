"""The follower (journal/REPLAY.md): keeps a replica database equal to the journal's committed head,
applying each entry exactly once. The replica's position (journal id, seq, entry hash) is a row of its own
table, written in the same transaction as the entry's rows, so a kill at any point leaves either both or
neither. Resync entries replace the replica with their snapshot by an atomic rename.
"""
import os
import shutil
import time

from . import apply
from .errors import ChangetrailError
from .journal import GENESIS_FILE, Cursor, starting_state, open_journal_file, read_head_marker, read_identity, verify_snapshot
from .sqlite import Connection

# The replica's position row, in the layout of changetrail's Node follower (src/replica/position-table.ts),
# so that either follower can continue a replica the other made. `resume` (the Node reader's byte
# location) and `change_counter` (its foreign-write check) are left NULL here: both are optional there.
# Test hook: sleep this long inside each entry's transaction, after the position update and before COMMIT,
# so that a test's SIGKILL lands inside transactions as well as between them.
TEST_PAUSE_S = float(os.environ.get("CHANGETRAIL_READER_TEST_PAUSE_MS", "0")) / 1000
POSITION_TABLE = "_changetrail_replica"
POSITION_FORMAT = 1
POSITION_DDL = (f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1), format INTEGER NOT NULL, "
                "journal_id TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, resume TEXT, source TEXT NOT NULL, "
                "change_counter INTEGER, applied_at INTEGER NOT NULL)")


def now_ms():
    return int(time.time() * 1000)


def not_a_replica(path, reason):
    return ChangetrailError("REPLICA_NOT_A_REPLICA", f"replicate: {path} is not a changetrail replica ({reason}); it is left untouched",
                            {"replica": path, "reason": reason})


def read_position(db, path):
    exists = db.one("SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?", (POSITION_TABLE,))
    if exists is None:
        raise not_a_replica(path, f"no {POSITION_TABLE} table")
    row = db.one(f"SELECT format, journal_id, seq, hash FROM {POSITION_TABLE} WHERE id = 1")
    if row is None:
        raise not_a_replica(path, f"no {POSITION_TABLE} row")
    if row[0] != POSITION_FORMAT:
        raise not_a_replica(path, f"replica table format {row[0]}")
    return {"journalId": row[1], "seq": row[2], "hash": bytes.fromhex(row[3])}


def fsync_directory(path):
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install_base(source, replica_path, journal_id, seq, entry_hash, description):
    """Copies a base snapshot (genesis or resync) to a temporary file beside the replica, records the
    position in it, and renames it over the replica: the replacement is atomic."""
    temp = f"{replica_path}.{os.getpid()}.tmp"
    try:
        handle = open_journal_file(source)
        if handle is None:
            raise FileNotFoundError(source)
        with handle, open(temp, "wb") as target:
            shutil.copyfileobj(handle, target, 1 << 20)
        with Connection(temp) as db:
            db.execute("PRAGMA journal_mode = DELETE")
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"DROP TABLE IF EXISTS {POSITION_TABLE}")
            db.execute(POSITION_DDL)
            db.rows(f"INSERT INTO {POSITION_TABLE} (id, format, journal_id, seq, hash, resume, source, change_counter, applied_at) "
                    "VALUES (1, ?, ?, ?, ?, NULL, ?, NULL, ?)", (POSITION_FORMAT, journal_id, seq, entry_hash.hex(), description, now_ms()))
            db.execute("COMMIT")
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        for suffix in ("-journal", "-wal", "-shm"):
            if os.path.exists(replica_path + suffix):
                os.unlink(replica_path + suffix)
        os.replace(temp, replica_path)
        fsync_directory(replica_path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


class Follower:
    """Follows `directory` into `replica_path`. `head()` returns the committed head to read up to."""

    def __init__(self, directory, replica_path, head):
        self.directory = directory
        self.description = os.path.abspath(directory)
        self.replica_path = replica_path
        self.head = head
        self.identity = read_identity(directory)
        self.journal_id = self.identity.journal_id.hex()
        self.cursor = Cursor(directory, self.identity)
        self.db = None
        self.position = None
        self.applied = 0

    def open(self):
        if not os.path.exists(self.replica_path):
            self.install_starting_state()
        self.db = Connection(self.replica_path)
        try:
            position = read_position(self.db, self.replica_path)
            if position["journalId"] != self.journal_id:
                raise ChangetrailError("REPLICA_SOURCE_MISMATCH",
                                       f"replicate: {self.replica_path} follows journal {position['journalId']}, not {self.journal_id}",
                                       {"replica": self.replica_path, "replicaJournalId": position["journalId"], "sourceJournalId": self.journal_id})
            if self.db.one("PRAGMA journal_mode")[0] != "delete":
                self.db.execute("PRAGMA journal_mode = DELETE")
        except BaseException:
            self.close()
            raise
        self.position = position
        return self

    def install_starting_state(self):
        """Genesis, or a pruned journal's base checkpoint (FORMAT.md §11): the oldest state retained."""
        start, seq, entry_hash, _ = starting_state(self.directory, self.identity)
        verify_snapshot(self.directory, start["file"], start["sha256"], start["size"])
        install_base(os.path.join(self.directory, start["file"]), self.replica_path, self.journal_id, seq, entry_hash, self.description)

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    def sync(self):
        """Applies every committed entry past the replica's position. Returns the number applied."""
        head = self.head()
        if head["seq"] < self.position["seq"]:
            return 0  # the head seen so far lags the replica (an advisory marker not yet rewritten): wait
        count = 0
        base = self.cursor.base
        if base is not None and self.position["seq"] < base["seq"]:
            # Stranded behind the retained history: rebase on the base checkpoint, then go on from there.
            self.close()
            self.install_starting_state()
            self.db = Connection(self.replica_path)
            self.position = {"journalId": self.journal_id, "seq": base["seq"], "hash": base["hash"]}
        for entry in self.cursor.read(head["seq"], head["hash"], head.get("outbox")):
            if entry.seq < self.position["seq"]:
                continue
            if entry.seq == self.position["seq"]:
                if entry.hash != self.position["hash"]:
                    raise self.diverged(entry.seq, entry.hash.hex(), head["seq"])
                continue
            self.apply(entry)
            count += 1
        if self.position["seq"] == 0 and self.position["hash"] != self.identity.root_hash:
            raise self.diverged(0, self.identity.root_hash.hex(), head["seq"])
        self.applied += count
        return count

    def diverged(self, seq, journal_hash, head_seq):
        return ChangetrailError("REPLICA_DIVERGED",
                                f"replicate: {self.replica_path} applied another entry {seq} than the journal holds (another history?)",
                                {"replica": self.replica_path, "seq": seq, "replicaHash": self.position["hash"].hex(),
                                 "journalHash": journal_hash, "sourceHeadSeq": head_seq})

    def apply(self, entry):
        def record():
            self.db.rows(f"UPDATE {POSITION_TABLE} SET seq = ?, hash = ?, resume = NULL, change_counter = NULL, applied_at = ? WHERE id = 1",
                         (entry.seq, entry.hash.hex(), now_ms()))
            if TEST_PAUSE_S > 0:
                time.sleep(TEST_PAUSE_S)

        kind = entry.kind
        if kind == "write" or kind == "checkpoint":  # a checkpoint changes nothing: only the position moves
            apply.apply_write(self.db, entry, record)
        elif kind == "schema":
            apply.apply_schema(self.db, entry, record)
        elif kind == "resync":
            snapshot = entry.body.get("snapshot")
            if snapshot is None:
                raise ChangetrailError("JOURNAL_MALFORMED", f"replay entry {entry.seq}: a resync entry without snapshot",
                                       {"file": entry.file, "offset": entry.offset, "reason": "resync entry without snapshot", "seq": entry.seq})
            verify_snapshot(self.directory, snapshot["file"], snapshot["sha256"], snapshot["size"])
            self.close()
            install_base(os.path.join(self.directory, snapshot["file"]), self.replica_path, self.journal_id, entry.seq, entry.hash,
                         self.description)
            self.db = Connection(self.replica_path)
        self.position = {"journalId": self.journal_id, "seq": entry.seq, "hash": entry.hash}

    def follow(self, poll_s=0.05, should_stop=lambda: False):
        """Applies entries as they commit until should_stop(); a torn tail or a missing segment inside the
        committed range is waited for (a copied journal may arrive out of order), anything else raises."""
        while not should_stop():
            try:
                self.sync()
            except ChangetrailError as error:
                if error.code not in ("JOURNAL_TORN_TAIL", "JOURNAL_BEHIND_DATABASE"):
                    raise
            time.sleep(poll_s)


def marker_head(directory, identity):
    """The committed head from the `head` marker, never going backwards (FORMAT.md §7)."""
    seen = {"seq": 0, "hash": identity.root_hash}

    def head():
        marker = read_head_marker(directory)
        if marker is not None and marker["journalId"] == identity.journal_id and marker["seq"] >= seen["seq"]:
            seen["seq"], seen["hash"] = marker["seq"], marker["hash"]
        return dict(seen)

    return head
