/** The commands that open a trail: init, exec, migrate, undo, resync, log, status, verify. */
import { readFileSync } from 'node:fs';
import { openTrail } from '../write/trail.js';
import { entryLine, formatEntry, parse, parseSeq, requireJournal, toJson, usage, type Command } from './io.js';

export const init: Command = async (args, io) => {
  const { values, positionals } = parse('init', args, { wal: { type: 'boolean' } }, ['db']);
  const trail = await openTrail(positionals[0]!, values.wal ? { journalMode: 'wal' } : {});
  try {
    const status = await trail.status();
    io.out(values.json ? toJson(status) : `${status.database}: journal ${status.journalDir} at entry ${status.headSeq}`);
    return 0;
  } finally {
    await trail.close();
  }
};

export const exec: Command = async (args, io) => {
  const { values, positionals } = parse('exec', args, { message: { type: 'string', short: 'm' }, actor: { type: 'string' } }, ['db', 'sql']);
  requireJournal('exec', positionals[0]!);
  const trail = await openTrail(positionals[0]!);
  try {
    const sql = positionals[1]!;
    const entry = await trail.write((db) => db.exec(sql), auditOptions(values));
    if (values.json) io.out(toJson(entry === null ? null : entryLine(entry)));
    else io.out(entry === null ? 'no changes: nothing journaled' : formatEntry(entry));
    return 0;
  } finally {
    await trail.close();
  }
};

export const log: Command = async (args, io) => {
  const { values, positionals } = parse('log', args, { from: { type: 'string' }, to: { type: 'string' } }, ['db']);
  requireJournal('log', positionals[0]!);
  const range = {
    ...(values.from === undefined ? {} : { from: Math.max(1, parseSeq('log', values.from)) }),
    ...(values.to === undefined ? {} : { to: parseSeq('log', values.to) }),
  };
  const trail = await openTrail(positionals[0]!);
  try {
    for await (const entry of trail.entries(range)) io.out(values.json ? toJson(entryLine(entry)) : formatEntry(entry));
    return 0;
  } finally {
    await trail.close();
  }
};

export const status: Command = async (args, io) => {
  const { values, positionals } = parse('status', args, {}, ['db']);
  requireJournal('status', positionals[0]!);
  const trail = await openTrail(positionals[0]!);
  try {
    const s = await trail.status();
    if (values.json) {
      io.out(toJson(s));
      return 0;
    }
    io.out(`database   ${s.database} (${s.journalMode} mode)`);
    io.out(`journal    ${s.journalDir} (${s.segments} segment${s.segments === 1 ? '' : 's'})`);
    io.out(`head       entry ${s.headSeq} ${s.headHash.slice(0, 16)}`);
    io.out(`epoch      ${s.epoch} (last admitted: ${s.holder ?? '-'})`);
    io.out(`lock       ${s.lock === null ? 'free' : `held by ${s.lock.holder?.ownerId ?? 'unknown'}${s.lock.stale ? ' (STALE: changetrail unlock can break it)' : ''}`}`);
    return 0;
  } finally {
    await trail.close();
  }
};

export const verify: Command = async (args, io) => {
  const { values, positionals } = parse('verify', args, { replay: { type: 'boolean' } }, ['db']);
  requireJournal('verify', positionals[0]!);
  const trail = await openTrail(positionals[0]!);
  try {
    const report = await trail.verify({ replay: values.replay ?? false });
    io.out(values.json ? toJson(report) : `ok: ${report.entries} entries verified up to ${report.headHash.slice(0, 16)} (entry ${report.headSeq})${report.replayed ? '; the replayed journal equals the database' : ''}`);
    return 0;
  } finally {
    await trail.close();
  }
};

export const migrate: Command = async (args, io) => {
  const { values, positionals } = parse('migrate', args, { message: { type: 'string', short: 'm' }, actor: { type: 'string' } }, ['db', 'file.sql']);
  requireJournal('migrate', positionals[0]!);
  const sql = readSqlFile('migrate', positionals[1]!);
  const trail = await openTrail(positionals[0]!);
  try {
    const entry = await trail.migrate(sql, auditOptions(values));
    if (values.json) io.out(toJson(entry === null ? null : { ...entryLine(entry), sql: entry.sql }));
    else io.out(entry === null ? 'no changes: nothing journaled' : formatEntry(entry));
    return 0;
  } finally {
    await trail.close();
  }
};

export const resync: Command = async (args, io) => {
  const { values, positionals } = parse('resync', args, { message: { type: 'string', short: 'm' }, actor: { type: 'string' } }, ['db']);
  requireJournal('resync', positionals[0]!);
  const trail = await openTrail(positionals[0]!);
  try {
    const entry = await trail.resync(auditOptions(values));
    io.out(values.json ? toJson(entry === null ? null : { ...entryLine(entry), snapshot: entry.snapshot }) : formatEntry(entry!));
    return 0;
  } finally {
    await trail.close();
  }
};

function auditOptions(values: { message?: string | undefined; actor?: string | undefined }): { message?: string; actor?: string } {
  return { ...(values.message === undefined ? {} : { message: values.message }), ...(values.actor === undefined ? {} : { actor: values.actor }) };
}

function readSqlFile(command: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw usage(command, `cannot read ${path}: ${(error as Error).message}`);
  }
}

export const undo: Command = async (args, io) => {
  const { values, positionals } = parse('undo', args, { message: { type: 'string', short: 'm' }, actor: { type: 'string' } }, ['db', 'seq']);
  requireJournal('undo', positionals[0]!);
  const seq = parseSeq('undo', positionals[1]);
  if (seq < 1) throw usage('undo', 'entries are numbered from 1');
  const trail = await openTrail(positionals[0]!);
  try {
    const entry = await trail.undo(seq, auditOptions(values));
    io.out(values.json ? toJson(entry === null ? null : entryLine(entry)) : entry === null ? 'nothing to undo: the entry changed no rows' : formatEntry(entry));
    return 0;
  } finally {
    await trail.close();
  }
};
