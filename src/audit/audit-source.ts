/**
 * One audit query's view of a journal: the journal itself, its index when usable, and the schema history
 * (src/apply/schema-history.ts, the one "schema as of entry N"). Indexed answers that meet a damaged or
 * stale index are answered again by scanning.
 */
import { schemaChangeOf, schemaHistoryOf, type GrowingSchemaHistory, type SchemaChange, type SchemaHistory } from '../apply/schema-history.js';
import { findTable } from '../apply/schema.js';
import type { JournalEntry } from '../journal/journal.js';
import { openAuditJournal, type AuditJournal } from './audit-journal.js';
import { auditIndexPath, isIndexDamage, openAuditIndex, removeIndex, type AuditIndex, type IndexMode } from './audit-index.js';
import { EntryReader, IndexStaleError } from './entry-reader.js';
import type { ColumnsOf } from './row-changes.js';

/** Options every audit query takes. */
export interface AuditOptions {
  /** 'auto' (default): use and maintain the index; 'read': use it without writing it; 'off': scan the journal. */
  index?: IndexMode;
}

export class AuditSource {
  readonly journal: AuditJournal;
  readonly index: AuditIndex | null;
  readonly #reader: EntryReader;
  #schemas: GrowingSchemaHistory | null = null;

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

  /** The schema history from the index's list of schema and resync entries (the journal is not read). */
  indexedSchemas(): SchemaHistory {
    if (this.#schemas === null) {
      const changes = this.index!.nonWriteSeqs().map((seq) => schemaChangeOf(this.indexedEntry(seq))).filter((c): c is SchemaChange => c !== null);
      this.#schemas = schemaHistoryOf(this.journal.journalDir, this.journal.head.seq, changes);
    }
    return this.#schemas;
  }

  /** An empty schema history that a scan fills, in journal order, with {@link noteSchemaChange}. Close it. */
  scanningSchemas(): GrowingSchemaHistory {
    return schemaHistoryOf(this.journal.journalDir, this.journal.head.seq, []);
  }

  close(): void {
    this.#reader.close();
    this.#schemas?.close();
    this.index?.close();
  }
}

/** Adds the schema change `entry` makes (none for a data write) to a history a scan fills. */
export function noteSchemaChange(history: GrowingSchemaHistory, entry: JournalEntry): void {
  const change = schemaChangeOf(entry);
  if (change !== null) history.add(change);
}

/** The column names of each table as of entry `seq`, for naming its changeset's values. */
export function columnsAt(history: SchemaHistory, seq: number): ColumnsOf {
  const schema = history.schemaFor(seq);
  return (table) => findTable(schema, table)?.columns ?? null;
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
