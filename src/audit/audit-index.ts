/**
 * The audit index: a SQLite file of its own, `<journal>/index/audit.db`, mapping (table, key) → the
 * entries that touched the row, and actor/table/kind/time → entries. It is derived data, never needed for
 * a correct answer:
 *
 * - it records the position it covers (seq and entry hash); that entry must still be on the journal's
 *   chain to the committed head, else the index is rebuilt (or bypassed);
 * - every entry an answer uses is read from the journal at the recorded place and must have the recorded
 *   hash; each row's entries are a linked list (every posting names the previous one) checked on use;
 * - any SQLite error reading it (a truncated or corrupted file), or a failed check, drops it: rebuilt when
 *   the directory is writable, otherwise the question is answered by scanning the journal.
 *
 * Only audit queries create or update it, and only when the journal directory is writable; reading commands
 * (`status`, `log` without filters, `show`, `verify`) never touch it.
 */
import { accessSync, chmodSync, constants as fs, existsSync, linkSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { foldName } from '../apply/schema.js';
import { bytesEqual } from '../journal/bytes.js';
import { GENESIS_FILE, MANIFEST_FILE } from '../journal/format.js';
import type { ByteLocation, JournalEntry } from '../journal/journal.js';
import { parseSegmentName } from '../journal/segment.js';
import type { AuditJournal } from './audit-journal.js';
import { entriesAfter, IndexStaleError, type EntryRef } from './entry-reader.js';
import { resyncDifferences } from './resync-changes.js';
import { rowTouchesOf, type RowTouch } from './row-changes.js';
import { compareStates } from './state-compare.js';

/** Layout version of the index file; another version is rebuilt. */
export const AUDIT_INDEX_VERSION = 1;
export const AUDIT_INDEX_DIR = 'index';
export const AUDIT_INDEX_FILE = 'audit.db';

/**
 * 'auto': use the index, creating or updating it when the directory is writable; 'read': use it as it is
 * (entries after the position it covers are read from the journal), never write it; 'off': scan the journal.
 */
export type IndexMode = 'auto' | 'read' | 'off';

const SCHEMA = `
CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, journal_id TEXT NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL, next_segment INTEGER, next_offset INTEGER);
CREATE TABLE entries(seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, time INTEGER NOT NULL, actor TEXT, hash BLOB NOT NULL, segment INTEGER NOT NULL, offset INTEGER NOT NULL);
CREATE INDEX entries_actor ON entries(actor, seq);
CREATE INDEX entries_time ON entries(time);
CREATE INDEX entries_kind ON entries(kind, seq);
CREATE TABLE entry_tables(tbl TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (tbl, seq)) WITHOUT ROWID;
CREATE TABLE postings(tbl TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, prev INTEGER NOT NULL, PRIMARY KEY (tbl, key, seq)) WITHOUT ROWID;
CREATE TABLE rows(tbl TEXT NOT NULL, key TEXT NOT NULL, last INTEGER NOT NULL, live INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID;
`;

/** What the index knows of a row: the last entry that changed it (0: genesis), whether it exists. */
export interface IndexedRow {
  readonly key: string;
  readonly last: number;
  readonly live: boolean;
}

/** Conditions the index can answer; the caller applies the rest (message, meta) to the entries. */
export interface IndexFilter {
  actor?: string;
  table?: string;
  kind?: string;
  fromSeq?: number;
  toSeq?: number;
  sinceTime?: number;
  untilTime?: number;
  reverse?: boolean;
}

export function auditIndexPath(journalDir: string): string {
  return join(journalDir, AUDIT_INDEX_DIR, AUDIT_INDEX_FILE);
}

/**
 * The index of `journal`, current to its committed head, or null when it cannot be used (missing and not
 * creatable, or damaged and read-only): answer by scanning then. When the file is current but read-only,
 * entries after the position it covers are held in `tail`.
 */
export function openAuditIndex(journal: AuditJournal, mode: IndexMode = 'auto'): AuditIndex | null {
  // A pruned journal (FORMAT.md §11) is scanned: the index is built from genesis, which is gone.
  if (mode === 'off' || journal.reader.base !== null) return null;
  const path = auditIndexPath(journal.journalDir);
  const writable = mode === 'auto' && canWrite(journal.journalDir, path);
  if (!existsSync(path) && !writable) return null;
  try {
    return AuditIndex.open(journal, path, writable);
  } catch (error) {
    if (!isIndexDamage(error)) throw error;
    if (!writable) return null;
  }
  removeIndex(path);
  try {
    return AuditIndex.open(journal, path, true);
  } catch (error) {
    if (!isIndexDamage(error)) throw error;
    return null;
  }
}

/** Deletes the index file (it is rebuilt on the next audit query). */
export function removeIndex(path: string): void {
  for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
}

/** SQLite errors from the index file and failed consistency checks: the index is dropped, never trusted. */
export function isIndexDamage(error: unknown): boolean {
  return error instanceof IndexStaleError || (error as { code?: unknown } | null)?.code === 'ERR_SQLITE_ERROR';
}

function canWrite(journalDir: string, path: string): boolean {
  try {
    const dir = join(journalDir, AUDIT_INDEX_DIR);
    accessSync(existsSync(dir) ? dir : journalDir, fs.W_OK);
    if (existsSync(path)) accessSync(path, fs.W_OK);
    return true;
  } catch {
    return false;
  }
}

export class AuditIndex {
  readonly #db: DatabaseSync;
  readonly #journal: AuditJournal;
  /** The last indexed entry (null: only genesis). */
  #covered: EntryRef | null = null;
  /** Committed entries after the covered position (only when the file could not be updated). */
  readonly tail: JournalEntry[] = [];
  readonly #statements = new Map<string, StatementSync>();

  private constructor(db: DatabaseSync, journal: AuditJournal) {
    this.#db = db;
    this.#journal = journal;
  }

  /** @internal Use openAuditIndex. */
  static open(journal: AuditJournal, path: string, writable: boolean): AuditIndex {
    const created = !existsSync(path);
    if (created) createIndexFile(journal, path);
    const db = new DatabaseSync(path, { readOnly: !writable, timeout: 10_000 });
    const index = new AuditIndex(db, journal);
    try {
      index.#load(writable);
      return index;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /** The position covered by the file (before `tail`). */
  get coveredSeq(): number {
    return this.#covered?.seq ?? 0;
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** Entries that touched the row, ascending, checked as a linked list against the row's summary. */
  postings(table: string, key: string): number[] {
    const seqs = this.#all('SELECT seq, prev FROM postings WHERE tbl = ? AND key = ? ORDER BY seq', foldName(table), key);
    const row = this.#get('SELECT last, n FROM rows WHERE tbl = ? AND key = ?', foldName(table), key);
    let prev = 0;
    for (const posting of seqs) {
      if (Number(posting.prev) !== prev) throw new IndexStaleError(`postings of ${table} ${key} are not linked at ${String(posting.seq)}`);
      prev = Number(posting.seq);
    }
    if (seqs.length > 0 || row !== undefined) {
      if (row === undefined || Number(row.last) !== prev || Number(row.n) !== seqs.length) throw new IndexStaleError(`row summary of ${table} ${key} disagrees with its postings`);
    }
    return [...seqs.map((p) => Number(p.seq)), ...this.#tailSeqs((touch) => touch.table === foldName(table) && touch.key === key)];
  }

  /** Where entry `seq` is and its hash (tail entries are returned as read). */
  ref(seq: number): EntryRef {
    const row = this.#get('SELECT segment, offset, hash FROM entries WHERE seq = ?', seq);
    if (row === undefined || !(row.hash instanceof Uint8Array)) throw new IndexStaleError(`entry ${seq} is not in the index`);
    return { seq, segment: Number(row.segment), offset: Number(row.offset), hash: new Uint8Array(row.hash) };
  }

  /** The tail entry `seq`, if it is one. */
  tailEntry(seq: number): JournalEntry | undefined {
    return seq > this.coveredSeq ? this.tail[seq - this.coveredSeq - 1] : undefined;
  }

  /** Rows of a table as the index knows them (the caller checks each against the journal). */
  rows(table: string): IndexedRow[] {
    return this.#all('SELECT key, last, live FROM rows WHERE tbl = ? ORDER BY key', foldName(table))
      .map((r) => ({ key: String(r.key), last: Number(r.last), live: Number(r.live) === 1 }));
  }

  /** Schema and resync entries (the schema history needs them), ascending. */
  nonWriteSeqs(): number[] {
    const indexed = this.#all(`SELECT seq FROM entries WHERE kind IN ('schema', 'resync') ORDER BY seq`).map((r) => Number(r.seq));
    return [...indexed, ...this.tail.filter((e) => e.kind !== 'write').map((e) => e.seq)];
  }

  /** Entry seqs matching `filter`, in order (ascending, or descending with `reverse`). */
  filter(filter: IndexFilter): number[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.actor !== undefined) { where.push('e.actor = ?'); params.push(filter.actor); }
    if (filter.kind !== undefined) { where.push('e.kind = ?'); params.push(filter.kind); }
    if (filter.fromSeq !== undefined) { where.push('e.seq >= ?'); params.push(filter.fromSeq); }
    if (filter.toSeq !== undefined) { where.push('e.seq <= ?'); params.push(filter.toSeq); }
    if (filter.sinceTime !== undefined) { where.push('e.time >= ?'); params.push(filter.sinceTime); }
    if (filter.untilTime !== undefined) { where.push('e.time <= ?'); params.push(filter.untilTime); }
    if (filter.table !== undefined) { where.push('e.seq IN (SELECT seq FROM entry_tables WHERE tbl = ?)'); params.push(foldName(filter.table)); }
    const sql = `SELECT e.seq AS seq FROM entries e${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY e.seq`;
    const seqs = this.#all(sql, ...params).map((r) => Number(r.seq));
    const tail = this.tail.filter((entry) => matchesIndexFilter(entry, filter, this.#journal)).map((e) => e.seq);
    const all = [...seqs, ...tail];
    return filter.reverse === true ? all.reverse() : all;
  }

  #tailSeqs(match: (touch: RowTouch) => boolean): number[] {
    return this.tail.filter((entry) => touchesOf(this.#journal, entry).some(match)).map((e) => e.seq);
  }

  #load(writable: boolean): void {
    const meta = this.#get('SELECT version, journal_id, seq, hash, next_segment, next_offset FROM meta WHERE id = 1');
    if (meta === undefined || Number(meta.version) !== AUDIT_INDEX_VERSION || String(meta.journal_id) !== this.#journal.head.journalId || !(meta.hash instanceof Uint8Array)) {
      throw new IndexStaleError('the index belongs to another journal or version');
    }
    const seq = Number(meta.seq);
    if (seq > 0) {
      this.#covered = this.ref(seq);
      if (!bytesEqual(this.#covered.hash, new Uint8Array(meta.hash))) throw new IndexStaleError('the covered entry disagrees with its record');
    } else if (!bytesEqual(new Uint8Array(meta.hash), this.#journal.identity.rootHash)) {
      throw new IndexStaleError('the index starts from another chain root');
    }
    if (seq === this.#journal.committed.seq) {
      if (!bytesEqual(new Uint8Array(meta.hash), this.#journal.committed.hash)) throw new IndexStaleError('the covered entry is not the committed head');
      return;
    }
    if (writable) this.#update();
    else this.tail.push(...entriesAfter(this.#journal, this.#covered, locationOf(meta)));
  }

  /** Indexes the entries after the covered position, in one transaction. */
  #update(): void {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const meta = this.#get('SELECT seq, next_segment, next_offset FROM meta WHERE id = 1');
      // Another process may have brought the index forward while this one waited for the write lock.
      if (meta !== undefined && Number(meta.seq) !== this.coveredSeq) this.#covered = Number(meta.seq) === 0 ? null : this.ref(Number(meta.seq));
      const entries = entriesAfter(this.#journal, this.#covered, meta === undefined ? null : locationOf(meta));
      let next = entries.next();
      for (; next.done !== true; next = entries.next()) this.#add(next.value);
      const location = next.value;
      if (this.#covered !== null) {
        this.#run('UPDATE meta SET seq = ?, hash = ?, next_segment = ?, next_offset = ? WHERE id = 1',
          this.#covered.seq, this.#covered.hash, location?.segment ?? null, location?.offset ?? null);
      }
      this.#db.exec('COMMIT');
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  #add(entry: JournalEntry): void {
    const segment = parseSegmentName(entry.file)!;
    this.#run('INSERT INTO entries(seq, kind, time, actor, hash, segment, offset) VALUES (?, ?, ?, ?, ?, ?, ?)',
      entry.seq, entry.kind, entry.time, entry.actor, entry.hash, segment, entry.offset);
    const touches = touchesOf(this.#journal, entry);
    for (const table of new Set([...touches.map((t) => t.table), ...entry.tables.map((t) => foldName(t.table))])) {
      this.#run('INSERT OR IGNORE INTO entry_tables(tbl, seq) VALUES (?, ?)', table, entry.seq);
    }
    for (const touch of touches) {
      const row = this.#get('SELECT last FROM rows WHERE tbl = ? AND key = ?', touch.table, touch.key);
      this.#run('INSERT INTO postings(tbl, key, seq, prev) VALUES (?, ?, ?, ?)', touch.table, touch.key, entry.seq, row === undefined ? 0 : Number(row.last));
      this.#run(`INSERT INTO rows(tbl, key, last, live, n) VALUES (?, ?, ?, ?, 1)
        ON CONFLICT(tbl, key) DO UPDATE SET last = excluded.last, live = excluded.live, n = n + 1`, touch.table, touch.key, entry.seq, touch.op === 'delete' ? 0 : 1);
    }
    this.#covered = { seq: entry.seq, segment, offset: entry.offset, hash: entry.hash };
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) this.#statements.set(sql, (statement = this.#db.prepare(sql)));
    return statement;
  }

  #get(sql: string, ...params: (string | number | null | Uint8Array)[]): Record<string, unknown> | undefined {
    return this.#statement(sql).get(...params) as Record<string, unknown> | undefined;
  }

  #all(sql: string, ...params: (string | number | null | Uint8Array)[]): Record<string, unknown>[] {
    return this.#statement(sql).all(...params) as Record<string, unknown>[];
  }

  #run(sql: string, ...params: (string | number | null | Uint8Array)[]): void {
    this.#statement(sql).run(...params);
  }
}

function locationOf(meta: Record<string, unknown>): ByteLocation | null {
  return meta.next_segment === null || meta.next_offset === null ? null : { segment: Number(meta.next_segment), offset: Number(meta.next_offset) };
}

/** The rows an entry touched; for a resync entry, the rows whose values its snapshot changed. */
export function touchesOf(journal: AuditJournal, entry: JournalEntry): RowTouch[] {
  if (entry.kind !== 'resync') return rowTouchesOf(entry.changeset);
  return resyncDifferences(journal, entry).map((d) => ({ table: foldName(d.table), key: d.key, op: d.op }));
}

/** The filter conditions the index answers, applied to an entry read from the journal. */
export function matchesIndexFilter(entry: JournalEntry, filter: IndexFilter, journal: AuditJournal): boolean {
  if (filter.actor !== undefined && entry.actor !== filter.actor) return false;
  if (filter.kind !== undefined && entry.kind !== filter.kind) return false;
  if (filter.fromSeq !== undefined && entry.seq < filter.fromSeq) return false;
  if (filter.toSeq !== undefined && entry.seq > filter.toSeq) return false;
  if (filter.sinceTime !== undefined && entry.time < filter.sinceTime) return false;
  if (filter.untilTime !== undefined && entry.time > filter.untilTime) return false;
  if (filter.table !== undefined) {
    const table = foldName(filter.table);
    if (!entry.tables.some((t) => foldName(t.table) === table) && !touchesOf(journal, entry).some((t) => t.table === table)) return false;
  }
  return true;
}

/** A new index file holding only the genesis rows, with the journal's file modes. */
function createIndexFile(journal: AuditJournal, path: string): void {
  const dir = join(journal.journalDir, AUDIT_INDEX_DIR);
  mkdirSync(dir, { recursive: true, mode: statSync(journal.journalDir).mode & 0o777 });
  const temp = `${path}.${process.pid}.tmp`;
  removeIndex(temp);
  const db = new DatabaseSync(temp);
  try {
    db.exec(SCHEMA);
    db.exec('BEGIN');
    db.prepare('INSERT INTO meta(id, version, journal_id, seq, hash) VALUES (1, ?, ?, 0, ?)').run(AUDIT_INDEX_VERSION, journal.head.journalId, journal.identity.rootHash);
    seedGenesisRows(journal, db);
    db.exec('COMMIT');
  } finally {
    db.close();
  }
  chmodSync(temp, statSync(join(journal.journalDir, MANIFEST_FILE)).mode & 0o666);
  // link() fails if another process created the index meanwhile: keep theirs (a rename would replace a
  // file that process may be writing, next to its rollback journal).
  try {
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    removeIndex(temp);
  }
}

/** Rows present at genesis are the base of blame (entry 0). */
function seedGenesisRows(journal: AuditJournal, index: DatabaseSync): void {
  const genesis = new DatabaseSync(join(journal.journalDir, GENESIS_FILE), { readOnly: true });
  try {
    const empty = new DatabaseSync(':memory:');
    try {
      const insert = index.prepare('INSERT INTO rows(tbl, key, last, live, n) VALUES (?, ?, 0, 1, 0)');
      for (const row of compareStates(empty, genesis)) insert.run(foldName(row.table), row.key);
    } finally {
      empty.close();
    }
  } finally {
    genesis.close();
  }
}

