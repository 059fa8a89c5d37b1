/**
 * The filtered log: entries by actor, table, kind, range (seq, hash prefix or @time), message text and
 * meta values. With the index, only the matching entries are read (each checked against the conditions
 * again, from the journal); without it, the journal is scanned.
 */
import type { JsonValue } from '../journal/entry.js';
import type { JournalEntry } from '../journal/journal.js';
import { resolvePosition, type PositionSource, type PositionSpec } from '../journal/resolve-position.js';
import type { AuditJournal } from './audit-journal.js';
import { matchesIndexFilter, type IndexFilter } from './audit-index.js';
import { answer, AuditSource, IndexStaleError, type AuditOptions } from './audit-source.js';

export interface LogFilter {
  actor?: string;
  /** Entries that changed this table (directly, through triggers, or by resync). */
  table?: string;
  kind?: JournalEntry['kind'];
  /** From this point on, inclusive: a seq, a hash prefix, or `@<time>` (entries at or after that time). */
  since?: PositionSpec;
  /** Up to this point, inclusive: a seq, a hash prefix, or `@<time>` (entries at or before that time). */
  until?: PositionSpec;
  /** Entries whose message contains this text (case-sensitive). */
  grep?: string;
  /** Entries whose meta has each key with this value (a string value, or the JSON text of any other value). */
  meta?: Readonly<Record<string, string>>;
  /** At most this many entries (after the other conditions). */
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
}

/**
 * The entries of `databasePath`'s journal that match `filter`, oldest first (newest first with `reverse`).
 *
 * @example
 * filterLog('app.db', { actor: 'billing-agent', table: 'invoices', since: '@2026-11-30T00:00Z' });
 * @throws RangeError for a malformed point; ChangetrailError POSITION_NOT_FOUND, POSITION_AMBIGUOUS, JOURNAL_*.
 */
export function filterLog(databasePath: string, filter: LogFilter, options: AuditOptions = {}): JournalEntry[] {
  const source = AuditSource.open(databasePath, options);
  try {
    const conditions = indexFilterOf(source.journal, filter);
    return answer(source, (s) => indexedLog(s, conditions, filter), (s) => scannedLog(s, conditions, filter));
  } finally {
    source.close();
  }
}

function indexedLog(source: AuditSource, conditions: IndexFilter, filter: LogFilter): JournalEntry[] {
  const found: JournalEntry[] = [];
  for (const seq of source.index!.filter(conditions)) {
    const entry = source.indexedEntry(seq);
    if (!matchesIndexFilter(entry, conditions, source.journal)) throw new IndexStaleError(`entry ${seq} does not match what the index says of it`);
    if (!matchesText(entry, filter)) continue;
    found.push(entry);
    if (filter.limit !== undefined && found.length >= filter.limit) break;
  }
  return found;
}

function scannedLog(source: AuditSource, conditions: IndexFilter, filter: LogFilter): JournalEntry[] {
  const range = { ...(conditions.fromSeq === undefined ? {} : { from: conditions.fromSeq }), ...(conditions.toSeq === undefined ? {} : { to: conditions.toSeq }) };
  const found: JournalEntry[] = [];
  for (const entry of source.journal.entries(range)) {
    if (!matchesIndexFilter(entry, conditions, source.journal) || !matchesText(entry, filter)) continue;
    found.push(entry);
    if (filter.reverse !== true && filter.limit !== undefined && found.length >= filter.limit) break;
  }
  if (filter.reverse === true) found.reverse();
  return filter.limit === undefined ? found : found.slice(0, filter.limit);
}

function matchesText(entry: JournalEntry, filter: LogFilter): boolean {
  if (filter.grep !== undefined && !(entry.message ?? '').includes(filter.grep)) return false;
  for (const [key, value] of Object.entries(filter.meta ?? {})) {
    if (entry.meta === null || !Object.hasOwn(entry.meta, key) || !metaEquals(entry.meta[key]!, value)) return false;
  }
  return true;
}

function metaEquals(stored: JsonValue, wanted: string): boolean {
  return typeof stored === 'string' ? stored === wanted : JSON.stringify(stored) === wanted;
}

/** The conditions the index can answer, with points resolved against the journal. */
function indexFilterOf(journal: AuditJournal, filter: LogFilter): IndexFilter {
  if (filter.limit !== undefined && (!Number.isSafeInteger(filter.limit) || filter.limit < 0)) throw new RangeError('filterLog: limit must be a non-negative integer');
  const conditions: IndexFilter = {};
  if (filter.actor !== undefined) conditions.actor = filter.actor;
  if (filter.table !== undefined) conditions.table = filter.table;
  if (filter.kind !== undefined) conditions.kind = filter.kind;
  if (filter.reverse === true) conditions.reverse = true;
  if (filter.since !== undefined) {
    const time = timeOf(filter.since);
    if (time !== null) conditions.sinceTime = time;
    else conditions.fromSeq = resolvePosition(positionSource(journal), filter.since).position.seq;
  }
  if (filter.until !== undefined) {
    const time = timeOf(filter.until);
    if (time !== null) conditions.untilTime = time;
    else conditions.toSeq = resolvePosition(positionSource(journal), filter.until).position.seq;
  }
  return conditions;
}

/** `@<time>` as ms since the epoch; null for other points. */
function timeOf(spec: PositionSpec): number | null {
  if (typeof spec !== 'string' || !spec.trim().startsWith('@')) return null;
  const time = Date.parse(spec.trim().slice(1));
  if (Number.isNaN(time)) throw new RangeError(`not a time: ${spec} (expected e.g. @2026-11-30T12:00Z)`);
  return time;
}

/** The audit journal as the position resolver reads it. */
export function positionSource(journal: AuditJournal): PositionSource {
  return {
    head: journal.head,
    positionAt: (seq) => journal.reader.positionAt(seq),
    entries: (from, to) => journal.entries({ from, to }),
    base: journal.reader.base,
  };
}
