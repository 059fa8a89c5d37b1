/** `changetrail checkpoint <db>`: record the tables as of the head so history can start there (issue 16). */
import { openTrail } from '../../write/trail.js';
import { defineCommand } from '../command.js';
import { shortHash } from '../format.js';
import { AUDIT_OPTIONS, auditOptions, entryJson, trackedDatabase } from '../helpers.js';

export const checkpoint = defineCommand({
  name: 'checkpoint',
  summary: 'snapshot the tables as of the head, bound into the chain, so verify/restore/replicas can start there',
  args: ['db'],
  options: { ...AUDIT_OPTIONS },
  description: [
    'Copies the user\'s tables as they are at the committed head into <db>.changes/checkpoint-<seq>.db',
    '(VACUUM INTO, without the writers\' lock), then appends a checkpoint entry naming that state\'s entry,',
    'its hash and the snapshot\'s SHA-256 (one small write). Verification, restore and new replicas can',
    'then start at the checkpoint, and `changetrail prune` can remove the history before it.',
    'Prints nothing new when the newest checkpoint already holds the head.',
  ].join('\n'),
  examples: ['changetrail checkpoint app.db', 'changetrail checkpoint app.db -m "nightly"'],
  async run({ args, options, out }) {
    const audit = auditOptions(options, 'checkpoint');
    const trail = await openTrail(trackedDatabase('checkpoint', args[0]!));
    try {
      const result = await trail.checkpoint(audit);
      if (result === null) {
        out.emit(null, () => 'the newest checkpoint already holds the head: nothing recorded');
        return 0;
      }
      out.emit({ ...entryJson(result.entry), at: result.at, snapshot: result.snapshot },
        () => `checkpoint #${result.entry.seq} ${shortHash(result.entry.hash)}: the tables as of entry ${result.at.seq} in ${result.snapshot.file} (${result.snapshot.size} bytes, sha256 ${shortHash(result.snapshot.sha256)})`);
      return 0;
    } finally {
      await trail.close();
    }
  },
});
