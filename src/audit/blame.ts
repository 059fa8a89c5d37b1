/**
 * Blame: for each row of a table as of the committed head, the entry that last changed it (entry 0 for a
 * row unchanged since genesis); for one row, also per column. A row is changed by an entry whose
 * changeset touches it (directly or through a trigger or foreign-key action) or by a resync entry whose
 * snapshot differs from the state before it. Changes a migration makes that SQLite sessions cannot record
 * (a table rebuilt and renamed in one script) are in no changeset and blame nothing.
 */
import { foldName, findTable, type DatabaseSchema } from '../apply/schema.js';
import { toHex } from '../journal/bytes.js';
import type { JournalEntry } from '../journal/journal.js';
import { columnRenames, type SchemaHistory } from '../apply/schema-history.js';
import { answer, AuditSource, IndexStaleError, noteSchemaChange, type AuditOptions } from './audit-source.js';
import { historyIn, type HistoryStep } from './history.js';
import { rowKeyOfText } from './row-key.js';
import { touchesOf } from './audit-index.js';
import { compareStates } from './state-compare.js';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { startingState } from '../journal/retention-base.js';

/** The entry an answer names: 0 is genesis (the state the journal started from). */
export interface BlameEntry {
  readonly seq: number;
  readonly hash: string | null;
  /** 'base': a pruned journal's retained base (FORMAT.md §11), where its history starts instead of genesis. */
  readonly kind: JournalEntry['kind'] | 'genesis' | 'base';
  readonly time: Date | null;
  readonly actor: string | null;
  readonly message: string | null;
}

export interface BlameLine extends BlameEntry {
  /** PRIMARY KEY values as text, in PRIMARY KEY order. */
  readonly key: string[];
  /** With one row asked for: for each current column, the entry that last set its value. */
  readonly columns?: Record<string, BlameEntry>;
}

export interface BlameOptions extends AuditOptions {
  /** One row only (PRIMARY KEY values as text); then per-column blame is included. */
  where?: readonly string[];
}

/**
 * Blame of a table.
 *
 * @example
 * blame('app.db', 'invoices', { where: ['42'] })[0]?.columns?.total?.actor;
 */
export function blame(databasePath: string, table: string, options: BlameOptions = {}): BlameLine[] {
  const source = AuditSource.open(databasePath, options);
  try {
    return blameIn(source, table, options.where);
  } finally {
    source.close();
  }
}

export function blameIn(source: AuditSource, table: string, where?: readonly string[]): BlameLine[] {
  if (where !== undefined) return blameRow(source, table, where);
  return answer(source, (s) => indexedBlame(s, table), (s) => scannedBlame(s, table));
}

function indexedBlame(source: AuditSource, table: string): BlameLine[] {
  const index = source.index!;
  const folded = foldName(table);
  const last = new Map<string, { last: number; live: boolean }>();
  for (const row of index.rows(table)) last.set(row.key, { last: row.last, live: row.live });
  for (const entry of index.tail) {
    for (const touch of touchesOf(source.journal, entry)) {
      if (touch.table === folded) last.set(touch.key, { last: entry.seq, live: touch.op !== 'delete' });
    }
  }
  const lines: BlameLine[] = [];
  const entries = new Map<number, JournalEntry>();
  for (const [key, row] of [...last].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (row.last > 0) {
      let entry = entries.get(row.last);
      if (entry === undefined) entries.set(row.last, (entry = source.indexedEntry(row.last)));
      // The index names the entry; the journal must agree that it touched the row as the index says.
      const touch = touchesOf(source.journal, entry).find((t) => t.table === folded && t.key === key);
      if (touch === undefined || (touch.op !== 'delete') !== row.live) throw new IndexStaleError(`entry ${row.last} does not end ${table} ${key} as indexed`);
      if (row.live) lines.push({ key: JSON.parse(key) as string[], ...aboutEntry(entry) });
    } else if (row.live) {
      lines.push({ key: JSON.parse(key) as string[], ...GENESIS });
    }
  }
  return lines;
}

function scannedBlame(source: AuditSource, table: string): BlameLine[] {
  const folded = foldName(table);
  const last = new Map<string, { entry: JournalEntry | null; live: boolean }>();
  for (const key of genesisKeys(source, folded)) last.set(key, { entry: null, live: true });
  for (const entry of source.journal.entries()) {
    for (const touch of touchesOf(source.journal, entry)) {
      if (touch.table === folded) last.set(touch.key, { entry, live: touch.op !== 'delete' });
    }
  }
  return [...last].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).filter(([, row]) => row.live)
    .map(([key, row]) => ({ key: JSON.parse(key) as string[], ...(row.entry === null ? startOf(source) : aboutEntry(row.entry)) }));
}

