/**
 * The database as it was, entry by entry, for exports that need whole rows: a changeset's UPDATE holds
 * only the key and the changed columns, while Debezium's `before` and `after` are whole rows. A scratch
 * copy is built at `since` (restore) and every exported entry is applied to it exactly; rows are read by
 * key just before and just after their entry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { SqlText, type Value } from '../changeset/index.js';
import type { JournalEntry } from '../journal/journal.js';
import type { Position } from '../journal/position.js';
import { applyEntryExactly } from '../apply/apply-entry.js';
import { openReplayDatabase } from '../apply/replay-guard.js';
import { createSchemaReader, findTable } from '../apply/schema.js';
import { quoteIdentifier } from '../apply/sql-identifier.js';
import type { JournalSource } from './journal-source.js';
import { buildState } from './restore.js';
import type { RowImage } from './row-image.js';

export class RowState {
  readonly #dir: string;
  readonly #db: DatabaseSync;
  readonly #schema: () => ReturnType<ReturnType<typeof createSchemaReader>>;
  readonly #statements = new Map<string, StatementSync>();

  constructor(journal: JournalSource, since: Position) {
    this.#dir = mkdtempSync(join(tmpdir(), 'changetrail-rows-'));
    const path = join(this.#dir, 'state.db');
    try {
      buildState(journal, since, path);
      this.#db = openReplayDatabase(path);
      this.#db.exec('PRAGMA foreign_keys = OFF; PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF');
    } catch (error) {
      rmSync(this.#dir, { recursive: true, force: true });
      throw error;
    }
    this.#schema = createSchemaReader(this.#db);
  }

  /** The whole row of `table` with this key now, or null. Columns as the table has them now. */
  row(table: string, key: RowImage): RowImage | null {
    const schema = findTable(this.#schema(), table);
    if (schema === undefined) return null;
    const statement = this.#select(schema.name, schema.columns, key.map(([column, value]) => [column, value instanceof SqlText] as const));
    const found = statement.get(...key.map(([, value]) => bindable(value))) as Record<string, Value> | undefined;
    if (found === undefined) return null;
    return schema.columns.map((column, index) => [column, found[`c${index}`] ?? null] as const);
  }

  /** Applies the entry exactly (journal/REPLAY.md). */
  apply(entry: JournalEntry): void {
    if (entry.kind === 'resync') throw new TypeError('RowState: resync entries are refused before they get here');
    if (entry.kind === 'checkpoint') return;
    this.#statements.clear();
    applyEntryExactly(this.#db, {
      kind: entry.kind, changeset: entry.changeset, seq: entry.seq,
      ...(entry.sql === undefined ? {} : { sql: entry.sql }), ...(entry.rowids === undefined ? {} : { rowids: entry.rowids }),
    });
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  /** `keys`: each key column, and whether its value is non-UTF-8 TEXT (bound as bytes, cast back to TEXT). */
  #select(table: string, columns: readonly string[], keys: ReadonlyArray<readonly [string, boolean]>): StatementSync {
    const id = JSON.stringify([table, columns, keys]);
    let statement = this.#statements.get(id);
    if (statement === undefined) {
      const list = columns.map((column, index) => `${quoteIdentifier(column)} AS c${index}`).join(', ');
      const where = keys.map(([key, bytes]) => `${quoteIdentifier(key)} = ${bytes ? 'CAST(? AS TEXT)' : '?'}`).join(' AND ');
      statement = this.#db.prepare(`SELECT ${list} FROM main.${quoteIdentifier(table)} WHERE ${where}`);
      statement.setReadBigInts(true);
      this.#statements.set(id, statement);
    }
    return statement;
  }
}

function bindable(value: Value): null | bigint | number | string | Uint8Array {
  return value instanceof SqlText ? value.bytes : value;
}
