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

/**
 * Wraps a SQLite error from an admitted operation; anything else passes through unchanged. The one
 * mapping of the write side: a full disk or an I/O error is IO_ERROR, whether SQLite raised it in
 * changetrail's own statements or in a SQLITE_ERROR that src/apply wrapped (undo applies a changeset).
 */
export function wrapSqliteError(operation: string, path: string, error: unknown): unknown {
  if (ChangetrailError.is(error, 'SQLITE_ERROR') && isDiskError(error.cause)) return wrapSqliteError(operation, path, error.cause);
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

function isDiskError(error: unknown): boolean {
  const errcode = (error as { code?: unknown } | null)?.code === 'ERR_SQLITE_ERROR' ? sqliteErrcode(error) : undefined;
  return errcode === SQLITE_IOERR || errcode === SQLITE_FULL;
}
