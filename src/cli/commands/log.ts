/** `changetrail log <db>`: the entries of the journal, oldest first. */
import { openTrailReader } from '../../write/read-only.js';
import { defineCommand } from '../command.js';
import { formatEntry, formatEntryOneline } from '../format.js';
import { entryJson, parseSeq, trackedDatabase } from '../helpers.js';
import { filterLog } from '../../audit/log-filter.js';
import { LOG_FILTER_OPTIONS, logFilterOf, toEntryView } from '../log-filter-options.js';
import { retainedBaseOf } from '../../journal/retention-base.js';

export const log = defineCommand({
  name: 'log',
  summary: 'list entries, oldest first (--oneline; NDJSON with --json)',
  args: ['db'],
  options: {
    from: { type: 'string', value: 'seq', description: 'first entry to list (default 1)' },
    to: { type: 'string', value: 'seq', description: 'last entry to list (default: the head)' },
    oneline: { type: 'boolean', description: 'one line per entry: hash, number, message' },
    ...LOG_FILTER_OPTIONS,
  },
  description: [
    'Every entry is verified against the hash chain as it is read. Reading needs read access only.',
    'Filters (--actor --table --kind --since --until --grep --meta --limit --reverse) are answered from the',
    'audit index (<db>.changes/index/audit.db, created or updated when the directory is writable; every',
    'entry shown is read from the journal and checked), or by scanning the journal.',
  ].join('\n'),
  examples: ['changetrail log app.db', 'changetrail log app.db --oneline --from 10', 'changetrail log app.db --json | jq .message',
    'changetrail log app.db --actor billing-agent --table invoices --since @2026-11-30T00:00Z --oneline'],
  async run({ args, options, out }) {
    const range = {
      ...(options.from === undefined ? {} : { from: Math.max(1, parseSeq('log', options.from)) }),
      ...(options.to === undefined ? {} : { to: parseSeq('log', options.to) }),
    };
    const database = trackedDatabase('log', args[0]!);
    const filter = logFilterOf(options, range);
    // Opened for the filtered path too: its open check refuses a database behind its journal (issue 8 item 2).
    const trail = await openTrailReader(database);
    try {
      let first = true;
      for (const entry of filter === null ? trail.entries(range) : filterLog(database, filter, { index: indexMode(options) }).map(toEntryView)) {
        if (out.json) out.record(entryJson(entry));
        else if (options.oneline) out.line(formatEntryOneline(entry, out));
        else {
          if (!first) out.line();
          for (const line of formatEntry(entry, out)) out.line(line);
        }
        first = false;
      }
      // A pruned journal says where its history begins (FORMAT.md §11), in human output only.
      const base = out.json ? null : retainedBaseOf(trail.journalDir);
      if (base !== null) out.line(`${first ? '' : '\n'}(history before entry ${base.seq + 1} was pruned: checkpoint #${base.checkpointSeq} holds the state as of entry ${base.seq})`);
      return 0;
    } finally {
      trail.close();
    }
  },
});

/** The index serves conditions on entries; --limit and --reverse alone read the journal as the plain log does. */
function indexMode(options: { scan?: boolean | undefined; actor?: string | undefined; table?: string | undefined; kind?: string | undefined; since?: string | undefined; until?: string | undefined; grep?: string | undefined; meta?: string[] | undefined }): 'auto' | 'off' {
  if (options.scan === true) return 'off';
  const conditions = [options.actor, options.table, options.kind, options.since, options.until, options.grep, options.meta];
  return conditions.some((c) => c !== undefined) ? 'auto' : 'off';
}
