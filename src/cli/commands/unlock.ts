/** `changetrail unlock <db>`: break the admission lock, only when its holder is provably gone. */
import { breakStaleLock } from '../../admission/lock.js';
import { defineCommand } from '../command.js';
import { escapeControl } from '../format.js';
import { trackedDatabase } from '../helpers.js';

export const unlock = defineCommand({
  name: 'unlock',
  summary: 'break the write lock, only if its holder is provably gone',
  args: ['db'],
  options: {},
  description: 'A lock whose holder is alive (or cannot be proven dead) is left alone: LOCK_NOT_STALE.',
  async run({ args, out }) {
    const databasePath = trackedDatabase('unlock', args[0]!);
    const broken = await breakStaleLock(`${databasePath}.changes`);
    if (broken === null) out.emit({ broken: false, lock: null }, () => 'the lock is free: nothing to break');
    else out.emit({ broken: true, lock: broken }, () => `broke the stale lock of ${escapeControl(broken.holder?.ownerId ?? 'an unknown holder')} (${escapeControl(broken.staleReason ?? 'stale')})`);
    return 0;
  },
});
