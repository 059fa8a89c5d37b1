"""Command line: python3 -m changetrail_reader log|verify|replicate ... (see README.md).

Exit codes: 0 success, 1 a ChangetrailError (its code printed; as JSON with --json), 2 wrong usage.
"""
import argparse
import json
import os
import signal
import sys

from .errors import ChangetrailError
from .journal import (GENESIS_FILE, OUTBOX_TABLE, SEGMENT_HEADER_SIZE, Cursor, starting_state, body_line, count_whole_frames, decode_outbox_row,
                      list_segments, log_line, read_head_marker, read_identity, verify_snapshot)
from .replica import Follower, marker_head
from .sqlite import Connection

HEAD_TABLE = "_changetrail_head"
# FORMAT.md §7: 1, or 2 when committed frames may be in the outbox (§7.1).
HEAD_TABLE_FORMATS = (1, 2)


def resolve(path):
    """(journal directory, database path or None) for a database file or a journal directory."""
    if os.path.isdir(path):
        return path, None
    if os.path.isfile(path):
        return f"{path}.changes", path
    raise ChangetrailError("JOURNAL_MISMATCH", f"open {path}: no such database or journal directory",
                           {"databaseJournalId": None, "journalJournalId": None, "reason": "journal directory missing"})


def committed_head(directory, database, identity):
    """A callable returning the committed head: the database's head row when the database is given
    (authoritative), else the `head` marker (advisory, never going backwards)."""
    if database is None:
        return marker_head(directory, identity)

    def read_row():
        with Connection(database, readonly=True) as db:
            exists = db.one("SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?", (HEAD_TABLE,))
            row = None if exists is None else db.one(f"SELECT journal_id, seq, hash, segment, segment_size, format FROM {HEAD_TABLE} WHERE id = 1")
        if row is not None and row[5] not in HEAD_TABLE_FORMATS:
            raise ChangetrailError("JOURNAL_MISMATCH", f"open {database}: head row format {row[5]} is not one this reader knows",
                                   {"databaseJournalId": row[0], "journalJournalId": identity.journal_id.hex(), "reason": "head row format"})
        if row is None or row[0] != identity.journal_id.hex():
            found = None if row is None else row[0]
            raise ChangetrailError("JOURNAL_MISMATCH", f"open {database}: it does not record journal {identity.journal_id.hex()}",
                                   {"databaseJournalId": found, "journalJournalId": identity.journal_id.hex(), "reason": "journal ids differ"})
        return row

    def head():
        row = read_row()
        for _attempt in range(3):
            try:
                refuse_if_database_behind(directory, identity, row[1], row[3], row[4])
                break
            except ChangetrailError:
                # A writer may have committed since the row was read: a database really behind cannot move.
                again = read_row()
                if again[1] == row[1]:
                    raise
                row = again
        return {"seq": row[1], "hash": bytes(row[2]), "outbox": lambda: read_outbox(database)}

    return head


def read_outbox(database):
    """The outbox rows by seq (FORMAT.md §7.1), read after the head row: they cover every committed frame
    the segments lack."""
    with Connection(database, readonly=True) as db:
        exists = db.one("SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?", (OUTBOX_TABLE,))
        rows = [] if exists is None else db.rows(f"SELECT seq, segment, offset, frame FROM {OUTBOX_TABLE} ORDER BY seq")
    return {row.seq: row for row in map(decode_outbox_row, rows)}


def refuse_if_database_behind(directory, identity, seq, segment, segment_size):
    """FORMAT.md §7: a `head` marker naming a later entry, more than one whole frame past the head row,
    or a later segment that does not start at head + 1 mean the database is older than its journal."""
    marker = read_head_marker(directory)
    marker_ahead = marker is not None and marker["journalId"] == identity.journal_id and marker["seq"] > seq
    later = [first for first in list_segments(directory) if first > segment]
    extra = count_whole_frames(directory, segment, segment_size) + sum(count_whole_frames(directory, first, SEGMENT_HEADER_SIZE) for first in later)
    if marker_ahead or extra > 1 or any(first != seq + 1 for first in later):
        journal_seq = max(marker["seq"] if marker_ahead else 0, seq + extra)
        raise ChangetrailError("DATABASE_BEHIND_JOURNAL",
                               f"open journal: the journal holds committed entries up to {journal_seq} but the database is at {seq} "
                               "(restored from an older copy?)", {"databaseSeq": seq, "journalSeq": journal_seq})


def emit(value):
    sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def source_of(args):
    """(journal directory, database or None): `--database` names the database of a journal directory."""
    directory, database = resolve(args.source)
    return directory, args.database if args.database is not None else database


