/**
 * Content digests of a database's tables, for comparing a database with the replay of its journal. Every
 * table that sessions record is digested (shadow tables of FTS5/R*Tree included); `sqlite_sequence` is
 * not recorded by sessions (it has no PRIMARY KEY) and changetrail's own tables are not user data.
 * Neither are the planner's statistics (`sqlite_stat1`..`sqlite_stat4`, written by ANALYZE and
 * `PRAGMA optimize` outside any admitted write): they are excluded (issue 8 item 10, README).
 */
import { createHash } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import { isChangetrailTable, isKeyedRowidTable, readSchema } from './schema.js';
import { quoteIdentifier } from './sql-identifier.js';

/** Table name → SHA-256 (hex) of its rows in primary-key order, each value with its storage type. */
export function digestTables(db: DatabaseSync): Map<string, string> {
  const digests = new Map<string, string>();
  for (const table of readSchema(db).tables) {
    if (table.isVirtual || isChangetrailTable(table.name) || !isDigestedSqliteTable(table.name)) continue;
    digests.set(table.name, digestTable(db, table.name, table.columns, table.pk, isKeyedRowidTable(db, table)));
  }
  return digests;
}

/**
 * Rows in key order; for keyed rowid tables the rowid is digested too, since replay reproduces it
 * (journal/REPLAY.md) and an FTS5 external-content index depends on it.
 */
function digestTable(db: DatabaseSync, name: string, columns: readonly string[], pk: ArrayLike<number>, withRowid: boolean): string {
  const order = Array.from(pk).map((position, index) => ({ position, index })).filter((c) => c.position > 0)
    .sort((a, b) => a.position - b.position).map((c) => quoteIdentifier(columns[c.index]!));
  const list = columns.map(quoteIdentifier);
  const statement = db.prepare(`SELECT ${withRowid ? 'rowid, ' : ''}${list.map((c) => `${c}, typeof(${c})`).join(', ')} FROM main.${quoteIdentifier(name)} ORDER BY ${(order.length > 0 ? order : list).join(', ')}`);
  statement.setReadBigInts(true);
  statement.setReturnArrays(true);
  const hash = createHash('sha256');
  for (const row of statement.iterate() as Iterable<unknown[]>) {
    for (const value of row) hash.update(encodeValue(value));
    hash.update('\n');
  }
  return hash.digest('hex');
}

function encodeValue(value: unknown): string | Uint8Array {
  if (value === null) return 'N;';
  if (value instanceof Uint8Array) return Buffer.concat([Buffer.from(`B${value.byteLength}:`), value]);
  if (typeof value === 'number') return `R${Object.is(value, -0) ? '-0' : String(value)};`;
  return `${typeof value === 'bigint' ? 'I' : 'T'}${String(value).length}:${String(value)};`;
}

/** Internal tables of SQLite are not digested: `sqlite_sequence` (no PRIMARY KEY) and `sqlite_stat*`. */
function isDigestedSqliteTable(name: string): boolean {
  const folded = name.toLowerCase();
  return folded !== 'sqlite_sequence' && !folded.startsWith('sqlite_stat');
}
