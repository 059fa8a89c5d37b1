#!/usr/bin/env node
/**
 * changetrail command line: `changetrail <command> <db> [...]`. Every command takes --json. Exit codes:
 * 0 success, 1 a ChangetrailError (its code is printed), 2 wrong usage, 70 an unexpected internal error.
 */
import { ChangetrailError } from '../errors.js';
import { exec, init, log, migrate, resync, status, undo, verify } from './commands.js';
import { stdio, toJson, type Command, type Output } from './io.js';
import { show } from './show.js';
import { unlock } from './unlock.js';

const COMMANDS: Record<string, Command> = { init, exec, migrate, undo, resync, log, show, status, verify, unlock };

const HELP = `changetrail — every write to a SQLite file recorded, replayable and reversible

usage: changetrail <command> <db> [options]

  init <db> [--wal]                 start a journal (<db>.changes/) for a new or existing database
  exec <db> "<sql>" [-m msg] [--actor name]
                                    run SQL as one admitted, journaled write
  migrate <db> <file.sql> [-m msg]  run a schema migration, journaled as a schema entry
  undo <db> <seq> [-m msg]          reverse entry <seq> as a new entry (refused if rows changed since)
  resync <db> [-m msg]              record the database as it is now (after changes made outside
                                    changetrail) as a resync entry with a fresh snapshot
  log <db> [--from N] [--to N]      list entries (NDJSON with --json)
  show <db> <seq>                   row-level changes of one entry
  status <db>                       head, journal and lock holder
  verify <db> [--replay]            check the whole hash chain and snapshots; --replay also rebuilds the
                                    database from the journal and compares every table
  unlock <db>                       break the write lock, only if its holder is provably gone

every command takes --json`;

export async function main(argv: string[], io: Output = stdio): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(HELP);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  const json = args.includes('--json');
  if (command === undefined) return report(new ChangetrailError('CLI_USAGE', `unknown command: ${name}`, { command: name, hint: 'run changetrail --help' }), json, io);
  try {
    return await command(args, io);
  } catch (error) {
    return report(error, json, io);
  }
}

function report(error: unknown, json: boolean, io: Output): number {
  if (error instanceof ChangetrailError) {
    io.err(json ? toJson({ error: error.toJSON() }) : `changetrail: ${error.code}: ${error.message}`);
    return error.code === 'CLI_USAGE' ? 2 : 1;
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    io.err(json ? toJson({ error: { name: error.name, message: error.message } }) : `changetrail: ${error.message}`);
    return 2;
  }
  const sqlite = error as { code?: string; errcode?: number; message?: string };
  if (sqlite?.code === 'ERR_SQLITE_ERROR') {
    io.err(json ? toJson({ error: { code: 'SQLITE_ERROR', errcode: sqlite.errcode, message: sqlite.message } }) : `changetrail: SQLITE_ERROR: ${sqlite.message}`);
    return 1;
  }
  io.err(`changetrail: internal error: ${(error as Error)?.stack ?? String(error)}`);
  return 70;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli/main.js')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
