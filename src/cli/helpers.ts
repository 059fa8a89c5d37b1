/** Argument helpers shared by the commands: the database argument, sequence numbers, audit options, SQL input. */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ChangetrailError } from '../errors.js';
import { io } from '../journal/files.js';
import { MANIFEST_FILE } from '../journal/format.js';
import { readCommittedHead } from '../journal/journal.js';
import type { Position } from '../journal/position.js';
import { canonicalDatabasePath } from '../write/trail.js';
import type { JsonValue } from '../journal/entry.js';
import type { Entry } from '../write/entry-view.js';
import { usage } from './command.js';

/**
 * The database argument of a command that needs a tracked database, as the one canonical path (symlinks
 * resolved) that the journal and lock are named after. A database whose journal is missing gets one way
 * forward (JOURNAL_MISMATCH and its hint); an untracked one is told to run init.
 */
export function trackedDatabase(command: string, path: string): string {
  const databasePath = io('resolve database path', path, () => canonicalDatabasePath(path));
  const stat = statSync(databasePath, { throwIfNoEntry: false });
  if (stat === undefined) throw new ChangetrailError('NOT_A_DATABASE', `${command}: ${databasePath} does not exist`, { path: databasePath, reason: 'missing' });
  if (stat.isDirectory()) throw new ChangetrailError('NOT_A_DATABASE', `${command}: ${databasePath} is a directory, not a database file`, { path: databasePath, reason: 'directory' });
  if (stat.size > 0 && !hasSqliteHeader(databasePath)) {
    throw new ChangetrailError('NOT_A_DATABASE', `${command}: ${databasePath} is not a SQLite database`, { path: databasePath, reason: 'not a SQLite database' });
  }
  const journalDir = `${databasePath}.changes`;
  if (existsSync(join(journalDir, MANIFEST_FILE))) return databasePath;
  let head: Position;
  try {
    head = readCommittedHead(databasePath);
  } catch (error) {
    if (ChangetrailError.is(error, 'JOURNAL_MISMATCH')) {
      throw usage(command, `${databasePath} is not tracked by changetrail (no journal); run \`changetrail init ${databasePath}\` first`);
    }
    throw error;
  }
  throw new ChangetrailError('JOURNAL_MISMATCH',
    `${command}: ${databasePath} records journal ${head.journalId} at entry ${head.seq}, but its journal directory ${journalDir}/ is missing or empty`,
    { databaseJournalId: head.journalId, journalJournalId: null, reason: 'journal directory missing' });
}

/** The 16 bytes every SQLite database file starts with (an empty file is an empty database too). */
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Whether the file starts like a SQLite database, so that reading commands say NOT_A_DATABASE as init does
 * (SQLite itself only says "file is not a database" at the first read). A file this process cannot read
 * passes: opening it reports that with its own code.
 */
function hasSqliteHeader(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return true;
  }
  try {
    const header = Buffer.alloc(SQLITE_HEADER.length);
    return readSync(fd, header, 0, header.length, 0) === header.length && header.equals(SQLITE_HEADER);
  } finally {
    closeSync(fd);
  }
}

/** A sequence number argument: a non-negative integer. */
export function parseSeq(command: string, text: string | undefined, what = 'sequence number'): number {
  const seq = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(seq)) throw usage(command, `not a ${what}: ${text}`);
  return seq;
}

/** An entry number argument: entries are numbered from 1. */
export function parseEntrySeq(command: string, text: string | undefined): number {
  const seq = parseSeq(command, text);
  if (seq < 1) throw usage(command, `entries are numbered from 1 (got ${seq})`);
  return seq;
}

export function auditOptions(values: { message?: string | undefined; actor?: string | undefined; meta?: string | undefined }, command = 'write'):
  { message?: string; actor?: string; meta?: Record<string, JsonValue> } {
  return {
    ...(values.message === undefined ? {} : { message: values.message }),
    ...(values.actor === undefined ? {} : { actor: values.actor }),
    ...(values.meta === undefined ? {} : { meta: parseMeta(command, values.meta) }),
  };
}

/** `--meta '{"ticket":"OPS-7"}'`: a JSON object stored in the entry. */
function parseMeta(command: string, text: string): Record<string, JsonValue> {
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch (error) {
    throw usage(command, `--meta must be a JSON object: ${(error as Error).message}`);
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw usage(command, '--meta must be a JSON object, e.g. --meta \'{"ticket":"OPS-7"}\'');
  return meta as Record<string, JsonValue>;
}

/** SQL from a file, or from stdin when the path is `-`. */
export function readSqlInput(command: string, path: string): string {
  let sql: string;
  try {
    sql = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw usage(command, `cannot read ${path === '-' ? 'SQL from stdin' : path}: ${(error as Error).message}`);
  }
  if (sql.trim().length === 0) throw usage(command, `${path === '-' ? 'stdin' : path} holds no SQL`);
  return sql;
}

/** The audit options every writing command takes. */
export const AUDIT_OPTIONS = {
  message: { type: 'string', short: 'm', value: 'text', description: 'why: stored in the entry (like a commit message)' },
  actor: { type: 'string', value: 'name', description: 'who: stored in the entry (default: user@host)' },
  meta: { type: 'string', value: 'json', description: 'a JSON object stored in the entry, e.g. \'{"ticket":"OPS-7"}\'' },
} as const;

/** The fields of an entry as `log --json` prints them (one NDJSON line each). */
export function entryJson(entry: Entry): Record<string, unknown> {
  return {
    seq: entry.seq, kind: entry.kind, time: entry.time.toISOString(), actor: entry.actor, message: entry.message,
    hash: entry.hash, prevHash: entry.prevHash, tables: entry.tables, ...(entry.meta === null ? {} : { meta: entry.meta }),
    ...(entry.undoes === undefined ? {} : { undoes: entry.undoes }),
  };
}

/** @deprecated Use `trackedDatabase`, which also returns the canonical path. Kept for commands written against it. */
export function requireJournal(command: string, path: string): void {
  trackedDatabase(command, path);
}
