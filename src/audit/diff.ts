/**
 * Diff: the net row-level difference between two points of the journal (seqs, hash prefixes or @times;
 * the second defaults to the head). When only data writes lie between them, their changesets are combined
 * (an insert then a delete cancels out, an update back to the old value is no change): O(entries between).
 * When schema or resync entries lie between, both states are rebuilt from the journal and compared table
 * by table, which is exact whatever the migrations did: O(journal).
 */
import { combineChangesets, type RowValues } from '../changeset/index.js';
import { foldName } from '../apply/schema.js';
import { fromHex } from '../journal/bytes.js';
import type { Position } from '../journal/position.js';
import { resolvePosition, type PositionSpec } from '../journal/resolve-position.js';
import type { AuditJournal } from './audit-journal.js';
import { schemaHistoryOf } from '../apply/schema-history.js';
import { AuditSource, columnsAt, noteSchemaChange, type AuditOptions } from './audit-source.js';
import { positionSource } from './log-filter.js';
import { namedRowChangesOf } from './row-changes.js';
import { compareStates, valuesEqual, withStateAt, type RowDifference } from './state-compare.js';

export interface TableDiffStat {
  readonly table: string;
  readonly inserts: number;
  readonly updates: number;
  readonly deletes: number;
}

export interface DiffResult {
  readonly from: Position;
  readonly to: Position;
  /** 'combined': the changesets between were combined; 'replayed': both states were rebuilt and compared. */
  readonly method: 'combined' | 'replayed';
  /** Rows that differ, by table (folded name order), then key. UPDATE lists only the columns that differ. */
  readonly rows: readonly RowDifference[];
  readonly stats: readonly TableDiffStat[];
}

export interface DiffOptions extends AuditOptions {
  /** 'auto' (default) combines changesets when it can; 'replay' always rebuilds both states. */
  method?: 'auto' | 'replay';
}

/**
 * The net difference from point `from` to point `to` (default: the committed head).
 *
 * @example
 * diffPoints('app.db', '@2026-11-30T00:00Z', '@2026-12-02T00:00Z').stats;
 * @throws RangeError for a malformed point; ChangetrailError POSITION_NOT_FOUND, POSITION_AMBIGUOUS, JOURNAL_*.
 */
export function diffPoints(databasePath: string, from: PositionSpec, to?: PositionSpec, options: DiffOptions = {}): DiffResult {
  const source = AuditSource.open(databasePath, { index: 'off' });
  try {
    const positions = positionSource(source.journal);
    const a = resolvePosition(positions, from).position;
    const b = to === undefined ? source.journal.head : resolvePosition(positions, to).position;
    const [low, high] = a.seq <= b.seq ? [a, b] : [b, a];
    const between = [...source.journal.entries({ from: low.seq + 1, to: high.seq })];
    const combinable = options.method !== 'replay' && between.every((e) => e.kind === 'write');
    // Replayed states are compared in the order asked (renamed columns take the names at `to`); combined
    // changesets run forward, and no schema change lies between, so reversing them keeps the names.
    let rows = combinable ? combined(source.journal, between, high.seq) : replayed(source.journal, a, b);
    if (combinable && a.seq > b.seq) rows = rows.map(reversed);
    rows = [...rows].sort(byTableThenKey);
    return { from: a, to: b, method: combinable ? 'combined' : 'replayed', rows, stats: statsOf(rows) };
  } finally {
    source.close();
  }
}

function combined(journal: AuditJournal, between: { changeset: Uint8Array; seq: number; kind: string; sql?: string }[], highSeq: number): RowDifference[] {
  const changesets = between.map((e) => e.changeset).filter((c) => c.byteLength > 0);
  if (changesets.length === 0) return [];
  const schemas = schemaHistoryOf(journal.journalDir, journal.head.seq, []);
  try {
    for (const entry of journal.entries({ to: highSeq })) noteSchemaChange(schemas, entry as never);
    const rows: RowDifference[] = [];
    for (const change of namedRowChangesOf(combineChangesets(changesets), columnsAt(schemas, highSeq))) {
      if (change.op !== 'update') {
        rows.push({ table: change.table, key: change.key, pk: change.pk, op: change.op, before: change.before, after: change.after });
        continue;
      }
      const differing = Object.keys(change.after ?? {}).filter((c) => !valuesEqual(change.before![c]!, change.after![c]!));
      if (differing.length === 0) continue; // changed and changed back
      rows.push({ table: change.table, key: change.key, pk: change.pk, op: 'update', before: pickColumns(change.before!, differing), after: pickColumns(change.after!, differing) });
    }
    return rows;
  } finally {
    schemas.close();
  }
}

function replayed(journal: AuditJournal, from: Position, to: Position): RowDifference[] {
  return withStateAt(journal, from.seq, fromHex(from.hash), (before) => withStateAt(journal, to.seq, fromHex(to.hash), (after) => compareStates(before, after)));
}

function reversed(row: RowDifference): RowDifference {
  const op = row.op === 'insert' ? 'delete' : row.op === 'delete' ? 'insert' : 'update';
  return { ...row, op, before: row.after, after: row.before };
}

function pickColumns(values: RowValues, columns: string[]): RowValues {
  const picked: RowValues = {};
  for (const column of columns) Object.defineProperty(picked, column, { value: values[column], enumerable: true, writable: true, configurable: true });
  return picked;
}

function byTableThenKey(a: RowDifference, b: RowDifference): number {
  const ta = foldName(a.table);
  const tb = foldName(b.table);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function statsOf(rows: readonly RowDifference[]): TableDiffStat[] {
  const stats = new Map<string, { table: string; inserts: number; updates: number; deletes: number }>();
  for (const row of rows) {
    let stat = stats.get(foldName(row.table));
    if (stat === undefined) stats.set(foldName(row.table), (stat = { table: row.table, inserts: 0, updates: 0, deletes: 0 }));
    if (row.op === 'insert') stat.inserts += 1;
    else if (row.op === 'update') stat.updates += 1;
    else stat.deletes += 1;
  }
  return [...stats.values()];
}
