/**
 * The schema as of entry N (issue 8 item 12): changesets name columns by position only, so rendering an
 * old entry with today's column names mislabels values once columns were added or dropped. The schema
 * an entry's changeset is expressed in is the base state's (genesis, or the latest resync snapshot)
 * with the migrations between replayed on it.
 *
 * Migrations are replayed on a schema-only in-memory database (the base's CREATE statements, no rows),
 * under the replay guard: journal SQL is untrusted (replay-guard.ts). Schemas are computed lazily in
 * journal order and cached per schema change, so `schemaFor` is a binary search after the first call
 * that reaches a change.
 *
 * Every consumer uses this one history: show, export, replica checks and audit (history, blame, diff),
 * which builds it from its index's list of schema changes ({@link schemaHistoryOf}) so that an indexed
 * query never reads the whole journal, and names renamed columns with {@link columnRenames}.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ChangetrailError } from '../errors.js';
import { startingFile } from '../journal/retention-base.js';
import type { Journal } from '../journal/journal.js';
import { installReplayGuard, runUntrustedSql } from './replay-guard.js';
import { foldName, readSchema, type DatabaseSchema } from './schema.js';

/** Schemas of a journal over its history. See {@link openSchemaHistory}. */
export interface SchemaHistory {
  /**
   * The schema in which entry `seq`'s changeset is expressed: for a write, the schema after every schema
   * entry before it; for a schema entry, the schema after its own migration (its session recorded the
   * rows at commit); for a resync entry, its snapshot's. `seq` 0 is the genesis schema.
   *
   * @throws RangeError outside 0..head. ChangetrailError REPLAY_REFUSED / SQLITE_ERROR when a migration
   *   cannot be replayed on the schema.
   */
  schemaFor(seq: number): DatabaseSchema;
  /** Sequence numbers of the entries that change the schema (schema and resync entries), ascending. */
  readonly changes: readonly number[];
  /** Frees the in-memory database. Idempotent. */
  close(): void;
}

/** An entry that changes the schema, as a history needs it. */
export interface SchemaChange {
  readonly seq: number;
  readonly kind: 'schema' | 'resync';
  /** schema: the migration; resync: the snapshot file. */
  readonly source: string;
}

/** A history that more schema changes can be added to, in journal order (a scan that finds them as it goes). */
export interface GrowingSchemaHistory extends SchemaHistory {
  /**
   * Adds the next schema change. Schemas already computed stay valid: each covers a prefix of the changes.
   *
   * @throws RangeError when `change.seq` is not after the last change added or is past the head.
   */
  add(change: SchemaChange): void;
}

/** The schema change an entry makes, or null for a data write. */
export function schemaChangeOf(entry: { seq: number; kind: string; sql?: string; snapshot?: { file: string } }): SchemaChange | null {
  if (entry.kind === 'schema') return { seq: entry.seq, kind: 'schema', source: entry.sql ?? '' };
  if (entry.kind === 'resync') return { seq: entry.seq, kind: 'resync', source: entry.snapshot?.file ?? '' };
  return null;
}

/**
 * Reads the journal once (anchored to its head) to find the schema changes; schemas are built on demand.
 *
 * @example
 * const history = openSchemaHistory(openJournal(dir, readCommittedHead(db)));
 * changesetToRows(entry.changeset, toChangesetSchema(history.schemaFor(entry.seq)));
 * history.close();
 * @throws ChangetrailError JOURNAL_* from reading the journal.
 */
export function openSchemaHistory(journal: Journal): SchemaHistory {
  const changes: SchemaChange[] = [];
  for (const entry of journal.entries()) {
    const change = schemaChangeOf(entry);
    if (change !== null) changes.push(change);
  }
  return schemaHistoryOf(journal.dir, journal.head.seq, changes);
}

/**
 * A history of the journal in `dir` (committed head at `headSeq`) from schema changes the caller already
 * knows, ascending (e.g. from an index), without reading the journal; more can be added in order.
 *
 * @throws RangeError for changes out of order or past the head.
 */
export function schemaHistoryOf(dir: string, headSeq: number, changes: readonly SchemaChange[]): GrowingSchemaHistory {
  const history = new ReplayedSchemaHistory(dir, headSeq);
  for (const change of changes) history.add(change);
  return history;
}

class ReplayedSchemaHistory implements GrowingSchemaHistory {
  readonly #dir: string;
  readonly #headSeq: number;
  readonly #points: SchemaChange[] = [];
  readonly #seqs: number[] = [];
  /** schemas[i]: the schema after the first i changes (0: genesis). */
  readonly #schemas: DatabaseSchema[] = [];
  #work: DatabaseSync | null = null;
  /** genesis.db, or the base checkpoint's snapshot of a pruned journal. */
  readonly #baseFile: string;

