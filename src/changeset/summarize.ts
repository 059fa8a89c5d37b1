/** Per-table counts of a changeset, without materialising values. */
import { OP_DELETE, OP_INSERT } from './format.js';
import { scanChangeset } from './reader.js';
import { foldTableName } from './table-name.js';

/** How many rows of one table a changeset inserts, updates and deletes. */
export interface TableSummary {
  /** The table name as first spelled in the changeset. */
  table: string;
  inserts: number;
  updates: number;
  deletes: number;
}

/**
 * Counts the changes of each table, in order of first appearance. Repeated groups of one table (names
 * compared ASCII-case-insensitively) are merged into one summary; tables whose groups hold no change are
 * listed with zero counts. The input is fully validated, but values are skipped, not decoded, so this is
 * cheap enough to run on every write.
 *
 * @example
 * summarizeChangeset(session.changeset()); // [{ table: 't', inserts: 1, updates: 1, deletes: 1 }]
 * @throws TypeError if `bytes` is not a Uint8Array.
 * @throws ChangetrailError CHANGESET_MALFORMED as {@link decodeChangeset}.
 */
export function summarizeChangeset(bytes: Uint8Array): TableSummary[] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('summarizeChangeset: bytes must be a Uint8Array');
  const summaries: TableSummary[] = [];
  const byName = new Map<string, TableSummary>();
  let summary: TableSummary | null = null;
  scanChangeset(bytes, (header) => {
    summary = summaryOf(header.name, byName, summaries);
  }, (op) => {
    if (op === OP_INSERT) summary!.inserts++;
    else if (op === OP_DELETE) summary!.deletes++;
    else summary!.updates++;
  });
  return summaries;
}

function summaryOf(name: string, byName: Map<string, TableSummary>, summaries: TableSummary[]): TableSummary {
  const key = foldTableName(name);
  let summary = byName.get(key);
  if (summary === undefined) {
    summary = { table: name, inserts: 0, updates: 0, deletes: 0 };
    byName.set(key, summary);
    summaries.push(summary);
  }
  return summary;
}
