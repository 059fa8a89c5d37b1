/**
 * Resolving what a user writes for a point in history — `41` (a seq), `3b688f33` (an entry hash prefix),
 * `@2026-11-30T12:00Z` (a time) — to a {@link Position} of the journal. The one resolver: export, restore,
 * diff and log all use it.
 */
import { ChangetrailError } from '../errors.js';
import { toHex } from './bytes.js';
import type { Position } from './position.js';
import { historyPruned, type RetainedBase } from './retention-base.js';

/** What resolving reads (structural: the export JournalSource, the audit journal, ...). */
export interface PositionSource {
  readonly head: Position;
  /** The proven position of entry `seq` (0: the chain root). */
  positionAt(seq: number): Position;
  /** Committed entries `from..to`, verified. */
  entries(from: number, to: number): Iterable<{ readonly seq: number; readonly hash: Uint8Array; readonly time: number }>;
  /** Where retained history starts, for a pruned journal (FORMAT.md §11): times and hashes are searched after it. */
  readonly base?: RetainedBase | null;
}

/** A seq (number or decimal string), an entry hash prefix (hex), or `@` followed by a time. */
export type PositionSpec = number | string;

/** Hash prefixes shorter than this are refused: too likely to match several entries. */
const HASH_PREFIX_MIN = 4;
const HASH_HEX_SIZE = 64;
const SEQ_TEXT = /^\d+$/;
const HEX_TEXT = /^(?:hash:)?([0-9a-f]+)$/i;

/** What a spec resolved to, with how (a time resolves to the last entry at or before it). */
export interface ResolvedPosition {
  readonly position: Position;
  readonly spec: string;
  readonly by: 'seq' | 'hash' | 'time';
}

/**
 * Resolves `spec` against the journal's committed entries (0..head).
 *
 * - A number or a string of decimal digits is a seq; 0 is the state before entry 1 (genesis).
 * - A hex string (at least 4 digits, not all decimal; or `hash:<hex>` for any prefix) names the one entry
 *   whose hash starts with it.
 * - `@<time>` (anything `Date.parse` reads, e.g. `@2026-11-30T12:00Z`) names the highest seq whose entry
 *   time is at or before that time, or 0 if none is. Entry times are the writers' clocks: informational.
 *
 * @throws RangeError for a spec of none of these forms.
 * @throws ChangetrailError POSITION_NOT_FOUND (`details.spec`, `details.headSeq`), POSITION_AMBIGUOUS
 *   (`details.matches`: the first matching seqs), and the journal's read errors.
 */
export function resolvePosition(source: PositionSource, spec: PositionSpec): ResolvedPosition {
  const text = String(spec).trim();
  if (typeof spec === 'number' || SEQ_TEXT.test(text)) return { position: bySeq(source, text, spec), spec: text, by: 'seq' };
  if (text.startsWith('@')) return { position: byTime(source, text), spec: text, by: 'time' };
  const hex = HEX_TEXT.exec(text)?.[1];
  if (hex === undefined || hex.length > HASH_HEX_SIZE || (hex.length < HASH_PREFIX_MIN && !text.startsWith('hash:'))) {
    throw new RangeError(`not a position: ${text} (expected a seq, a hash prefix of at least ${HASH_PREFIX_MIN} hex digits, or @<time>)`);
  }
  return { position: byHashPrefix(source, text, hex.toLowerCase()), spec: text, by: 'hash' };
}

function bySeq(source: PositionSource, text: string, spec: PositionSpec): Position {
  const seq = Number(text);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`not a sequence number: ${text}`);
  if (seq > source.head.seq) throw notFound(source, text, typeof spec === 'string' && text.length >= HASH_PREFIX_MIN);
  return source.positionAt(seq);
}

function byTime(source: PositionSource, text: string): Position {
  const timeMs = Date.parse(text.slice(1));
  if (Number.isNaN(timeMs)) throw new RangeError(`not a time: ${text} (expected e.g. @2026-11-30T12:00Z)`);
  const base = source.base ?? null;
  let found: Position | null = base === null ? source.positionAt(0) : null;
  for (const entry of source.entries((base?.seq ?? 0) + 1, source.head.seq)) {
    if (entry.time <= timeMs) found = { journalId: source.head.journalId, seq: entry.seq, hash: toHex(entry.hash) };
  }
  // Before the first retained entry: the state then is not known to be the base's (it may be earlier).
  if (found === null) throw historyPruned(`resolve ${text}`, base!.seq, base!);
  return found;
}

function byHashPrefix(source: PositionSource, text: string, prefix: string): Position {
  const matches: Position[] = [];
  for (const entry of source.entries((source.base?.seq ?? 0) + 1, source.head.seq)) {
    const hash = toHex(entry.hash);
    if (hash.startsWith(prefix)) matches.push({ journalId: source.head.journalId, seq: entry.seq, hash });
  }
  if (matches.length === 0) throw notFound(source, text);
  if (matches.length > 1) {
    throw new ChangetrailError('POSITION_AMBIGUOUS', `resolve ${text}: ${matches.length} entries have hashes starting with ${prefix}; give more digits`, {
      spec: text, matches: matches.slice(0, 10).map((match) => match.seq),
    });
  }
  return matches[0]!;
}

/** `digitsMayBeHash`: a decimal spec past the head may be a hash prefix pasted without `hash:` (1 in 43 8-digit prefixes is all digits). */
function notFound(source: PositionSource, text: string, digitsMayBeHash = false): ChangetrailError {
  const asHash = digitsMayBeHash ? `; digits alone are a seq: for a hash prefix write hash:${text}` : '';
  return new ChangetrailError('POSITION_NOT_FOUND', `resolve ${text}: no such entry (the journal holds entries 1..${source.head.seq})${asHash}`, {
    spec: text, headSeq: source.head.seq,
  });
}
