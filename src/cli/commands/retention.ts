/** `changetrail retention <db>`: show or set the retention policy writers apply in the background (issue 16). */
import { openJournal } from '../../journal/journal.js';
import { listFollowers } from '../../journal/retention-pins.js';
import { openTrail } from '../../write/trail.js';
import { openTrailReader } from '../../write/read-only.js';
import { readRetentionPolicy, writeRetentionPolicy, type RetentionPolicy } from '../../write/retention-policy.js';
import type { RetentionState } from '../../write/retention-runner.js';
import { FOLLOWER_HOLD_DEFAULTS } from '../../write/prune.js';
import { defineCommand, usage } from '../command.js';
import { escapeControl } from '../format.js';
import { trackedDatabase } from '../helpers.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60 * 1000;

export const retention = defineCommand({
  name: 'retention',
  summary: 'show or set the retention policy (keep N entries/days/bytes; checkpoint every N entries/minutes)',
  args: ['db'],
  options: {
    'keep-entries': { type: 'string', value: 'n', description: 'keep at least this many entries before the head' },
    'keep-days': { type: 'string', value: 'd', description: 'keep at least this many days of history (fractions allowed)' },
    'keep-bytes': { type: 'string', value: 'n', description: 'keep at least this many bytes of segments' },
    'checkpoint-every-entries': { type: 'string', value: 'n', description: 'take a checkpoint every n entries' },
    'checkpoint-every-minutes': { type: 'string', value: 'm', description: 'take a checkpoint every m minutes (when entries were committed)' },
    'hold-entries-max': { type: 'string', value: 'n', description: 'a registered follower further behind than this is not waited for' },
    'hold-stale-days': { type: 'string', value: 'd', description: 'a follower silent for this long is not waited for' },
    'no-prune': { type: 'boolean', description: 'take checkpoints but never prune automatically' },
    clear: { type: 'boolean', description: 'remove the policy: nothing happens automatically' },
    apply: { type: 'boolean', description: 'run one policy pass now (checkpoint and prune if due) and report it' },
  },
  description: [
    'The policy lives in <db>.changes/retention.json and every writer applies it in the background of its',
    'writes: a checkpoint when one is due, then a prune to the newest checkpoint that every keep limit',
    'allows (all of them hold: keep N entries AND N days AND N bytes). Without options, shows the policy',
    'and the state of retention. Options given are merged into the current policy.',
  ].join('\n'),
  examples: ['changetrail retention app.db --keep-days 7 --checkpoint-every-minutes 60', 'changetrail retention app.db --keep-entries 100000 --checkpoint-every-entries 10000 --apply'],
  async run({ args, options, out }) {
    const path = trackedDatabase('retention', args[0]!);
    const changes = policyChanges(options);
    if (options.clear !== true && options.apply !== true && Object.keys(changes).length === 0) {
      // Showing is reading: read access is enough, and no byte changes (as for status and log).
      const state = await readRetentionState(path);
      out.emit(state, () => describeState(state, null).join('\n'));
      return 0;
    }
    const trail = await openTrail(path);
    try {
      if (options.clear === true || Object.keys(changes).length > 0) {
        const base = options.clear === true ? {} : trail.retentionState().policy ?? {};
        writeRetentionPolicy(trail.journalDir, { ...base, ...changes, ...(changes.followers === undefined ? {} : { followers: { ...base.followers, ...changes.followers } }) });
      }
      const pass = options.apply === true ? await trail.applyRetention() : null;
      const state = trail.retentionState();
      out.emit({ ...state, ...(pass === null ? {} : { pass }) }, () => describeState(state, pass).join('\n'));
      return 0;
    } finally {
      await trail.close();
    }
  },
});

