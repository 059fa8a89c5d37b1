/**
 * `sql`: a script for the stock `sqlite3` shell that turns the database as of `since` into the database
 * as of `until`, exactly — on databases with triggers, FTS indexes and cascades.
 *
 * The journal already holds every row that triggers and foreign-key actions changed, so the script lets
 * neither act again (journal/REPLAY.md): it runs with `PRAGMA foreign_keys = OFF` and with the shell's
 * `.dbconfig enable_trigger off` while it writes rows, inside one transaction (`.bail on`: any error
 * ends the shell, which rolls the transaction back). Shadow tables of FTS/R*Tree are written like any
 * table (`.dbconfig defensive off`), then `PRAGMA writable_schema = RESET` drops the connection's cached
 * index structures. A schema entry's migration runs in place with triggers on, as it ran on the source;
 * the rows the source's migration changed are then set to the recorded values, so a migration whose DML
 * is not deterministic (`random()`, time) still ends equal.
 *
 * Statements are ordered deletes, updates, inserts within each net run (or entry), so that a row's
 * UNIQUE value can move to another row; rows are located by primary key.
 */
import { combineChangesets, formatSqlValue, iterateChangeset, quoteIdentifier, type Change, type Field, type TableChanges, type Value } from '../changeset/index.js';
import { decodeRowids } from '../journal/rowids.js';
import { ChangetrailError } from '../errors.js';
import { findTable, type DatabaseSchema } from '../apply/schema.js';
import type { JournalEntry } from '../journal/journal.js';
import { foldAscii, selectTables, TextBatch, unsupportedEntry, type Chunk, type ExportContext, type FormatWriter } from './export-format.js';
import { columnNames, stat1Nulls } from './row-image.js';

/** `sqlite_stat1` has no unique index for an upsert: its rows are replaced by delete + insert. */
const STAT1_TABLE = 'sqlite_stat1';
const OP_ORDER: readonly Change['op'][] = ['delete', 'update', 'insert'];

interface PendingRun {
  readonly parts: Uint8Array[];
  readonly schema: DatabaseSchema;
  readonly firstSeq: number;
  readonly rowids: RowidMoves;
}

export class SqlWriter implements FormatWriter {
  readonly #context: ExportContext;
  #run: PendingRun | null = null;

  constructor(context: ExportContext) {
    this.#context = context;
  }

  *begin(): Iterable<Chunk> {
    const { since, until, journal } = this.#context;
    yield `-- changetrail export: journal ${journal.head.journalId}, after entry ${since.seq} (${since.hash}) through entry ${until.seq} (${until.hash})\n`
      + `-- Run with the stock sqlite3 shell on a copy of the database as of entry ${since.seq}: sqlite3 copy.db < this.sql\n`
      + '.bail on\n.dbconfig defensive off\nPRAGMA foreign_keys = OFF;\nBEGIN IMMEDIATE;\n.dbconfig enable_trigger off\n';
  }

