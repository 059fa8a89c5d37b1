/** `changetrail unlock <db>`: breaks the admission lock only when it is provably stale. */
import { resolve } from 'node:path';
import { breakStaleLock } from '../admission/lock.js';
import { parse, requireJournal, toJson, type Command } from './io.js';

export const unlock: Command = async (args, io) => {
  const { values, positionals } = parse('unlock', args, {}, ['db']);
  const databasePath = resolve(positionals[0]!);
  requireJournal('unlock', databasePath);
  const broken = await breakStaleLock(`${databasePath}.changes`);
  if (broken === null) io.out(values.json ? toJson({ broken: false, lock: null }) : 'the lock is free: nothing to break');
  else io.out(values.json ? toJson({ broken: true, lock: broken }) : `broke the stale lock of ${broken.holder?.ownerId ?? 'an unknown holder'} (${broken.staleReason ?? 'stale'})`);
  return 0;
};
