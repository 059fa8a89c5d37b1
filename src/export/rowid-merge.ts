/**
 * The rowid records (journal/FORMAT.md §6.1) of consecutive entries merged into one, the way their
 * changesets combine: per table and key, the rowid before the first entry that moved the row and after the
 * last. Rows that end where they started are dropped (a record never holds before = after).
 */
import { formatSqlValue, type Value } from '../changeset/index.js';
import { decodeRowids, encodeRowids, type TableRowids } from '../journal/rowids.js';
import { foldAscii } from './export-format.js';

interface MergedTable {
  table: string;
  keyOrdinals: readonly number[];
  rows: Map<string, { key: readonly Value[]; before: bigint | null; after: bigint | null }>;
}

export class RowidMerge {
  readonly #tables = new Map<string, MergedTable>();

  /** Adds the next entry's `rowids` (as stored in its body). */
  add(rowids: Uint8Array, where: { file: string; offset: number; seq: number }): void {
    for (const table of decodeRowids(rowids, where)) {
      const folded = foldAscii(table.table);
      let merged = this.#tables.get(folded);
      if (merged === undefined) this.#tables.set(folded, merged = { table: table.table, keyOrdinals: table.keyOrdinals, rows: new Map() });
      for (const row of table.rows) {
        const id = row.key.map(formatSqlValue).join(',');
        const earlier = merged.rows.get(id);
        merged.rows.set(id, { key: row.key, before: earlier === undefined ? row.before : earlier.before, after: row.after });
      }
    }
  }

  /** The merged record, or undefined when no row moved overall. */
  encode(): Uint8Array | undefined {
    const tables: TableRowids[] = [...this.#tables.values()].map((table) => ({
      table: table.table, keyOrdinals: table.keyOrdinals, rows: [...table.rows.values()].filter((row) => row.before !== row.after),
    }));
    if (tables.every((table) => table.rows.length === 0)) return undefined;
    return encodeRowids(tables);
  }
}
