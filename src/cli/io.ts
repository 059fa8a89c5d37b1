/** Output and argument helpers shared by the commands. Only main.ts exits the process. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ChangetrailError } from '../errors.js';
import { MANIFEST_FILE } from '../journal/format.js';
import type { Entry } from '../write/entry-view.js';

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const stdio: Output = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
};

/** A command: parses its own flags, returns an exit code. */
export type Command = (args: string[], io: Output) => Promise<number>;

export function usage(command: string, hint: string): ChangetrailError<'CLI_USAGE'> {
  return new ChangetrailError('CLI_USAGE', `${command}: ${hint}`, { command, hint });
}

/** parseArgs with every usage problem turned into CLI_USAGE. */
export function parse<T extends ParseArgsConfig['options']>(command: string, args: string[], options: T, positionals: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage(command, (error as Error).message);
  }
  if (parsed.positionals.length !== positionals.length) {
    throw usage(command, `expected ${positionals.map((p) => `<${p}>`).join(' ')}`);
  }
  return parsed;
}

/** Read-only commands must not silently start a journal for an untracked database. */
export function requireJournal(command: string, databasePath: string): void {
  if (!existsSync(join(`${databasePath}.changes`, MANIFEST_FILE))) {
    throw usage(command, `${databasePath} has no changetrail journal (${databasePath}.changes/); run \`changetrail init ${databasePath}\` first`);
  }
}

export function parseSeq(command: string, text: string | undefined): number {
  const seq = Number(text);
  if (!Number.isSafeInteger(seq) || seq < 0) throw usage(command, `not a sequence number: ${text}`);
  return seq;
}

/** The fields of an entry as `log` prints them (one NDJSON line each with --json). */
export function entryLine(entry: Entry): Record<string, unknown> {
  return {
    seq: entry.seq, kind: entry.kind, time: entry.time.toISOString(), actor: entry.actor, message: entry.message,
    hash: entry.hash, prevHash: entry.prevHash, tables: entry.tables, ...(entry.meta === null ? {} : { meta: entry.meta }),
    ...(entry.undoes === undefined ? {} : { undoes: entry.undoes }),
  };
}

export function formatCounts(entry: Entry): string {
  return entry.tables.map((t) => `${t.table} +${t.inserts} ~${t.updates} -${t.deletes}`).join(', ');
}

export function formatEntry(entry: Entry): string {
  const who = entry.actor ?? '-';
  const what = entry.message === null ? '' : `  ${entry.message}`;
  return `#${entry.seq} ${entry.kind} ${entry.time.toISOString()} ${who}${what}\n    ${formatCounts(entry) || '(no rows)'}  ${entry.hash.slice(0, 16)}`;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : String(v)) : v));
}