  *entry(entry: JournalEntry, schema: DatabaseSchema): Iterable<Chunk> {
    if (entry.kind === 'resync') throw unsupportedEntry(this.#context, entry);
    const changeset = selectTables(this.#context, entry.changeset);
    if (entry.kind === 'schema') {
      yield* this.#flushRun();
      yield* migrationStatements(this.#context, entry, changeset, schema);
      return;
    }
    if (this.#context.each) {
      yield* changeStatements(changeset, schema, entry.seq, 'apply', `-- entry ${entry.seq}\n`);
      const moves = new RowidMoves(this.#context);
      moves.add(entry);
      yield* moves.statements(schema, entry.seq);
      return;
    }
    if (this.#run !== null && this.#run.schema !== schema) yield* this.#flushRun();
    this.#run ??= { parts: [], schema, firstSeq: entry.seq, rowids: new RowidMoves(this.#context) };
    if (changeset.byteLength > 0) this.#run.parts.push(changeset);
    this.#run.rowids.add(entry);
  }

  *end(): Iterable<Chunk> {
    yield* this.#flushRun();
    yield 'COMMIT;\n.dbconfig enable_trigger on\n';
  }

  *#flushRun(): Iterable<Chunk> {
    const run = this.#run;
    this.#run = null;
    if (run === null) return;
    if (run.parts.length > 0) yield* changeStatements(combineChangesets(run.parts), run.schema, run.firstSeq, 'apply', '');
    yield* run.rowids.statements(run.schema, run.firstSeq);
  }
}

/**
 * The rowids the source gave rows of keyed rowid tables (the entries' `rowids`, journal/FORMAT.md §6.1),
 * merged over a run: each row ends at the rowid of its last entry. The script first moves every row that
 * must move below the table's lowest rowid (one fresh rowid each), then to its place, so rows can swap;
 * a rowid held by a row that does not move fails the script (the target is not the state it was made for).
 */
class RowidMoves {
  readonly #context: ExportContext;
  readonly #tables = new Map<string, { name: string; rows: Map<string, { key: readonly Value[]; after: bigint | null }> }>();

  constructor(context: ExportContext) {
    this.#context = context;
  }

  add(entry: JournalEntry): void {
    if (entry.rowids === undefined) return;
    for (const table of decodeRowids(entry.rowids, { file: entry.file, offset: entry.offset, seq: entry.seq })) {
      const folded = foldAscii(table.table);
      if (this.#context.tables !== null && !this.#context.tables.has(folded)) continue;
      let rows = this.#tables.get(folded);
      if (rows === undefined) this.#tables.set(folded, rows = { name: table.table, rows: new Map() });
      for (const row of table.rows) rows.rows.set(row.key.map(formatSqlValue).join(','), { key: row.key, after: row.after });
    }
  }

  *statements(schema: DatabaseSchema, seq: number): Iterable<Chunk> {
    const batch = new TextBatch();
    for (const { name, rows } of this.#tables.values()) {
      const table = findTable(schema, name);
      if (table === undefined) continue;
      const target = `main.${lineSafe(table.name, table.name)}`;
      const keyColumns = table.columns.filter((_, column) => (table.pk[column] ?? 0) > 0).map((column) => lineSafe(column, table.name));
      const moving = [...rows.values()].filter((row) => row.after !== null);
      if (moving.length === 0) continue;
      batch.add(`-- rowids of ${table.name} as the source gave them (entry ${seq}${this.#context.each ? '' : ' and after'})\n`);
      const where = (key: readonly Value[]): string => keyColumns.map((column, index) => `${column} = ${formatSqlValue(key[index] ?? null)}`).join(' AND ');
      for (const row of moving) {
        const chunk = batch.add(`UPDATE ${target} SET rowid = (SELECT min(min(rowid), 0) - 1 FROM ${target}) WHERE ${where(row.key)} AND rowid <> ${row.after};\n`);
        if (chunk !== null) yield chunk;
      }
      for (const row of moving) {
        const chunk = batch.add(`UPDATE ${target} SET rowid = ${row.after} WHERE ${where(row.key)};\n`);
        if (chunk !== null) yield chunk;
      }
    }
    const rest = batch.flush();
    if (rest !== null) yield rest;
  }
}

/** A line the sqlite3 shell would take for a dot-command or a `#` comment when no statement is pending. */
const SHELL_META_LINE = /^[.#]/m;

function* migrationStatements(context: ExportContext, entry: JournalEntry, changeset: Uint8Array, schema: DatabaseSchema): Iterable<Chunk> {
  const sql = entry.sql ?? '';
  // SQLite itself rejects such lines outside comments and literals, so a migration that ran never needs
  // one there; inside them the shell could still read one as a command. Refused rather than rewritten.
  if (SHELL_META_LINE.test(sql)) {
    const hint = `the migration of schema entry ${entry.seq} has a line starting with "." or "#", which the sqlite3 shell could run as a command: use --format ndjson, or restore --at ${entry.seq}`;
    throw new ChangetrailError('EXPORT_RANGE_UNSUPPORTED', `export sql: ${hint}`, { seq: entry.seq, kind: 'schema', format: context.format, hint });
  }
  yield `-- entry ${entry.seq}: migration, run as on the source (triggers on, foreign keys off)\n.dbconfig enable_trigger on\n${sql}\n;\n.dbconfig enable_trigger off\n`;
  yield* changeStatements(changeset, schema, entry.seq, 'force', `-- entry ${entry.seq}: the rows the migration changed on the source\n`);
  // Then every row the migration left in a keyed rowid table gets the rowid the source gave it (FORMAT.md §6.1).
  const moves = new RowidMoves(context);
  moves.add(entry);
  yield* moves.statements(schema, entry.seq);
}

/**
 * Statements for a changeset: 'apply' turns the before state into the after state; 'force' sets the rows
 * to the changeset's after values whatever they are now (after a migration ran in place).
 */
function* changeStatements(changeset: Uint8Array, schema: DatabaseSchema, seq: number, mode: 'apply' | 'force', heading: string): Iterable<Chunk> {
  if (changeset.byteLength === 0) return;
  const batch = new TextBatch();
  if (heading !== '') batch.add(heading);
  let writesShadow = false;
  for (const op of OP_ORDER) {
    let lastGroup: object | null = null;
    let table: TableSql | null = null;
    for (const { group, change } of iterateChangeset(changeset)) {
      if (change.op !== op) continue;
      if (group !== lastGroup) {
        table = new TableSql(group, columnNames(schema, group, seq));
        writesShadow ||= findTable(schema, group.name)?.isShadow === true;
        lastGroup = group;
      }
      const chunk = batch.add(table!.statement(change, mode));
      if (chunk !== null) yield chunk;
    }
  }
  if (writesShadow) batch.add('PRAGMA writable_schema = RESET;\n');
  const rest = batch.flush();
  if (rest !== null) yield rest;
}

/** Names with control characters (line breaks, ESC) cannot be written on one line for the shell: refused. */
const UNWRITABLE_IDENTIFIER = /[\u0000-\u001f\u007f\u0085\u2028\u2029]/;

function lineSafe(name: string, table: string): string {
  if (UNWRITABLE_IDENTIFIER.test(name)) {
    throw new ChangetrailError('SQL_IDENTIFIER_UNSUPPORTED', `export sql: the name ${JSON.stringify(name)} holds a control character, which the script cannot carry on one line`, { identifier: name, table });
  }
  return quoteIdentifier(name);
}

/** Renders the changes of one table group. */
class TableSql {
  readonly #table: string;
  readonly #columns: readonly string[];
  readonly #isPk: readonly boolean[];
  readonly #isStat1: boolean;

  constructor(group: TableChanges, names: readonly string[]) {
    this.#table = `main.${lineSafe(group.name, group.name)}`;
    this.#columns = names.slice(0, group.columnCount).map((name) => lineSafe(name, group.name));
    this.#isPk = Array.from(group.pk, (ordinal) => ordinal !== 0);
    this.#isStat1 = foldAscii(group.name) === STAT1_TABLE;
  }

  statement(original: Change, mode: 'apply' | 'force'): string {
    const change = this.#isStat1 ? stat1Nulls(original) : original;
    if (change.op === 'delete') return `DELETE FROM ${this.#table} WHERE ${this.#where(change.old!)};\n`;
    if (change.op === 'update') {
      const sets = change.new!.map((field, column) => (field === undefined || this.#isPk[column] ? '' : `${this.#columns[column]} = ${formatSqlValue(field)}`))
        .filter((set) => set !== '');
      return sets.length === 0 ? '' : `UPDATE ${this.#table} SET ${sets.join(', ')} WHERE ${this.#where(change.old!)};\n`;
    }
    const fields = change.new!;
    const insert = `INSERT INTO ${this.#table} (${this.#columns.join(', ')}) VALUES (${fields.map((field) => formatSqlValue(field ?? null)).join(', ')})`;
    if (mode === 'apply') return `${insert};\n`;
    if (this.#isStat1) return `DELETE FROM ${this.#table} WHERE ${this.#where(fields)};\n${insert};\n`;
    const keys = this.#columns.filter((_, column) => this.#isPk[column]);
    const updates = this.#columns.filter((_, column) => !this.#isPk[column]).map((column) => `${column} = excluded.${column}`);
    return `${insert} ON CONFLICT (${keys.join(', ')}) DO ${updates.length === 0 ? 'NOTHING' : `UPDATE SET ${updates.join(', ')}`};\n`;
  }

  #where(fields: readonly Field[]): string {
    const terms = fields.map((field, column) => {
      if (!this.#isPk[column] || field === undefined) return '';
      return field === null ? `${this.#columns[column]} IS NULL` : `${this.#columns[column]} = ${formatSqlValue(field)}`;
    }).filter((term) => term !== '');
    return terms.length === 0 ? '0' : terms.join(' AND ');
  }
}
