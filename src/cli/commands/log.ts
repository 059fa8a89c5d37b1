/** `changetrail log <db>`: the entries of the journal, oldest first. */
import { openTrailReader } from '../../write/read-only.js';
import { defineCommand } from '../command.js';
import { formatEntry, formatEntryOneline } from '../format.js';
import { entryJson, parseSeq, trackedDatabase } from '../helpers.js';

export const log = defineCommand({
  name: 'log',
  summary: 'list entries, oldest first (--oneline; NDJSON with --json)',
  args: ['db'],
  options: {
    from: { type: 'string', value: 'seq', description: 'first entry to list (default 1)' },
    to: { type: 'string', value: 'seq', description: 'last entry to list (default: the head)' },
    oneline: { type: 'boolean', description: 'one line per entry: hash, number, message' },
  },
  description: 'Every entry is verified against the hash chain as it is read. Reading needs read access only.',
  examples: ['changetrail log app.db', 'changetrail log app.db --oneline --from 10', 'changetrail log app.db --json | jq .message'],
  async run({ args, options, out }) {
    const range = {
      ...(options.from === undefined ? {} : { from: Math.max(1, parseSeq('log', options.from)) }),
      ...(options.to === undefined ? {} : { to: parseSeq('log', options.to) }),
    };
    const trail = await openTrailReader(trackedDatabase('log', args[0]!));
    try {
      let first = true;
      for (const entry of trail.entries(range)) {
        if (out.json) out.record(entryJson(entry));
        else if (options.oneline) out.line(formatEntryOneline(entry, out));
        else {
          if (!first) out.line();
          for (const line of formatEntry(entry, out)) out.line(line);
        }
        first = false;
      }
      return 0;
    } finally {
      trail.close();
    }
  },
});
