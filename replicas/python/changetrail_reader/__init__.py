"""changetrail_reader: read, verify and follow a changetrail journal (journal/FORMAT.md, journal/REPLAY.md)
with the Python standard library, python3-msgpack and the system's libsqlite3 (through ctypes)."""

from .errors import ChangetrailError

__all__ = ["ChangetrailError"]
