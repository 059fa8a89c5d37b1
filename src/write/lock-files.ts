/**
 * Names and synchronous file primitives of the admission lock (journal/LOCK.md §2).
 *
 * Every entry the lock protocol creates in the journal directory starts with `lock`, so the journal code
 * can ignore them by prefix. Nothing here touches the database file (closing any descriptor of it would
 * drop SQLite's fcntl locks, write-admission.md §2.4).
 *
 * The calls are synchronous on purpose: lock operations are a few metadata syscalls on the critical path
 * of every handoff, and a synchronous `mkdir` + `rmdir` took 96 µs against 160 µs through `fs.promises`
 * on the 2-core ext4 test VM (the thread-pool round trip dominates).
 */
import { closeSync, fstatSync, lstatSync, openSync, readSync, renameSync, rmSync, unlinkSync, writeSync, constants, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ioError } from '../journal/files.js';

/** The lock directory. */
export const LOCK_DIR_NAME = 'lock';
/** The owner record inside the lock directory. */
export const OWNER_FILE_NAME = 'owner.json';
/** The ticket queue directory (fair handoff). */
export const QUEUE_DIR_NAME = 'lock.queue';
/** The breakers' sub-lock, serializing stale takeovers. */
export const BREAK_DIR_NAME = 'lock.break';
/** Prefix of a prepared lock directory (holding an `owner.json`), renamed to `lock` to acquire. */
export const SPARE_PREFIX = 'lock.spare-';
/** Prefix of anything claimed for removal: a stale lock, or garbage being collected. Never reused. */
export const STALE_PREFIX = 'lock.stale-';
/** Prefix of a waiter's clock probe file. */
export const PROBE_PREFIX = 'lock.probe-';

/** Absolute paths of the lock's entries in one journal directory. */
export interface LockPaths {
  journalDir: string;
  lock: string;
  owner: string;
  queue: string;
  breakLock: string;
}

export function lockPaths(journalDir: string): LockPaths {
  const lock = join(journalDir, LOCK_DIR_NAME);
  return {
    journalDir,
    lock,
    owner: join(lock, OWNER_FILE_NAME),
    queue: join(journalDir, QUEUE_DIR_NAME),
    breakLock: join(journalDir, BREAK_DIR_NAME),
  };
}

/** `n` random bytes as lowercase hex. */
export function randomHex(byteCount: number): string {
  return randomBytes(byteCount).toString('hex');
}

/** The errno code of a Node fs error, if any. */
export function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** `lstat` with BigInt times, or null when the path does not exist. */
export function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch (cause) {
    if (errnoOf(cause) === 'ENOTDIR') return null;
    throw ioError('stat', path, cause);
  }
}

/** A small file's text and stat, read through one descriptor so both describe the same inode. */
export interface SmallFile {
  text: string;
  stat: BigIntStats;
  tooLong: boolean;
}

/** Reads at most `byteMax` bytes of a regular file without following a symlink; null if it is absent. */
export function readSmallFile(path: string, byteMax: number): SmallFile | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (cause) {
    const code = errnoOf(cause);
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code === 'ELOOP') return { text: '', stat: lstatSync(path, { bigint: true }), tooLong: false };
    throw ioError('open', path, cause);
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    const buffer = Buffer.allocUnsafe(byteMax + 1);
    let filled = 0;
    for (;;) {
      const n = readSync(fd, buffer, filled, buffer.length - filled, filled);
      if (n === 0 || filled + n === buffer.length) { filled += n; break; }
      filled += n;
    }
    return { text: buffer.toString('utf8', 0, Math.min(filled, byteMax)), stat, tooLong: filled > byteMax };
  } catch (cause) {
    throw ioError('read', path, cause);
  } finally {
    closeSync(fd);
  }
}

/** Writes all of `text` at offset 0 of an open descriptor, looping on short writes (write-admission A4). */
export function writeWhole(fd: number, text: string, path: string): number {
  const bytes = Buffer.from(text);
  let written = 0;
  while (written < bytes.length) {
    let n: number;
    try {
      n = writeSync(fd, bytes, written, bytes.length - written, written);
    } catch (cause) {
      throw ioError('write', path, cause);
    }
    if (n <= 0) throw ioError('write', path, Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' }));
    written += n;
  }
  return bytes.length;
}

/** Creates a new file (O_EXCL) holding `text`; on failure removes what it created. Returns its stat. */
export function createFileExclusive(path: string, text: string): BigIntStats {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  } catch (cause) {
    throw ioError('create', path, cause);
  }
  try {
    writeWhole(fd, text, path);
    return fstatSync(fd, { bigint: true });
  } catch (error) {
    removeQuietly(path);
    throw error;
  } finally {
    closeSync(fd);
  }
}

/**
 * "Now" in the filesystem's clock domain: the mtime of a probe file just written in `dir` (Borg's idea,
 * borgbackup/borg#10077). Lock mtimes are compared only with this, never with the local clock.
 */
export function readFilesystemNowNs(dir: string): bigint {
  const path = join(dir, `${PROBE_PREFIX}${randomHex(8)}`);
  const stat = createFileExclusive(path, '.');
  removeQuietly(path);
  return stat.mtimeNs;
}

/** `rename` mapped to IO_ERROR; returns false when the source has vanished (ENOENT). */
export function renameIfPresent(from: string, to: string): boolean {
  try {
    renameSync(from, to);
    return true;
  } catch (cause) {
    if (errnoOf(cause) === 'ENOENT') return false;
    throw ioError('rename', from, cause);
  }
}

/** Removes a file or directory tree, ignoring its absence. */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true, maxRetries: 2 });
  } catch (cause) {
    throw ioError('remove', path, cause);
  }
}

/** Best-effort unlink for cleanup paths, where the original error matters more. */
export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone, or cleanup of a failed step: the original error is the one to report.
  }
}

/** The newest of a stat's mtime and ctime (ns): when it last changed, in the filesystem's clock. */
export function changedAtNs(stat: BigIntStats): bigint {
  return stat.ctimeNs > stat.mtimeNs ? stat.ctimeNs : stat.mtimeNs;
}

/** Milliseconds between two nanosecond instants of the same (filesystem) clock. */
export function elapsedMs(fromNs: bigint, toNs: bigint): number {
  return Number(toNs - fromNs) / 1e6;
}
