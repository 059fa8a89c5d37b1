/** Mapping of node:sqlite errors to changetrail codes. */
import { ChangetrailError } from '../errors.js';

/** SQLite primary result codes that mean the disk, not the statement, failed. */
const SQLITE_IOERR = 10;
const SQLITE_FULL = 13;
export const SQLITE_BUSY = 5;

export function sqliteErrcode(error: unknown): number | undefined {
  const errcode = (error as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' ? errcode & 0xff : undefined;
}

/** Wraps a SQLite error from changetrail's own statements; anything else passes through unchanged. */
export function wrapSqliteError(operation: string, path: string, error: unknown): unknown {
  if (error instanceof ChangetrailError || (error as { code?: unknown })?.code !== 'ERR_SQLITE_ERROR') return error;
  const errcode = sqliteErrcode(error);
  if (errcode === SQLITE_IOERR || errcode === SQLITE_FULL) {
    return new ChangetrailError('IO_ERROR', `${operation} ${path}: ${(error as Error).message}`, {
      operation, path, errno: errcode === SQLITE_FULL ? 'SQLITE_FULL' : 'SQLITE_IOERR',
    }, { cause: error });
  }
  return new ChangetrailError('SQLITE_ERROR', `${operation} ${path}: ${(error as Error).message}`, {
    operation, ...(errcode === undefined ? {} : { errcode }),
  }, { cause: error });
}
