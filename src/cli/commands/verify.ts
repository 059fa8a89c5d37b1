/** `changetrail verify <db>`: check the whole journal (and, with --replay, the database against it). */
import { openTrail } from '../../write/trail.js';
import { defineCommand } from '../command.js';
import { plural, shortHash } from '../format.js';
import { requireJournal } from '../helpers.js';

export const verify = defineCommand({
  name: 'verify',
  summary: 'check the hash chain and snapshots; --replay also rebuilds the database and compares',
  args: ['db'],
  options: {
    replay: { type: 'boolean', description: 'rebuild the database from the journal in a scratch file and compare every table' },
  },
  description: 'Checks every frame checksum, the sequence, the hash chain up to the head the database committed,\nand the genesis and resync snapshots. --replay also finds changes made outside changetrail.',
  examples: ['changetrail verify app.db', 'changetrail verify app.db --replay'],
  async run({ args, options, out }) {
    requireJournal('verify', args[0]!);
    const trail = await openTrail(args[0]!);
    try {
      const report = await trail.verify({ replay: options.replay ?? false });
      out.emit(report, () => `ok: ${plural(report.entries, 'entry', 'entries')} verified up to entry ${report.headSeq} ${shortHash(report.headHash)}${report.replayed ? '; the replayed journal equals the database' : ''}`);
      return 0;
    } finally {
      await trail.close();
    }
  },
});
