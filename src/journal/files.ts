/**
 * Durable file operations of the journal directory. Nothing here ever opens the database file itself:
 * on POSIX, closing any descriptor of a file drops every fcntl lock the process holds on it, including
 * SQLite's (write-admission.md §2.4).
 */
import { closeSync, fsyncSync, openSync, readdirSync, readSync, renameSync, writeSync, rmSync, constants } from 'node:fs';
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
      const fd = openSync(temp, 'wx', 0o644);
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
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw cause;
    }
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
