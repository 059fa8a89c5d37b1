/** `changetrail init <db>`: start a journal for a new or existing database. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { io } from '../../journal/files.js';
import { MANIFEST_FILE } from '../../journal/format.js';
import { HEAD_TABLE } from '../../write/head-row.js';
import { OUTBOX_TABLE } from '../../journal/outbox.js';
import { canonicalDatabasePath, openTrail } from '../../write/trail.js';
import { defineCommand, usage } from '../command.js';
import { escapeControl } from '../format.js';

export const init = defineCommand({
  name: 'init',
  summary: 'start a journal (<db>.changes/) for a new or existing database',
  args: ['db'],
  options: {
    'journal-mode': { type: 'string', value: 'wal|delete', description: "change the database's journal mode (default: keep it as found)" },
    wal: { type: 'boolean', description: 'same as --journal-mode wal' },
    'new-history': { type: 'boolean', description: 'start a new history for a database whose journal is gone (move the old journal aside first)' },
  },
  description: [
    'Adopts the database as it is: its tables are untouched, and a genesis snapshot in <db>.changes/',
    'records its current state. Running init again on a tracked database is harmless. The journal mode',
    '(WAL or rollback) is kept as found unless --journal-mode says otherwise.',
  ].join('\n'),
  examples: ['changetrail init app.db', 'changetrail init app.db --journal-mode wal', 'mv app.db.changes app.db.changes.old && changetrail init app.db --new-history'],
  async run({ args, options, out }) {
    const mode = options.wal ? 'wal' : options['journal-mode'];
    if (mode !== undefined && mode !== 'wal' && mode !== 'delete') throw usage('init', `--journal-mode must be wal or delete, not ${mode}`);
    const databasePath = io('resolve database path', args[0]!, () => canonicalDatabasePath(args[0]!));
    const before = peekJournalMode(databasePath);
    const previous = options['new-history'] ? forgetHistory(databasePath) : null;
    const trail = await openTrail(databasePath, mode === undefined ? {} : { journalMode: mode });
    try {
      const status = await trail.status();
      const changed = before !== null && before !== status.journalMode ? { from: before, to: status.journalMode } : null;
      out.emit({ ...status, ...(changed === null ? {} : { journalModeChanged: changed }), ...(previous === null ? {} : { newHistory: true }) }, () => [
        `${escapeControl(status.database)}: journal ${escapeControl(status.journalDir)} at entry ${status.headSeq} (${status.journalMode} mode)`,
        ...(changed === null ? [] : [`journal mode changed: ${changed.from} -> ${changed.to}`]),
        ...(previous === null ? [] : ['started a new history: the entries of the previous journal are not part of it']),
      ].join('\n'));
      return 0;
    } finally {
      await trail.close();
    }
  },
});

/** The database's journal mode before init, or null for a new (or unreadable) file. */
function peekJournalMode(databasePath: string): 'wal' | 'delete' | null {
  if (!existsSync(databasePath)) return null;
  try {
    const db = new DatabaseSync(databasePath, { readOnly: true });
    try {
      return String(db.prepare('PRAGMA journal_mode').get()?.journal_mode).toLowerCase() === 'wal' ? 'wal' : 'delete';
    } finally {
      db.close();
    }
  } catch {
    return null; // openTrail reports what is wrong with it
  }
}

/**
 * --new-history: drops the head row that binds the database to its lost journal, so init adopts the
 * database as a new genesis. Never deletes a journal: one still present must be moved aside first.
 */
function forgetHistory(databasePath: string): true {
  const journalDir = `${databasePath}.changes`;
  if (existsSync(join(journalDir, MANIFEST_FILE))) {
    throw usage('init', `${journalDir}/ still holds a journal; --new-history never deletes one: move it aside first (mv ${journalDir} ${journalDir}.old)`);
  }
  const db = new DatabaseSync(databasePath);
  try {
    db.exec(`DROP TABLE IF EXISTS ${HEAD_TABLE}; DROP TABLE IF EXISTS ${OUTBOX_TABLE}`);
  } finally {
    db.close();
  }
  return true;
}
