/**
 * What every export-side operation reads: the database's committed head, the journal it names (opened
 * with the one head-anchored reader), and the schema each entry is expressed in. One object so that
 * export, restore and recover agree on where the head is and never read past it.
 */
import { resolve } from 'node:path';
import { openJournal, readCommittedHead, type Journal, type JournalEntry } from '../journal/journal.js';
import type { Position } from '../journal/position.js';
import type { RetainedBase } from '../journal/retention-base.js';
import type { DatabaseSchema } from '../apply/schema.js';
import { openSchemaHistory, type SchemaHistory } from '../apply/schema-history.js';

export type { Position };

/** The part of a `Trail` the export side needs (structural: export/ does not import write/). */
export interface TrailLike {
  readonly path: string;
  readonly journalDir: string;
}

/** A database path, or an open trail. */
export type TrailSource = string | TrailLike;

/** Where a database and its journal live. */
export function sourcePaths(source: TrailSource): { databasePath: string; journalDir: string } {
  if (typeof source === 'string') {
    const databasePath = resolve(source);
    return { databasePath, journalDir: `${databasePath}.changes` };
  }
  if (typeof source !== 'object' || source === null || typeof source.path !== 'string' || typeof source.journalDir !== 'string') {
    throw new TypeError('expected a database path or a trail');
  }
  return { databasePath: source.path, journalDir: source.journalDir };
}

/** An opened journal, anchored to the head the database committed. */
export class JournalSource {
  readonly databasePath: string;
  readonly journal: Journal;
  #history: SchemaHistory | null = null;

  private constructor(databasePath: string, journal: Journal) {
    this.databasePath = databasePath;
    this.journal = journal;
  }

  /**
   * Opens the journal of `source` at the head its database committed (or at `head`, when given).
   * @throws ChangetrailError JOURNAL_MISMATCH (no journal, or another database's), SQLITE_ERROR, IO_ERROR.
   */
  static open(source: TrailSource, head?: Position): JournalSource {
    const { databasePath, journalDir } = sourcePaths(source);
    return new JournalSource(databasePath, openJournal(journalDir, head ?? readCommittedHead(databasePath)));
  }

  get head(): Position {
    return this.journal.head;
  }

  get journalDir(): string {
    return this.journal.dir;
  }

  /** Where retained history starts (null: at genesis); see FORMAT.md §11. */
  get base(): RetainedBase | null {
    return this.journal.base;
  }

  /** Verified committed entries `from..to` (clamped to 1..head). */
  entries(from: number, to: number): Iterable<JournalEntry> {
    return this.journal.entries({ from, to });
  }

  /** The position of entry `seq` (seq 0: the chain root). */
  positionAt(seq: number): Position {
    return this.journal.positionAt(seq);
  }

  /**
   * The schema in which entry `seq`'s changeset is expressed (the one schema history of src/apply: a
   * schema entry's migration is replayed there under the replay guard, so journal SQL that SQLite would
   * refuse, or that reaches outside the database, fails here before any export carries it).
   */
  schemaFor(seq: number): DatabaseSchema {
    this.#history ??= openSchemaHistory(this.journal);
    return this.#history.schemaFor(seq);
  }

  /** Frees the schema history's in-memory database. Idempotent. */
  close(): void {
    this.#history?.close();
    this.#history = null;
  }
}
