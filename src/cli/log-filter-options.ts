/** The filter options of `changetrail log` (the audit helper's part of the log command). */
import type { LogFilter } from '../audit/log-filter.js';
import type { JournalEntry } from '../journal/journal.js';
import { toEntry, type Entry } from '../write/entry-view.js';
import { usage } from './command.js';

export const LOG_FILTER_OPTIONS = {
  actor: { type: 'string', value: 'name', description: 'only entries by this actor' },
  table: { type: 'string', value: 'table', description: 'only entries that changed this table (directly, by triggers or cascades, or by resync)' },
  kind: { type: 'string', value: 'write|schema|resync|checkpoint', description: 'only entries of this kind' },
  since: { type: 'string', value: 'point', description: 'from this entry on: a seq, a hash prefix, or @<time> (entries at or after it)' },
  until: { type: 'string', value: 'point', description: 'up to this entry: a seq, a hash prefix, or @<time> (entries at or before it)' },
  grep: { type: 'string', value: 'text', description: 'only entries whose message contains <text>' },
  meta: { type: 'string', multiple: true, value: 'key=value', description: 'only entries whose meta has key = value (repeatable)' },
  limit: { type: 'string', value: 'n', description: 'at most <n> entries' },
  reverse: { type: 'boolean', description: 'newest first' },
  scan: { type: 'boolean', description: 'answer filters by reading the whole journal (ignore the audit index)' },
} as const;

interface FilterValues {
  actor?: string | undefined;
  table?: string | undefined;
  kind?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  grep?: string | undefined;
  meta?: string[] | undefined;
  limit?: string | undefined;
  reverse?: boolean | undefined;
}

/** The filter, or null when none of the filter options is given (the plain log: no index involved). */
export function logFilterOf(options: FilterValues, range: { from?: number; to?: number }): LogFilter | null {
  const given = ['actor', 'table', 'kind', 'since', 'until', 'grep', 'meta', 'limit', 'reverse'].some((name) => options[name as keyof FilterValues] !== undefined);
  if (!given) return null;
  if (options.kind !== undefined && !['write', 'schema', 'resync', 'checkpoint'].includes(options.kind)) throw usage('log', `--kind is write, schema, resync or checkpoint (got ${options.kind})`);
  const limit = options.limit === undefined ? undefined : Number(options.limit);
  if (limit !== undefined && (!/^\d+$/.test(options.limit!) || !Number.isSafeInteger(limit))) throw usage('log', `--limit takes a number (got ${options.limit})`);
  const meta: Record<string, string> = {};
  for (const pair of options.meta ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw usage('log', `--meta takes key=value (got ${pair})`);
    Object.defineProperty(meta, pair.slice(0, at), { value: pair.slice(at + 1), enumerable: true, writable: true, configurable: true });
  }
  const since = options.since ?? (range.from === undefined ? undefined : String(range.from));
  const until = options.until ?? (range.to === undefined ? undefined : String(range.to));
  return {
    ...(options.actor === undefined ? {} : { actor: options.actor }), ...(options.table === undefined ? {} : { table: options.table }),
    ...(options.kind === undefined ? {} : { kind: options.kind as LogFilter['kind'] & string }),
    ...(since === undefined ? {} : { since }), ...(until === undefined ? {} : { until }),
    ...(options.grep === undefined ? {} : { grep: options.grep }), ...(options.meta === undefined ? {} : { meta }),
    ...(limit === undefined ? {} : { limit }), ...(options.reverse === true ? { reverse: true } : {}),
  };
}

export function toEntryView(entry: JournalEntry): Entry {
  return toEntry(entry, entry.hash);
}
