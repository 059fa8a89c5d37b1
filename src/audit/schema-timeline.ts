/**
 * Column names as of each entry. An entry's changeset is expressed in the schema after every schema entry
 * up to and including it, on top of its base state (genesis, or the snapshot of the latest resync entry).
 * The schema is rebuilt on an empty in-memory database: the base's CREATE statements, then each
 * migration's SQL, on a connection that refuses ATTACH, DETACH and PRAGMAs that change the connection.
 *
 * Only the list of schema and resync entries is needed, so an indexed query never reads the whole journal.
 */
import { join } from 'node:path';
import { constants, DatabaseSync } from 'node:sqlite';
import { findTable, readSchema, type DatabaseSchema } from '../apply/schema.js';
import { GENESIS_FILE } from '../journal/format.js';
import type { ColumnsOf } from './row-changes.js';

/** A schema or resync entry, as the timeline needs it. */
export interface SchemaEvent {
  readonly seq: number;
  readonly kind: 'schema' | 'resync';
  readonly sql?: string;
  readonly snapshotFile?: string;
}

const REFUSED_ACTIONS = new Set([constants.SQLITE_ATTACH, constants.SQLITE_DETACH ?? 25, constants.SQLITE_PRAGMA]);
/** PRAGMAs a migration may run that only read or only touch the schema. */
const ALLOWED_PRAGMAS = new Set(['foreign_keys', 'table_info', 'table_xinfo', 'index_list', 'index_info', 'foreign_key_check', 'legacy_alter_table', 'defer_foreign_keys']);

export class SchemaTimeline {
  readonly #journalDir: string;
  readonly #events: SchemaEvent[];
  /** Schemas after events[0..i-1]: index 0 is the genesis schema. */
  readonly #schemas: DatabaseSchema[] = [];
  #scratch: DatabaseSync | null = null;

  constructor(journalDir: string, events: readonly SchemaEvent[]) {
    this.#journalDir = journalDir;
    this.#events = [...events].sort((a, b) => a.seq - b.seq);
  }

  /** Appends a later schema or resync entry (scans discover them in order). */
  add(event: SchemaEvent): void {
    const last = this.#events.at(-1);
    if (last !== undefined && last.seq >= event.seq) throw new RangeError('SchemaTimeline.add: events must be added in order');
    this.#events.push(event);
  }

  /** Seqs of the schema and resync entries known, ascending. */
  get eventSeqs(): number[] {
    return this.#events.map((e) => e.seq);
  }

  /** The schema entry `seq`'s changeset is expressed in. */
  schemaAt(seq: number): DatabaseSchema {
    let count = 0;
    while (count < this.#events.length && this.#events[count]!.seq <= seq) count += 1;
    while (this.#schemas.length <= count) this.#advance();
    return this.#schemas[count]!;
  }

  columnsAt(seq: number): ColumnsOf {
    const schema = this.schemaAt(seq);
    return (table) => findTable(schema, table)?.columns ?? null;
  }

  close(): void {
    this.#scratch?.close();
    this.#scratch = null;
  }

  #advance(): void {
    const index = this.#schemas.length;
    if (index === 0) {
      this.#rebase(GENESIS_FILE);
    } else {
      const event = this.#events[index - 1]!;
      if (event.kind === 'resync') this.#rebase(event.snapshotFile!);
      else this.#migrate(event.sql ?? '');
    }
    this.#schemas.push(readSchema(this.#scratch!));
  }

  /** A fresh scratch database holding only the schema of a base snapshot. */
  #rebase(file: string): void {
    this.#scratch?.close();
    const scratch = new DatabaseSync(':memory:');
    this.#scratch = scratch;
    const base = new DatabaseSync(join(this.#journalDir, file), { readOnly: true });
    let statements: string[];
    try {
      const shadows = new Set(base.prepare(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'`).all().map((r) => String(r.name)));
      statements = base.prepare(`SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid`).all()
        .filter((r) => !shadows.has(String(r.name))).map((r) => String(r.sql));
    } finally {
      base.close();
    }
    guarded(scratch, () => {
      for (const sql of statements) scratch.exec(sql);
    });
  }

  #migrate(sql: string): void {
    const scratch = this.#scratch!;
    try {
      guarded(scratch, () => scratch.exec(sql));
    } catch {
      // The migration failed on an empty database (it depended on data): keep what it managed to change.
    }
  }
}

/** Runs `fn` with ATTACH, DETACH and connection-changing PRAGMAs refused. */
function guarded(db: DatabaseSync, fn: () => void): void {
  db.setAuthorizer((action, first) => {
    if (!REFUSED_ACTIONS.has(action)) return constants.SQLITE_OK;
    if (action === constants.SQLITE_PRAGMA && first !== null && ALLOWED_PRAGMAS.has(first.toLowerCase())) return constants.SQLITE_OK;
    return constants.SQLITE_DENY;
  });
  try {
    fn();
  } finally {
    db.setAuthorizer(null);
  }
}