function genesisKeys(source: AuditSource, folded: string): string[] {
  const { reader } = source.journal;
  const genesis = new DatabaseSync(join(source.journal.journalDir, startingState(reader.base, reader.identity.manifest).ref.file), { readOnly: true });
  const empty = new DatabaseSync(':memory:');
  try {
    return compareStates(empty, genesis).filter((d) => foldName(d.table) === folded).map((d) => d.key);
  } finally {
    empty.close();
    genesis.close();
  }
}

/** One row, with per-column blame derived from its history. */
function blameRow(source: AuditSource, table: string, key: readonly string[]): BlameLine[] {
  const steps = historyIn(source, { table, key });
  const lastStep = steps.at(-1);
  // Only a row no entry touched needs the genesis lookup.
  if (lastStep === undefined ? !genesisKeys(source, foldName(table)).includes(rowKeyOfText(key)) : lastStep.op === 'delete') return [];
  const scanned = source.index === null ? scannedSchemas(source) : null;
  try {
    const entryAt = (seq: number) => aboutEntry(source.index === null ? source.journal.reader.entry(seq) : source.indexedEntry(seq));
    const columns = columnBlame(steps, scanned ?? source.indexedSchemas(), table, source.journal.head.seq, entryAt, startOf(source));
    return [{ key: [...key], ...(lastStep === undefined ? startOf(source) : aboutStep(lastStep)), columns }];
  } finally {
    scanned?.close();
  }
}

function scannedSchemas(source: AuditSource): SchemaHistory {
  const schemas = source.scanningSchemas();
  for (const entry of source.journal.entries()) noteSchemaChange(schemas, entry);
  return schemas;
}

/**
 * Per column: the last step that set it. Names follow the schema: a column renamed between two steps keeps
 * its blame (same position, same column count); a column added later is blamed on the schema entry that
 * added it; columns never set since genesis are blamed on genesis.
 */
function columnBlame(
  steps: HistoryStep[], schemas: SchemaHistory, table: string, headSeq: number, entryAt: (seq: number) => BlameEntry, start: BlameEntry,
): Record<string, BlameEntry> {
  let blamed = new Map<string, BlameEntry>();
  let schemaSeq = 0;
  const advanceTo = (seq: number) => {
    for (const eventSeq of schemas.changes) {
      if (eventSeq <= schemaSeq || eventSeq > seq) continue;
      blamed = translate(blamed, columnsOf(schemas.schemaFor(schemaSeq), table), columnsOf(schemas.schemaFor(eventSeq), table), () => entryAt(eventSeq));
      schemaSeq = eventSeq;
    }
  };
  for (const step of steps) {
    advanceTo(step.seq);
    if (step.op === 'delete') blamed = new Map();
    // Key columns are set by the insert only: an update never changes them (a new key is delete + insert).
    for (const column of [...(step.op === 'insert' ? Object.keys(step.pk) : []), ...Object.keys(step.after ?? {})]) blamed.set(column, aboutStep(step));
  }
  advanceTo(headSeq);
  const result: Record<string, BlameEntry> = {};
  for (const column of columnsOf(schemas.schemaFor(headSeq), table)) {
    Object.defineProperty(result, column, { value: blamed.get(column) ?? start, enumerable: true, writable: true, configurable: true });
  }
  return result;
}

function translate(blamed: Map<string, BlameEntry>, before: readonly string[], after: readonly string[], migration: () => BlameEntry): Map<string, BlameEntry> {
  const next = new Map<string, BlameEntry>();
  const renames = columnRenames(before, after);
  for (const [column, entry] of blamed) {
    const name = renames.get(column) ?? (after.includes(column) ? column : null);
    if (name !== null) next.set(name, entry);
  }
  const renamed = new Set(renames.values());
  for (const column of after) {
    // A column this schema entry added: its value in existing rows is the migration's doing.
    if (!before.includes(column) && !renamed.has(column) && before.length > 0) next.set(column, migration());
  }
  return next;
}

function columnsOf(schema: DatabaseSchema, table: string): readonly string[] {
  return findTable(schema, table)?.columns ?? [];
}

const GENESIS: BlameEntry = Object.freeze({ seq: 0, hash: null, kind: 'genesis', time: null, actor: null, message: null });

/**
 * Where the journal's history starts: genesis, or a pruned journal's base, on which rows and columns
 * unchanged since are blamed (not on genesis: what happened before the base was pruned).
 */
function startOf(source: AuditSource): BlameEntry {
  const base = source.journal.reader.base;
  if (base === null) return GENESIS;
  return Object.freeze({ seq: base.seq, hash: base.hash, kind: 'base', time: null, actor: null, message: `retained base (checkpoint #${base.checkpointSeq}): history before entry ${base.seq + 1} was pruned` });
}

function aboutEntry(entry: JournalEntry): BlameEntry {
  return { seq: entry.seq, hash: toHex(entry.hash), kind: entry.kind, time: new Date(entry.time), actor: entry.actor, message: entry.message };
}

function aboutStep(step: HistoryStep): BlameEntry {
  return { seq: step.seq, hash: step.hash, kind: step.kind, time: step.time, actor: step.actor, message: step.message };
}

