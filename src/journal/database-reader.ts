/**
 * Opening a tracked database for reading without leaving files behind (issue 9 §1.2).
 *
 * A read-only SQLite connection to a WAL database that no process has open creates `-wal` and `-shm` on
 * its first read and cannot remove them: only the last read-write connection deletes them at close, after
 * taking the database's EXCLUSIVE lock to prove it is the last (sqlite3WalClose). So when the database is
 * in WAL mode (file header bytes 18/19 = 2) and nothing of SQLite's lies beside it (no `-wal`, `-shm` or
 * `-journal`), and this process may write it, the reader opens it read-write without create (`mode=rw`)
 * and `PRAGMA query_only = ON`: SQLite's own close then removes what the open created, under the same
 * locks every connection uses. Reads are SQLite's ordinary WAL snapshots, so a concurrent writer is never
 * seen half-committed; if writers committed and exited while the reader was open, its close checkpoints
 * their frames into the database, as any connection's close does.
 *
 * Every other case opens `readOnly`, which never writes: rollback-journal databases (a read-write
 * connection would roll back a crashed writer's hot journal; a reader reports it instead), WAL databases
 * with a `-wal` (their files exist already), files this process may not write, and platforms without
 * `/proc/self/fd`.
 */
import { accessSync, closeSync, constants, existsSync, openSync, readSync, statSync, type BigIntStats } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pathToFileURL } from 'node:url';
import { findHeldDescriptor, isDescriptorOf } from './held-descriptor.js';

export interface DatabaseReaderOptions {
  /** SQLite's busy timeout in milliseconds. */
  timeoutMs?: number;
}

/** Offsets of the file format's write and read versions in the database header: 2 means WAL. */
const WRITE_VERSION_OFFSET = 18;
const WAL_FORMAT_VERSION = 2;

/**
 * Write version by file (device:inode), so the header is read once per file and process: finding SQLite's
 * descriptor scans /proc/self/fd, ~200 µs beside 60 open descriptors (measured) against ~50 µs for the
 * whole read-only open. The version changes only with `PRAGMA journal_mode`; a stale entry costs at most
 * the empty -wal/-shm pair of the plain read-only open, or a query_only connection to a rollback database
 * (used only when no -journal exists, so there is no hot journal it could roll back).
 */
const writeVersions = new Map<string, number | null>();
const WRITE_VERSIONS_MAX = 256;

/**
 * Opens `path` for reading only (see the file comment for how). Throws what `new DatabaseSync` throws.
 *
 * @example
 * const db = openDatabaseReader('app.db', { timeoutMs: 5_000 });
 * try { db.prepare('SELECT count(*) FROM t').get(); } finally { db.close(); }
 */
export function openDatabaseReader(path: string, options: DatabaseReaderOptions = {}): DatabaseSync {
  const timeout = options.timeoutMs ?? 5_000;
  if (!opensWithoutLeftovers(path)) return new DatabaseSync(path, { readOnly: true, timeout });
  const url = pathToFileURL(path);
  url.searchParams.set('mode', 'rw');
  const db = new DatabaseSync(url, { timeout });
  try {
    db.exec('PRAGMA query_only = ON');
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Whether a read-write (query-only) connection is needed to leave no files, and safe to use. */
function opensWithoutLeftovers(path: string): boolean {
  if (process.platform !== 'linux') return false;
  if (['-wal', '-shm', '-journal'].some((suffix) => existsSync(path + suffix))) return false;
  if (!writable(path) || !writable(dirname(path))) return false;
  return readWriteVersion(path) === WAL_FORMAT_VERSION;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The header's write version, or null when unreadable. Read through a descriptor SQLite already holds
 * for the file when there is one: closing any descriptor of the file drops this process's POSIX locks on
 * it, SQLite's included (write-admission.md §2.4). Without one, no connection of this process holds a
 * lock on the file, and a descriptor of our own is safe to close.
 */
function readWriteVersion(path: string): number | null {
  let target: BigIntStats;
  try {
    target = statSync(path, { bigint: true });
  } catch {
    return null;
  }
  if (!target.isFile()) return null;
  const file = `${target.dev}:${target.ino}`;
  if (writeVersions.has(file)) return writeVersions.get(file)!;
  const version = readWriteVersionOnce(path, target);
  if (writeVersions.size >= WRITE_VERSIONS_MAX) writeVersions.clear();
  writeVersions.set(file, version);
  return version;
}

function readWriteVersionOnce(path: string, target: BigIntStats): number | null {
  const held = findHeldDescriptor(target);
  if (held !== null) return readByte(held, target);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    return readByte(fd, target);
  } finally {
    closeSync(fd);
  }
}

function readByte(fd: number, target: BigIntStats): number | null {
  const byte = Buffer.alloc(1);
  try {
    if (readSync(fd, byte, 0, 1, WRITE_VERSION_OFFSET) !== 1) return null;
  } catch {
    return null;
  }
  return isDescriptorOf(fd, target) ? byte[0]! : null;
}

