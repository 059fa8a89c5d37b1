/** `changetrail status <db>`: head, journal and lock holder (or, for a read replica, its position and lag). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_FILE } from '../../journal/format.js';
import { openTrailReader } from '../../write/read-only.js';
import { defineCommand } from '../command.js';
import { escapeControl, plural, shortHash } from '../format.js';
import { trackedDatabase } from '../helpers.js';
import { isReplicaFile } from '../../replica/replica-status.js';
import { printReplicaStatus } from './replicate.js';

export const status = defineCommand({
  name: 'status',
  summary: 'head, journal and lock holder; for a replica: its position and lag',
  args: ['db'],
  options: {},
  description: 'Reads only: never changes the database or the journal, and needs read access only.',
  async run({ args, out }) {
    if (!existsSync(join(`${args[0]!}.changes`, MANIFEST_FILE)) && isReplicaFile(args[0]!)) return printReplicaStatus(args[0]!, out);
    const trail = await openTrailReader(trackedDatabase('status', args[0]!));
    try {
      const s = await trail.status();
      if (out.json) {
        out.record(s);
        return 0;
      }
      const lock = s.lock === null ? 'free' : `held by ${escapeControl(s.lock.holder?.ownerId ?? 'unknown')}${s.lock.stale ? ' (STALE: changetrail unlock can break it)' : ''}`;
      out.line(`database   ${escapeControl(s.database)} (${s.journalMode} mode)`);
      out.line(`journal    ${escapeControl(s.journalDir)} (${plural(s.segments, 'segment')})`);
      out.line(`head       entry ${s.headSeq} ${out.paint(shortHash(s.headHash), 'yellow')}`);
      out.line(`epoch      ${s.epoch} (last admitted: ${escapeControl(s.holder ?? '-')})`);
      out.line(`lock       ${lock}`);
      return 0;
    } finally {
      trail.close();
    }
  },
});
