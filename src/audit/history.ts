/**
 * Row history: every entry that changed one row, oldest first, with the changed columns before → after
 * named as they were at that entry, changes made by triggers and foreign-key actions marked indirect, and
 * what resync entries changed (found by comparing the snapshot with the state before it).
 */
import type { ChangeOp, RowValues } from '../changeset/index.js';
import { foldName } from '../apply/schema.js';
import { toHex } from '../journal/bytes.js';
import type { JournalEntry } from '../journal/journal.js';
import type { SchemaHistory } from '../apply/schema-history.js';
import { answer, AuditSource, columnsAt, IndexStaleError, noteSchemaChange, type AuditOptions } from './audit-source.js';
import { resyncDifferences } from './resync-changes.js';
import { namedRowChangesOf } from './row-changes.js';
import { rowKeyOfText } from './row-key.js';

/** One entry's change to the row. */
export interface HistoryStep {
  readonly seq: number;
  readonly hash: string;
  readonly kind: JournalEntry['kind'];
  readonly time: Date;
  readonly actor: string | null;
  readonly message: string | null;
  readonly undoes?: number;
  /** Table name as the entry spells it. */
  readonly table: string;
  readonly op: ChangeOp;
  /** Made by a trigger or a foreign-key action (as SQLite sessions flag it); resync changes are never indirect. */
  readonly indirect: boolean;
  readonly pk: RowValues;
  /** DELETE: every column; UPDATE: the changed columns; INSERT: null. Names as of this entry. */
  readonly before: RowValues | null;
  /** INSERT: every column; UPDATE: the changed columns; DELETE: null. Names as of this entry. */
  readonly after: RowValues | null;
}

/** Which row: a table and its PRIMARY KEY values as text, in PRIMARY KEY order. */
export interface RowRef {
  readonly table: string;
  readonly key: readonly string[];
}

/**
 * The history of one row.
 *
 * @example
 * rowHistory('app.db', { table: 'invoices', key: ['42'] }).map((s) => `${s.seq} ${s.actor} ${s.op}`);
 * @throws ChangetrailError JOURNAL_* when the journal fails verification; JOURNAL_MISMATCH without a journal.
 */
export function rowHistory(databasePath: string, row: RowRef, options: AuditOptions = {}): HistoryStep[] {
  const source = AuditSource.open(databasePath, options);
  try {
    return historyIn(source, row);
  } finally {
    source.close();
  }
}

/** {@link rowHistory} on an open source. */
export function historyIn(source: AuditSource, row: RowRef): HistoryStep[] {
  return answer(source, (s) => indexedHistory(s, row), (s) => scannedHistory(s, row));
}

function indexedHistory(source: AuditSource, row: RowRef): HistoryStep[] {
  const target = { table: foldName(row.table), key: rowKeyOfText(row.key) };
  const schemas = source.indexedSchemas();
  const steps: HistoryStep[] = [];
  for (const seq of source.index!.postings(row.table, target.key)) {
    const found = stepsOf(source, source.indexedEntry(seq), schemas, target);
    if (found.length === 0) throw new IndexStaleError(`entry ${seq} does not touch ${row.table} ${target.key}`);
    steps.push(...found);
  }
  return steps;
}

function scannedHistory(source: AuditSource, row: RowRef): HistoryStep[] {
  const target = { table: foldName(row.table), key: rowKeyOfText(row.key) };
  const schemas = source.scanningSchemas();
  try {
    const steps: HistoryStep[] = [];
    for (const entry of source.journal.entries()) {
      noteSchemaChange(schemas, entry);
      steps.push(...stepsOf(source, entry, schemas, target));
    }
    return steps;
  } finally {
    schemas.close();
  }
}

/** The changes `entry` made to the target row (at most one per entry). */
export function stepsOf(source: AuditSource, entry: JournalEntry, schemas: SchemaHistory, target: { table: string; key: string }): HistoryStep[] {
  const about = {
    seq: entry.seq, hash: toHex(entry.hash), kind: entry.kind, time: new Date(entry.time), actor: entry.actor, message: entry.message,
    ...(entry.undoes === undefined ? {} : { undoes: entry.undoes }),
  };
  if (entry.kind === 'resync') {
    return resyncDifferences(source.journal, entry)
      .filter((d) => foldName(d.table) === target.table && d.key === target.key)
      .map((d) => ({ ...about, table: d.table, op: d.op, indirect: false, pk: d.pk, before: d.before, after: d.after }));
  }
  return namedRowChangesOf(entry.changeset, columnsAt(schemas, entry.seq), target)
    .map((c) => ({ ...about, table: c.table, op: c.op, indirect: c.indirect, pk: c.pk, before: c.before, after: c.after }));
}
