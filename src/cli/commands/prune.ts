/** `changetrail prune <db> --before <seq | @time | checkpoint>`: drop history wholly before a checkpoint (issue 16). */
import { ChangetrailError } from '../../errors.js';
import { openTrail } from '../../write/trail.js';
import { defineCommand, usage } from '../command.js';
import { escapeControl, plural } from '../format.js';
import { trackedDatabase } from '../helpers.js';

export const prune = defineCommand({
  name: 'prune',
  summary: 'remove segments and snapshots wholly before a checkpoint (followers and running restores hold it back)',
  args: ['db'],
  options: {
    before: { type: 'string', value: 'point', description: 'keep every state from this point on: a seq, @<time>, or "checkpoint" (the newest)' },
    'dry-run': { type: 'boolean', description: 'show what would be removed; change nothing' },
    'hold-entries-max': { type: 'string', value: 'n', description: 'a registered follower further behind the head than this is not waited for (default 1000000)' },
    'hold-stale-ms': { type: 'string', value: 'ms', description: 'a follower that has not reported for this long is not waited for (default 7 days)' },
  },
  description: [
    'Moves the start of history to the newest checkpoint at or before <point>, then removes the segments,',
    'resync and checkpoint snapshots and genesis.db that lie wholly before it. Afterwards verify proves the',
    'chain from that checkpoint to the head, restore --at works for every retained point, and reads of',
    'earlier entries fail with HISTORY_PRUNED naming the first retained entry. Registered followers',
    '(replicas, shippers) and running restores keep what they still need. Segments are removed whole:',
    'a checkpoint starts a new segment, so everything before one can go.',
  ].join('\n'),
  examples: ['changetrail checkpoint app.db && changetrail prune app.db --before checkpoint', 'changetrail prune app.db --before @2026-11-01T00:00Z --dry-run'],
  async run({ args, options, out }) {
    if (options.before === undefined) throw usage('prune', 'give --before <seq | @time | checkpoint>');
    const before = /^\d+$/.test(options.before) ? Number(options.before) : options.before;
    const followers = {
      ...(options['hold-entries-max'] === undefined ? {} : { entriesMax: count('hold-entries-max', options['hold-entries-max']) }),
      ...(options['hold-stale-ms'] === undefined ? {} : { staleAfterMs: count('hold-stale-ms', options['hold-stale-ms']) }),
    };
    const trail = await openTrail(trackedDatabase('prune', args[0]!));
    try {
      // A seq past the head is a typo for an earlier one, not "everything": the library would prune to the
      // newest checkpoint, so the command refuses it (the head only grows, so checking first is safe).
      const { headSeq } = await trail.status();
      if (typeof before === 'number' && before > headSeq) {
        throw new ChangetrailError('ENTRY_NOT_FOUND', `prune: entry ${before} does not exist (the journal holds up to ${headSeq}); --before checkpoint prunes to the newest checkpoint`, { seq: before, headSeq });
      }
      const result = await trail.prune({ before, followers, dryRun: options['dry-run'] === true });
      out.emit(result, () => [
        `${options['dry-run'] === true ? 'would remove' : 'removed'} ${plural(result.removed.length, 'file')}${result.removed.length === 0 ? '' : `: ${result.removed.map(escapeControl).join(', ')}`}`,
        result.base === null ? 'history starts at genesis (entry 1)' : `retained history begins at entry ${result.earliestSeq} (checkpoint #${result.base.checkpointSeq} holds the state as of entry ${result.base.seq})`,
        ...result.heldBy.map((hold) => `held back by ${hold.kind} ${escapeControl(hold.name)} at entry ${hold.seq}`),
      ].join('\n'));
      return 0;
    } finally {
      await trail.close();
    }
  },
});

function count(option: string, text: string): number {
  if (!/^\d{1,15}$/.test(text)) throw usage('prune', `--${option} takes a non-negative integer (got ${text})`);
  return Number(text);
}
