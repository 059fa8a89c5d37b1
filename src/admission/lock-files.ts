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
import { assert } from '../assert.js';
import { errnoOf, ioError } from '../journal/files.js';
import { OWNER_BYTES_MAX } from './lock-owner.js';

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

/** The lock's paths inside `journalDir`. */
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

/** Random bytes drawn in blocks: one `randomBytes` call per tenure cost ~10 µs of a ~300 µs handoff. */
const RANDOM_BLOCK_SIZE = 4096;
let randomBlock = Buffer.alloc(0);
let randomOffset = 0;

/** `byteCount` cryptographically random bytes as lowercase hex. */
export function randomHex(byteCount: number): string {
  assert(byteCount > 0, 'randomHex: at least one byte');
  assert(byteCount <= RANDOM_BLOCK_SIZE, 'randomHex: byte count within one block');
  if (randomOffset + byteCount > randomBlock.length) {
    randomBlock = randomBytes(RANDOM_BLOCK_SIZE);
    randomOffset = 0;
  }
  randomOffset += byteCount;
  return randomBlock.toString('hex', randomOffset - byteCount, randomOffset);
}

/**
 * One read buffer for the small files of the lock (owner records, tickets). The reads are synchronous, so
 * a shared buffer is safe, and it spares a 4 KiB allocation per look (GC was 6% of a handoff's CPU).
 */
const readBuffer = Buffer.allocUnsafe(OWNER_BYTES_MAX + 1);

export { errnoOf };

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
    if (code === 'ELOOP') {
      const link = lstatOrNull(path);
      return link === null ? null : { text: '', stat: link, tooLong: false };
    }
    throw ioError('open', path, cause);
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    const { text, tooLong } = readOpenFile(fd, path, byteMax);
    return { text, stat, tooLong };
  } finally {
    closeSync(fd);
  }
}

/** Reads at most `byteMax` (≤ 4096) bytes of an open file from offset 0 into the shared buffer. */
export function readOpenFile(fd: number, path: string, byteMax: number): { text: string; tooLong: boolean } {
  assert(byteMax <= OWNER_BYTES_MAX, 'readOpenFile: bound within the shared buffer');
  const buffer = readBuffer.subarray(0, byteMax + 1);
  let filled = 0;
  try {
    for (let n = -1; n !== 0 && filled < buffer.length; filled += n) n = readSync(fd, buffer, filled, buffer.length - filled, filled);
  } catch (cause) {
    throw ioError('read', path, cause);
  }
  return { text: buffer.toString('utf8', 0, Math.min(filled, byteMax)), tooLong: filled > byteMax };
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
