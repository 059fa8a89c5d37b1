/**
 * Durable file operations of the journal directory. Nothing here ever opens the database file itself:
 * on POSIX, closing any descriptor of a file drops every fcntl lock the process holds on it, including
 * SQLite's (write-admission.md §2.4).
 */
import { chmodSync, closeSync, fstatSync, fsyncSync, lstatSync, openSync, readdirSync, readSync, renameSync, statSync, writeSync, rmSync, constants, type Stats } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ChangetrailError } from '../errors.js';

/** The errno code of a Node fs error, if any. */
export function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Wraps a Node fs error as IO_ERROR with the operation and path, keeping the cause. */
export function ioError(operation: string, path: string, cause: unknown): ChangetrailError<'IO_ERROR'> {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new ChangetrailError('IO_ERROR', `${operation} ${path}: ${(cause as Error)?.message ?? String(cause)}`, {
    operation, path, ...(errno === undefined ? {} : { errno }),
  }, { cause });
}

/** Runs `fn`, turning filesystem errors into IO_ERROR. ChangetrailErrors pass through. */
export function io<T>(operation: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    if (cause instanceof ChangetrailError || !(cause as NodeJS.ErrnoException)?.code) throw cause;
    throw ioError(operation, path, cause);
  }
}

/** Writes all of `bytes` at `position`, looping on short writes (seen under `ulimit -f`, write-admission A4). */
export function writeAllAt(fd: number, bytes: Uint8Array, position: number): void {
  let written = 0;
  while (written < bytes.byteLength) {
    const n = writeSync(fd, bytes, written, bytes.byteLength - written, position + written);
    if (n <= 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    written += n;
  }
}

/** Reads exactly `length` bytes at `position`, or fewer if the file ends first. */
export function readAt(fd: number, length: number, position: number): Uint8Array {
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = readSync(fd, buffer, filled, length - filled, position + filled);
    if (n === 0) break;
    filled += n;
  }
  return filled === length ? buffer : buffer.subarray(0, filled);
}

