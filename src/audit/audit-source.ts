/**
 * One audit query's view of a journal: the journal itself, its index when usable, and the schema
 * timeline. Indexed answers that meet a damaged or stale index are answered again by scanning.
 */
import type { JournalEntry } from '../journal/journal.js';
import { openAuditJournal, type AuditJournal } from './audit-journal.js';
import { auditIndexPath, isIndexDamage, openAuditIndex, removeIndex, type AuditIndex, type IndexMode } from './audit-index.js';
import { EntryReader, IndexStaleError } from './entry-reader.js';
import { SchemaTimeline, type SchemaEvent } from './schema-timeline.js';

/** Options every audit query takes. */
export interface AuditOptions {
  /** 'auto' (default): use and maintain the index; 'read': use it without writing it; 'off': scan the journal. */
  index?: IndexMode;
}

export class AuditSource {
  readonly journal: AuditJournal;
  readonly index: AuditIndex | null;
  readonly #reader: EntryReader;
  #timeline: SchemaTimeline | null = null;

  private constructor(journal: AuditJournal, index: AuditIndex | null) {
    this.journal = journal;
    this.index = index;
    this.#reader = new EntryReader(journal.journalDir);
  }

  static open(databasePath: string, options: AuditOptions = {}): AuditSource {
    const journal = openAuditJournal(databasePath);
    return new AuditSource(journal, openAuditIndex(journal, options.index ?? 'auto'));
  }

  /** A source over the same journal without the index (after the index failed a check). */
  withoutIndex(): AuditSource {
    return new AuditSource(this.journal, null);
  }

  /** Entry `seq` through the index (read at its recorded place, checked against its recorded hash). */
  indexedEntry(seq: number): JournalEntry {
    const index = this.index!;
    return index.tailEntry(seq) ?? this.#reader.read(index.ref(seq));
  }

  /** The schema timeline from the index's list of schema and resync entries. */
  indexedTimeline(): SchemaTimeline {
    if (this.#timeline === null) {
      const events = this.index!.nonWriteSeqs().map((seq) => schemaEventOf(this.indexedEntry(seq)));
      this.#timeline = new SchemaTimeline(this.journal.journalDir, events);
    }
    return this.#timeline;
  }

  close(): void {
    this.#reader.close();
    this.#timeline?.close();
    this.index?.close();
  }
}

/** The schema or resync entry as the timeline records it. */
export function schemaEventOf(entry: JournalEntry): SchemaEvent {
  if (entry.kind === 'resync') return { seq: entry.seq, kind: 'resync', snapshotFile: entry.snapshot!.file };
  return { seq: entry.seq, kind: 'schema', sql: entry.sql ?? '' };
}

/**
 * Runs `indexed` when the source has an index, else `scan`. When the index fails a check or SQLite
 * reports it damaged, it is removed (when writable) and the question is answered by `scan`.
 */
export function answer<T>(source: AuditSource, indexed: (source: AuditSource) => T, scan: (source: AuditSource) => T): T {
  if (source.index === null) return scan(source);
  try {
    return indexed(source);
  } catch (error) {
    if (!isIndexDamage(error)) throw error;
    source.index.close();
    try {
      removeIndex(auditIndexPath(source.journal.journalDir));
    } catch {
      // A read-only directory: the damaged index stays, and every query scans.
    }
    const bare = source.withoutIndex();
    try {
      return scan(bare);
    } finally {
      bare.close();
    }
  }
}

export { IndexStaleError };