def command_log(args):
    directory, database = source_of(args)
    identity = read_identity(directory)
    head = committed_head(directory, database, identity)()
    for entry in Cursor(directory, identity).read(head["seq"], head["hash"], head.get("outbox")):
        if entry.seq >= args.from_seq and (args.to_seq is None or entry.seq <= args.to_seq):
            emit(body_line(entry) if args.bodies else log_line(entry))
    return 0


def command_verify(args):
    directory, database = source_of(args)
    identity = read_identity(directory)
    head = committed_head(directory, database, identity)()
    start, base_seq, _, base = starting_state(directory, identity)
    verify_snapshot(directory, start["file"], start["sha256"], start["size"])
    count = 0
    for entry in Cursor(directory, identity).read(head["seq"], head["hash"], head.get("outbox")):
        snapshot = entry.body.get("snapshot")
        if snapshot is not None:
            verify_snapshot(directory, snapshot["file"], snapshot["sha256"], snapshot["size"])
        if base is not None and entry.seq == base["checkpointSeq"]:
            check_base_checkpoint(entry, base)
        count += 1
    report = {"headSeq": head["seq"], "headHash": head["hash"].hex(),
              "head": {"journalId": identity.journal_id.hex(), "seq": head["seq"], "hash": head["hash"].hex()}, "entries": count, "replayed": False}
    if base_seq > 0:
        report["retainedAfter"] = base_seq
    emit(report)
    return 0


def check_base_checkpoint(entry, base):
    """FORMAT.md §11.2: the base file names a checkpoint entry exactly as the chain holds it."""
    at, snapshot = entry.body.get("at"), entry.body.get("snapshot")
    if entry.kind != "checkpoint" or at is None or at["seq"] != base["seq"] or at["hash"] != base["hash"] or snapshot != base["snapshot"]:
        raise ChangetrailError("JOURNAL_CHAIN_BROKEN", f"verify: the base file names checkpoint {base['checkpointSeq']}, which the journal does not hold as recorded",
                               {"seq": base["checkpointSeq"], "file": "base"})


def command_replicate(args):
    directory, database = source_of(args)
    identity = read_identity(directory)
    follower = Follower(directory, args.replica, committed_head(directory, database, identity)).open()
    stop = {"now": False}

    def request_stop(_signum, _frame):
        stop["now"] = True

    try:
        if args.follow:
            signal.signal(signal.SIGINT, request_stop)
            signal.signal(signal.SIGTERM, request_stop)
            follower.follow(poll_s=args.poll_ms / 1000, should_stop=lambda: stop["now"])
        else:
            follower.sync()
        position = follower.position
        emit({"journalId": position["journalId"], "seq": position["seq"], "hash": position["hash"].hex(), "applied": follower.applied})
        return 0
    finally:
        follower.close()


def parser():
    top = argparse.ArgumentParser(prog="python3 -m changetrail_reader", description="read, verify and follow a changetrail journal")
    top.add_argument("--json", action="store_true", help="errors as JSON on stderr")
    commands = top.add_subparsers(dest="command", required=True)
    log = commands.add_parser("log", help="committed entries as NDJSON (the fields of changetrail log --json)")
    log.add_argument("source", help="a database (its journal beside it) or a journal directory")
    log.add_argument("--from", dest="from_seq", type=int, default=1)
    log.add_argument("--to", dest="to_seq", type=int, default=None)
    log.add_argument("--bodies", action="store_true", help="whole entry bodies (changeset, sql, snapshot in hex) instead of log fields")
    verify = commands.add_parser("verify", help="manifest, genesis digest, frames, CRCs, hash chain, snapshots up to the committed head")
    verify.add_argument("source")
    replicate = commands.add_parser("replicate", help="apply committed entries to a replica database, exactly once")
    replicate.add_argument("source")
    replicate.add_argument("replica")
    replicate.add_argument("--follow", action="store_true", help="keep following until SIGINT/SIGTERM")
    replicate.add_argument("--poll-ms", type=int, default=50)
    for sub in (log, verify, replicate):
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="errors as JSON on stderr")
        sub.add_argument("--database", default=None, help="the database of a journal directory given as source (head row and outbox)")
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    handlers = {"log": command_log, "verify": command_verify, "replicate": command_replicate}
    try:
        return handlers[args.command](args)
    except ChangetrailError as error:
        if args.json:
            sys.stderr.write(json.dumps({"error": error.to_json()}, ensure_ascii=False) + "\n")
        else:
            sys.stderr.write(f"changetrail_reader: {error.code}: {error.message}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