/** fsyncs a file by path (a file this process wrote and closed, never the database: §2.4 above). */
export function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function fsyncDirectory(dir: string): void {
  io('fsync directory', dir, () => {
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

/** Replaces `dir/name` atomically and durably: temp file, fsync, rename, fsync the directory. */
export function writeFileDurably(dir: string, name: string, bytes: Uint8Array): void {
  const target = join(dir, name);
  const temp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  io('write', target, () => {
    try {
      const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, journalFileMode(dir));
      try {
        writeAllAt(fd, bytes, 0);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, target);
    } catch (cause) {
      rmSync(temp, { force: true });
      throw cause;
    }
  });
  fsyncDirectory(dir);
}

/** Reads a whole small file, or null when it does not exist. */
export function readSmallFile(path: string, sizeMax: number): Uint8Array | null {
  return io('read', path, () => {
    const fd = openJournalFile(path, constants.O_RDONLY);
    if (fd === null) return null;
    try {
      return readAt(fd, sizeMax + 1, 0);
    } finally {
      closeSync(fd);
    }
  });
}

export function listDirectory(dir: string): string[] {
  return io('list', dir, () => readdirSync(dir));
}

/**
 * Opens a journal file without following a symlink (O_NOFOLLOW) and refuses anything but a regular file
 * (O_NONBLOCK, so a planted FIFO cannot block the open): a link planted in the journal directory cannot
 * redirect reads or writes to another file (issue 9 §2.4). Returns null when the file does not exist.
 *
 * @throws ChangetrailError JOURNAL_FILE_UNEXPECTED `{ path, found }`; other errors as thrown by fs.
 */
export function openJournalFile(path: string, flags: number, mode?: number): number | null {
  let fd: number;
  try {
    fd = openSync(path, flags | constants.O_NOFOLLOW | constants.O_NONBLOCK, mode);
  } catch (cause) {
    const errno = errnoOf(cause);
    if (errno === 'ENOENT') return null;
    if (errno === 'ELOOP' || errno === 'EMLINK') throw unexpectedFile(path, 'symlink');
    if (errno === 'EISDIR') throw unexpectedFile(path, 'directory');
    throw cause;
  }
  const stat = fstatSync(fd);
  if (!stat.isFile()) {
    closeSync(fd);
    throw unexpectedFile(path, stat.isDirectory() ? 'directory' : 'other');
  }
  return fd;
}

function unexpectedFile(path: string, found: 'symlink' | 'directory' | 'other'): ChangetrailError<'JOURNAL_FILE_UNEXPECTED'> {
  return new ChangetrailError('JOURNAL_FILE_UNEXPECTED', `open ${path}: it is a ${found === 'other' ? 'special file' : found}, not a regular file; journal files are never followed or replaced through links`, { path, found });
}

/** Names of the files changetrail keeps in a journal directory (checked by `checkJournalFiles`). */
const JOURNAL_FILE = /^(manifest|head|base|genesis\.db|snapshot-\d+\.db|checkpoint-\d+\.db|\d+\.seg)$/;

/**
 * Refuses a journal directory in which one of changetrail's files is a symlink or not a regular file.
 *
 * @throws ChangetrailError JOURNAL_FILE_UNEXPECTED, IO_ERROR.
 */
export function checkJournalFiles(dir: string): void {
  for (const name of listDirectory(dir)) {
    if (!JOURNAL_FILE.test(name)) continue;
    const path = join(dir, name);
    const stat = io('stat', path, () => lstatSync(path, { throwIfNoEntry: false }));
    if (stat === undefined || stat.isFile()) continue;
    throw unexpectedFile(path, stat.isSymbolicLink() ? 'symlink' : stat.isDirectory() ? 'directory' : 'other');
  }
}

/**
 * The mode of new journal files: the read and write bits of the journal directory, which
 * `restrictJournalPermissions` keeps no wider than the database's (the umask may narrow it further).
 */
export function journalFileMode(dir: string): number {
  return io('stat', dir, () => statSync(dir).mode & 0o666) | 0o600;
}

/** The widest mode a journal directory may have for a database of mode `databaseMode`: read gives r-x, write gives w. */
export function journalDirectoryMode(databaseMode: number): number {
  const rw = databaseMode & 0o666;
  return rw | ((rw & 0o444) >> 2) | 0o700;
}

/**
 * Runs `fn`, returning undefined when its path vanished meanwhile: other processes create and rename the
 * lock's spare and queue directories at any moment, so a walk of the journal directory races them.
 */
function unlessVanished<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ChangetrailError && error.code === 'IO_ERROR' && (error.details as { errno?: string }).errno === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Makes the journal directory and everything in it no more readable or writable than the database file
 * (issue 9 §2.3: a 0600 database under umask 022 got 0644 segments and a 0755 directory). Only bits are
 * removed, never added; files of other owners and symlinks are left alone.
 */
export function restrictJournalPermissions(dir: string, databaseMode: number): void {
  const dirMax = journalDirectoryMode(databaseMode);
  const fileMax = (databaseMode & 0o666) | 0o600;
  const uid = process.getuid?.();
  const restrict = (path: string, stat: Stats): void => {
    if (uid !== undefined && stat.uid !== uid) return;
    const max = stat.isDirectory() ? dirMax : fileMax;
    const mode = stat.mode & 0o7777;
    if ((mode & ~max & 0o777) !== 0) unlessVanished(() => io('chmod', path, () => chmodSync(path, mode & (max | 0o7000))));
  };
  const walk = (path: string): void => {
    const stat = io('stat', path, () => lstatSync(path, { throwIfNoEntry: false }));
    if (stat === undefined || stat.isSymbolicLink()) return;
    restrict(path, stat);
    if (stat.isDirectory()) for (const name of unlessVanished(() => listDirectory(path)) ?? []) walk(join(path, name));
  };
  walk(dir);
}