function policyChanges(options: Record<string, unknown>): RetentionPolicy {
  const n = (name: string, scale = 1): number | undefined => {
    const text = options[name];
    if (text === undefined) return undefined;
    if (typeof text !== 'string' || !/^\d+(\.\d+)?$/.test(text)) throw usage('retention', `--${name} takes a non-negative number (got ${String(text)})`);
    return Math.round(Number(text) * scale);
  };
  const changes: RetentionPolicy = {};
  const set = <K extends keyof RetentionPolicy>(key: K, value: RetentionPolicy[K] | undefined) => { if (value !== undefined) changes[key] = value; };
  set('keepEntries', n('keep-entries'));
  set('keepMs', n('keep-days', DAY_MS));
  set('keepBytes', n('keep-bytes'));
  set('checkpointEveryEntries', n('checkpoint-every-entries'));
  set('checkpointEveryMs', n('checkpoint-every-minutes', MINUTE_MS));
  if (options['no-prune'] === true) changes.prune = false;
  const entriesMax = n('hold-entries-max');
  const staleAfterMs = n('hold-stale-days', DAY_MS);
  if (entriesMax !== undefined || staleAfterMs !== undefined) changes.followers = { ...(entriesMax === undefined ? {} : { entriesMax }), ...(staleAfterMs === undefined ? {} : { staleAfterMs }) };
  return changes;
}

function describePolicy(policy: RetentionPolicy): string {
  const parts: string[] = [];
  if (policy.keepEntries != null) parts.push(`keep ${policy.keepEntries} entries`);
  if (policy.keepMs != null) parts.push(`keep ${policy.keepMs / DAY_MS} days`);
  if (policy.keepBytes != null) parts.push(`keep ${policy.keepBytes} bytes`);
  if (policy.checkpointEveryEntries != null) parts.push(`checkpoint every ${policy.checkpointEveryEntries} entries`);
  if (policy.checkpointEveryMs != null) parts.push(`checkpoint every ${policy.checkpointEveryMs / MINUTE_MS} minutes`);
  if (policy.prune === false) parts.push('no automatic prune');
  return parts.length === 0 ? 'none' : parts.join(', ');
}

/** How long registered followers hold pruning back: the policy's limits, or the defaults prune applies. */
function describeFollowerHold(policy: RetentionPolicy | null): string {
  const { entriesMax, staleAfterMs } = policy?.followers ?? {};
  const mark = (value: number | undefined) => (value === undefined ? ' (default)' : '');
  const entries = `up to ${entriesMax ?? FOLLOWER_HOLD_DEFAULTS.entriesMax} entries behind the head`;
  const silent = `${(staleAfterMs ?? FOLLOWER_HOLD_DEFAULTS.staleAfterMs) / DAY_MS} days silent`;
  if (entriesMax === undefined && staleAfterMs === undefined) return `followers: held for ${entries}, ${silent} (defaults)`;
  return `followers: held for ${entries}${mark(entriesMax)}, ${silent}${mark(staleAfterMs)}`;
}

/** The retention state as a Trail reports it, read with read access only (no pass ran in this process). */
async function readRetentionState(path: string): Promise<RetentionState> {
  const reader = await openTrailReader(path);
  try {
    const { head } = await reader.status();
    const journal = openJournal(reader.journalDir, head);
    const base = journal.base === null ? null : { seq: journal.base.seq, checkpointSeq: journal.base.checkpointSeq };
    return { policy: readRetentionPolicy(reader.journalDir), base, earliestSeq: (base?.seq ?? 0) + 1, followers: listFollowers(reader.journalDir, head.journalId), lastPass: null };
  } finally {
    reader.close();
  }
}

function describeState(state: RetentionState, pass: RetentionState['lastPass']): string[] {
  return [
    state.policy === null ? 'no retention policy: history is kept until `changetrail prune`' : `policy: ${describePolicy(state.policy)}`,
    describeFollowerHold(state.policy),
    state.base === null ? 'history starts at genesis' : `retained history begins at entry ${state.earliestSeq} (checkpoint #${state.base.checkpointSeq} holds the state as of entry ${state.base.seq})`,
    ...state.followers.map((f) => `follower ${escapeControl(f.name)} at entry ${f.seq} (reported ${new Date(f.updatedAtMs).toISOString()})`),
    ...(pass === null ? [] : [pass.error === null ? `pass: ${pass.checkpointSeq === null ? 'no checkpoint due' : `checkpoint #${pass.checkpointSeq}`}; ${pass.prunedTo === null ? 'nothing pruned' : `pruned to entry ${pass.prunedTo}`}` : `pass failed: ${pass.error.code}: ${escapeControl(pass.error.message)}`]),
  ];
}
