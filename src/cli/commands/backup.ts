/** `changetrail backup <db> <out.db>`: a consistent copy stamped with its journal position. */
import { backup as backupDatabase } from '../../export/backup.js';
import { defineCommand } from '../command.js';
import { requireJournal } from '../helpers.js';

export const backup = defineCommand({
  name: 'backup',
  summary: 'a consistent copy taken while writers go on, stamped with its journal position',
  args: ['db', 'out.db'],
  options: {
    force: { type: 'boolean', description: 'replace an existing output file' },
  },
  description: 'The copy is an ordinary SQLite file. Its stamp (journal id, seq, entry hash) lets `restore --from`,\n`recover` and replicas start from it and apply only the entries after it.',
  examples: ['changetrail backup app.db nightly.db'],
  async run({ args, options, out }) {
    requireJournal('backup', args[0]!);
    const stamp = await backupDatabase(args[0]!, args[1]!, { force: options.force ?? false });
    out.emit({ path: args[1], ...stamp }, () => `${args[1]}: backup at entry ${stamp.seq} (${stamp.hash.slice(0, 16)}) of journal ${stamp.journalId}`);
    return 0;
  },
});
