/** Argument helpers shared by the commands: the database argument, sequence numbers, audit options, SQL input. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_FILE } from '../journal/format.js';
import type { Entry } from '../write/entry-view.js';
import { usage } from './command.js';

/** Read-only commands must not silently start a journal for an untracked database. */
export function requireJournal(command: string, databasePath: string): void {
  if (!existsSync(join(`${databasePath}.changes`, MANIFEST_FILE))) {
    throw usage(command, `${databasePath} has no changetrail journal (${databasePath}.changes/); run \`changetrail init ${databasePath}\` first`);
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

export function auditOptions(values: { message?: string | undefined; actor?: string | undefined }): { message?: string; actor?: string } {
  return { ...(values.message === undefined ? {} : { message: values.message }), ...(values.actor === undefined ? {} : { actor: values.actor }) };
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
} as const;

/** The fields of an entry as `log --json` prints them (one NDJSON line each). */
export function entryJson(entry: Entry): Record<string, unknown> {
  return {
    seq: entry.seq, kind: entry.kind, time: entry.time.toISOString(), actor: entry.actor, message: entry.message,
    hash: entry.hash, prevHash: entry.prevHash, tables: entry.tables, ...(entry.meta === null ? {} : { meta: entry.meta }),
    ...(entry.undoes === undefined ? {} : { undoes: entry.undoes }),
  };
}
