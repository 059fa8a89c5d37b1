/**
 * `exportChanges`: "what changed since X" as a stream, in one of five formats (export-format.ts).
 */
import { Readable } from 'node:stream';
import { ChangesetWriter } from './format-changeset.js';
import { DebeziumWriter } from './format-debezium.js';
import { NdjsonWriter } from './format-ndjson.js';
import { SqlWriter } from './format-sql.js';
import { EXPORT_FORMATS, foldAscii, type Chunk, type ExportContext, type ExportFormat, type FormatWriter } from './export-format.js';
import { JournalSource, type Position, type TrailSource } from './journal-source.js';
import { resolvePosition, type PositionSpec, type ResolvedPosition } from './resolve-position.js';

export interface ExportOptions {
  /** The export starts after this entry (exclusive): a seq, an entry hash prefix or `@<time>`. 0 = from genesis. */
  since: PositionSpec;
  /** The last entry included (inclusive); default: the committed head. */
  until?: PositionSpec;
  /** Only these tables (names compared ASCII-case-insensitively). */
  tables?: readonly string[];
  /** Default 'ndjson'. */
  format?: ExportFormat;
  /** Entry by entry instead of the net effect (changeset, patchset, sql; ndjson and debezium always are). */
  each?: boolean;
  /** Keep FTS/R*Tree shadow tables and changetrail's own tables in the row formats (ndjson, debezium). */
  includeShadow?: boolean;
}

/** The stream {@link exportChanges} returns, with the range it resolved. */
export interface ExportStream extends Readable {
  readonly format: ExportFormat;
  /** What `since` resolved to (the output starts after it). */
  readonly since: ResolvedPosition;
  /** What `until` resolved to (the last entry included). */
  readonly until: ResolvedPosition;
}

/**
 * Exports the changes of the committed entries after `since` up to and including `until`, as a readable
 * stream of bytes. The range is resolved (and the journal opened at the database's committed head)
 * before this returns; entries are read, verified against the hash chain, and rendered as the stream is
 * consumed, one entry at a time, so memory stays bounded by the largest entry — except for the net
 * `changeset`/`patchset`/`sql` forms, which combine the changesets of a run of entries as
 * `sqlite3changegroup` does (memory grows with the number of distinct rows changed).
 *
 * @example
 * const stream = exportChanges('app.db', { since: 41, format: 'sql' });
 * console.error(`entries ${stream.since.position.seq + 1}..${stream.until.position.seq}`);
 * stream.pipe(createWriteStream('changes.sql'));
 * @throws RangeError for an unknown format or a position that is not a seq, hash prefix or `@time`, or
 *   `since` after `until`.
 * @throws ChangetrailError POSITION_NOT_FOUND, POSITION_AMBIGUOUS, JOURNAL_MISMATCH, and the journal's read
 *   errors; the stream fails with EXPORT_RANGE_UNSUPPORTED (`details.seq`, `details.kind`, `details.hint`) at a
 *   schema entry for changeset/patchset or at a resync entry, and with the journal's read errors.
 */
export function exportChanges(source: TrailSource, options: ExportOptions): ExportStream {
  const format = options.format ?? 'ndjson';
  if (!EXPORT_FORMATS.includes(format)) throw new RangeError(`exportChanges: unknown format ${String(format)} (expected ${EXPORT_FORMATS.join(', ')})`);
  if (options.since === undefined) throw new TypeError('exportChanges: since is required (0 for everything)');
  const journal = JournalSource.open(source);
  const since = resolvePosition(journal, options.since);
  const until: ResolvedPosition = options.until === undefined ? { position: journal.head, spec: 'head', by: 'seq' } : resolvePosition(journal, options.until);
  if (since.position.seq > until.position.seq) {
    throw new RangeError(`exportChanges: since (${since.spec} = entry ${since.position.seq}) is after until (${until.spec} = entry ${until.position.seq})`);
  }
  const context: ExportContext = {
    journal, format, since: since.position, until: until.position, each: options.each === true, includeShadow: options.includeShadow === true,
    tables: options.tables === undefined || options.tables.length === 0 ? null : new Set(options.tables.map(foldAscii)),
  };
  const stream = Readable.from(toBuffers(render(context, createWriter(context))), { objectMode: false });
  return Object.assign(stream, { format, since, until }) as ExportStream;
}

function createWriter(context: ExportContext): FormatWriter {
  switch (context.format) {
    case 'changeset':
    case 'patchset': return new ChangesetWriter(context);
    case 'sql': return new SqlWriter(context);
    case 'ndjson': return new NdjsonWriter(context);
    case 'debezium': return new DebeziumWriter(context);
  }
}

function* render(context: ExportContext, writer: FormatWriter): Generator<Chunk> {
  const { since, until, journal } = context;
  try {
    yield* writer.begin();
    if (until.seq > since.seq) {
      for (const entry of journal.entries(since.seq + 1, until.seq)) yield* writer.entry(entry, journal.schemaFor(entry.seq));
    }
    yield* writer.end();
  } finally {
    writer.close?.();
    journal.close();
  }
}

function* toBuffers(chunks: Iterable<Chunk>): Generator<Buffer> {
  for (const chunk of chunks) {
    if (typeof chunk === 'string') {
      if (chunk.length > 0) yield Buffer.from(chunk, 'utf8');
    } else if (chunk.byteLength > 0) {
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  }
}

export type { Position, TrailSource, PositionSpec, ExportFormat };
