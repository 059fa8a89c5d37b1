/** `changetrail init <db>`: start a journal for a new or existing database. */
import { openTrail } from '../../write/trail.js';
import { defineCommand, usage } from '../command.js';

export const init = defineCommand({
  name: 'init',
  summary: 'start a journal (<db>.changes/) for a new or existing database',
  args: ['db'],
  options: {
    'journal-mode': { type: 'string', value: 'wal|delete', description: "change the database's journal mode (default: keep it as found)" },
    wal: { type: 'boolean', description: 'same as --journal-mode wal' },
  },
  description: 'Adopts the database as it is: its tables are untouched, and a genesis snapshot in\n<db>.changes/ records its current state. Running init again on a tracked database is harmless.',
  examples: ['changetrail init app.db', 'changetrail init app.db --journal-mode wal'],
  async run({ args, options, out }) {
    const mode = options.wal ? 'wal' : options['journal-mode'];
    if (mode !== undefined && mode !== 'wal' && mode !== 'delete') throw usage('init', `--journal-mode must be wal or delete, not ${mode}`);
    const trail = await openTrail(args[0]!, mode === undefined ? {} : { journalMode: mode });
    try {
      const status = await trail.status();
      out.emit(status, () => `${status.database}: journal ${status.journalDir} at entry ${status.headSeq} (${status.journalMode} mode)`);
      return 0;
    } finally {
      await trail.close();
    }
  },
});
