/** `changetrail restore <db> --at X -o out.db`: the database as of entry X, in a new file. */
import { restoreTo, type RestoreProgress, type RestoreResult } from '../../export/restore.js';
import { defineCommand, usage } from '../command.js';
import { requireJournal } from '../helpers.js';

export const restore = defineCommand({
  name: 'restore',
  summary: 'write the database as of entry X to a new file (point-in-time restore)',
  args: ['db'],
  options: {
    at: { type: 'string', value: 'X', description: 'the entry: a seq, an entry hash prefix or @<time> (the last entry at or before it)' },
    output: { type: 'string', short: 'o', value: 'out.db', description: 'the file to write (refused if it exists, unless --force)' },
    from: { type: 'string', value: 'backup.db', description: 'start from this stamped backup (changetrail backup) instead of genesis' },
    force: { type: 'boolean', description: 'replace an existing output file' },
  },
  description: 'Replays genesis.db (or the nearest resync snapshot, or --from a stamped backup) and every later entry up\nto X exactly, each verified against the hash chain; runs integrity_check; shows progress on a TTY.',
  examples: ['changetrail restore app.db --at 41 -o app-41.db', 'changetrail restore app.db --at @2026-11-30T12:00Z -o noon.db', 'changetrail restore app.db --at 900 --from nightly.db -o now.db'],
  async run({ args, options, out }) {
    if (options.at === undefined) throw usage('restore', '--at is required (a seq, an entry hash prefix or @<time>)');
    if (options.output === undefined) throw usage('restore', '-o <out.db> is required');
    requireJournal('restore', args[0]!);
    const tty = process.stderr.isTTY === true && !out.json;
    const onProgress = tty ? (p: RestoreProgress) => process.stderr.write(`\rrestore: ${p.applied}/${p.total} entries (entry ${p.seq})`) : undefined;
    let result: RestoreResult;
    try {
      result = await restoreTo(args[0]!, options.output, {
        at: options.at, force: options.force ?? false, ...(options.from === undefined ? {} : { from: options.from }), ...(onProgress === undefined ? {} : { onProgress }),
      });
    } catch (error) {
      if (error instanceof RangeError) throw usage('restore', error.message);
      throw error;
    } finally {
      if (tty) process.stderr.write('\n');
    }
    const at = result.at.position;
    out.emit({ path: result.path, at, spec: result.at.spec, base: result.base, applied: result.applied },
      () => `${result.path}: the database as of entry ${at.seq} (${at.hash.slice(0, 16)})${result.at.by === 'seq' ? '' : ` = ${result.at.spec}`}; `
        + `${result.applied} ${result.applied === 1 ? 'entry' : 'entries'} applied on ${result.base.kind}${result.base.seq === 0 ? '' : ` at entry ${result.base.seq}`}; integrity_check ok`);
    return 0;
  },
});
