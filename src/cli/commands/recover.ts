/** `changetrail recover <db>`: roll a database restored from an older copy forward to its journal's head. */
import { recover as rollForward } from '../../export/recover.js';
import { openTrailForRecovery } from '../../write/trail.js';
import { defineCommand } from '../command.js';
import { plural } from '../format.js';
import { requireJournal } from '../helpers.js';

export const recover = defineCommand({
  name: 'recover',
  summary: 'roll a database restored from an older copy (DATABASE_BEHIND_JOURNAL) forward to the journal head',
  args: ['db'],
  options: {},
  description: [
    'A database put back from a backup or an older copy is behind its journal: every other command refuses it',
    'with DATABASE_BEHIND_JOURNAL. recover replays the entries the journal holds past the database\'s head,',
    'exactly (triggers suspended, foreign keys off, migrations re-run and forced to their recorded rows),',
    'in one transaction with the head row, under the write lock. Afterwards the trail works as before.',
  ].join('\n'),
  examples: ['cp nightly.db app.db && changetrail recover app.db'],
  async run({ args, out }) {
    requireJournal('recover', args[0]!);
    const trail = await openTrailForRecovery(args[0]!);
    try {
      const behind = trail.behind;
      const { applied } = await rollForward(trail);
      out.emit({ behind, applied }, () => (applied === null
        ? `${args[0]}: not behind its journal; nothing to recover`
        : `${args[0]}: rolled forward from entry ${applied.from - 1} to entry ${applied.to} (${plural(applied.to - applied.from + 1, 'entry', 'entries')} replayed)`));
      return 0;
    } finally {
      await trail.close();
    }
  },
});