  constructor(dir: string, headSeq: number) {
    this.#baseFile = startingFile(dir);
    this.#dir = dir;
    this.#headSeq = headSeq;
  }

  get changes(): readonly number[] {
    return this.#seqs;
  }

  add(change: SchemaChange): void {
    const last = this.#seqs.at(-1) ?? 0;
    if (!Number.isSafeInteger(change.seq) || change.seq <= last || change.seq > this.#headSeq) {
      throw new RangeError(`schema history: change ${change.seq} must come after ${last} and by the head (${this.#headSeq})`);
    }
    this.#points.push(change);
    this.#seqs.push(change.seq);
  }

  schemaFor(seq: number): DatabaseSchema {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > this.#headSeq) throw new RangeError(`schemaFor: seq must be in 0..${this.#headSeq}`);
    const index = countAtOrBefore(this.#seqs, seq);
    while (this.#schemas.length <= index) this.#schemas.push(this.#next(this.#schemas.length));
    return this.#schemas[index]!;
  }

  close(): void {
    this.#work?.close();
    this.#work = null;
  }

  /** The schema after `count` changes, from the working database left at `count - 1` changes. */
  #next(count: number): DatabaseSchema {
    if (count === 0) return this.#loadBase(this.#baseFile);
    const point = this.#points[count - 1]!;
    if (point.kind === 'resync') return this.#loadBase(point.source);
    const work = this.#work!;
    work.exec('BEGIN');
    try {
      runUntrustedSql(work, point.source, point.seq);
      work.exec('COMMIT');
    } catch (error) {
      if (work.isTransaction) work.exec('ROLLBACK');
      throw error;
    }
    return readSchema(work);
  }

  #loadBase(file: string): DatabaseSchema {
    this.close();
    const work = new DatabaseSync(':memory:', { allowExtension: false, enableForeignKeyConstraints: false });
    installReplayGuard(work);
    this.#work = work;
    const { statements, analyzed } = readBaseStatements(join(this.#dir, file));
    work.exec('BEGIN');
    try {
      for (const statement of statements) createQuietly(work, statement);
      if (analyzed) work.exec('ANALYZE');
      work.exec('COMMIT');
    } catch (error) {
      if (work.isTransaction) work.exec('ROLLBACK');
      throw error;
    }
    return readSchema(work);
  }
}

interface BaseStatement {
  type: string;
  sql: string;
}

/**
 * The CREATE statements of a snapshot file, in creation order, without what SQLite makes by itself:
 * automatic indexes, `sqlite_*` tables and virtual tables' shadow tables.
 */
function readBaseStatements(path: string): { statements: BaseStatement[]; analyzed: boolean } {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true, allowExtension: false });
  } catch (cause) {
    throw new ChangetrailError('IO_ERROR', `open snapshot ${path}: ${(cause as Error).message}`, { operation: 'open snapshot', path }, { cause });
  }
  try {
    const shadows = new Set((db.prepare(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'`).all() as { name: string }[]).map((row) => foldName(row.name)));
    const rows = db.prepare(`SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY rowid`).all() as { type: string; name: string; tbl_name: string; sql: string | null }[];
    const analyzed = rows.some((row) => foldName(row.name) === 'sqlite_stat1');
    const statements = rows
      .filter((row) => row.sql !== null && !foldName(row.name).startsWith('sqlite_') && !shadows.has(foldName(row.tbl_name)))
      .map((row) => ({ type: row.type, sql: row.sql! }));
    return { statements, analyzed };
  } finally {
    db.close();
  }
}

/**
 * Runs one CREATE statement under the guard. A virtual table whose module this build lacks (or the
 * guard refuses) is left out: its rows live where no changeset records them anyway.
 */
function createQuietly(work: DatabaseSync, statement: BaseStatement): void {
  try {
    runUntrustedSql(work, statement.sql);
  } catch (error) {
    const isVirtual = statement.type === 'table' && /^\s*create\s+virtual\s/i.test(statement.sql);
    if (!isVirtual) throw error;
  }
}

/** How many of the ascending `seqs` are ≤ `seq`. */
function countAtOrBefore(seqs: readonly number[], seq: number): number {
  let low = 0;
  let high = seqs.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (seqs[mid]! <= seq) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Which columns a schema change renamed (old name → new name), from a table's columns before and after
 * it. A column whose name exists before and after is the same column; of the rest, an old and a new column
 * at the same position are one column renamed (RENAME COLUMN keeps the position; a dropped column and an
 * added one do not share a position, since ADD COLUMN appends).
 */
export function columnRenames(before: readonly string[], after: readonly string[]): Map<string, string> {
  const renames = new Map<string, string>();
  const kept = new Set(before.filter((column) => after.includes(column)));
  before.forEach((column, position) => {
    const candidate = after[position];
    if (kept.has(column) || candidate === undefined || before.includes(candidate)) return;
    renames.set(column, candidate);
  });
  return renames;
}
