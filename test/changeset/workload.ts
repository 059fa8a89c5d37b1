/**
 * Random schemas and random writes on real `node:sqlite` databases, captured with real sessions: the
 * input generator of the differential and semantic tests. Everything is driven by a seeded PRNG, so a
 * failing seed reproduces (set CHANGESET_SEED to rerun one).
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { mulberry32 } from '../helpers/random.js';

/** Seeded random choices for test inputs (mulberry32 underneath). */
export class Rng {
  readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  int(count: number): number {
    return Math.floor(this.next() * count);
  }

  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(size: number): Uint8Array {
    return Uint8Array.from({ length: size }, () => this.int(256));
  }

  uint32(): number {
    return Math.floor(this.next() * 2 ** 32);
  }

  int64(): bigint {
    return BigInt.asIntN(64, (BigInt(this.uint32()) << 32n) | BigInt(this.uint32()));
  }

  /** Any finite double, from its bit pattern (NaN patterns redrawn). */
  double(): number {
    const view = new DataView(new ArrayBuffer(8));
    for (;;) {
      view.setUint32(0, this.uint32());
      view.setUint32(4, this.uint32());
      const real = view.getFloat64(0);
      if (Number.isFinite(real)) return real;
    }
  }

  shuffle<T>(items: T[]): T[] {
    for (let index = items.length - 1; index > 0; index--) {
      const other = this.int(index + 1);
      [items[index], items[other]] = [items[other]!, items[index]!];
    }
    return items;
  }
}

/** The seed of a test run: CHANGESET_SEED if set, else random. */
export function runSeed(): number {
  const fromEnv = process.env.CHANGESET_SEED;
  return fromEnv === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(fromEnv);
}

/** Runs `body`, adding the seed to any failure so it can be reproduced with CHANGESET_SEED. */
export function withSeed<T>(seed: number, body: () => T): T {
  try {
    return body();
  } catch (error) {
    if (error instanceof Error) error.message = `[CHANGESET_SEED=${seed}] ${error.message}`;
    throw error;
  }
}

/** A value to bind: a plain SQLite value, or bytes to store as TEXT with CAST (text that is not UTF-8). */
export type SqlArg = null | bigint | number | string | Uint8Array | { castText: Uint8Array };

export type PkKind = 'integer' | 'text' | 'any';

export interface ColumnSpec {
  name: string;
  decl: string;
  pk: PkKind | null;
}

export interface TableSpec {
  name: string;
  columns: ColumnSpec[];
  /** PK column names in PRIMARY KEY clause order. */
  pkOrder: string[];
  createSql: string;
  /** Run after every table exists (triggers). */
  afterSql?: string;
}

export function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const VALUE_DECLS = ['', 'TEXT', 'INTEGER', 'REAL', 'BLOB', 'NUMERIC', 'ANY'];
const ODD_TABLE_NAMES = ['a"; DROP TABLE x; --', 'Mixed Case', 'ünï \'quoted\'', 'like_sqlite'];

export interface SchemaOptions {
  /** Allow a table with 100+ columns. */
  wide?: boolean;
}

/** 1-4 random tables of assorted PK shapes. */
export function randomSchema(rng: Rng, options: SchemaOptions = {}): TableSpec[] {
  const count = rng.range(1, 4);
  const tables: TableSpec[] = [];
  for (let index = 0; index < count; index++) {
    const name = rng.chance(0.15) ? `${rng.pick(ODD_TABLE_NAMES)}${index}` : `t${index}`;
    const shape = rng.int(options.wide === true ? 5 : 4);
    tables.push(shape === 4 ? wideTable(rng, name) : randomTable(rng, name, shape));
  }
  if (rng.chance(0.5)) tables.push(auditTable(rng, tables));
  return tables;
}

/**
 * A table written by triggers on the others, and by direct writes too: its changes are indirect
 * unless a direct statement also touched the row (reference §5).
 */
function auditTable(rng: Rng, tables: TableSpec[]): TableSpec {
  const audit = tableSpec('audit', [
    { name: 'id', decl: 'INTEGER', pk: 'integer' }, { name: 'hits', decl: 'INTEGER', pk: null }, { name: 'last', decl: '', pk: null },
  ], ['id'], 'INTEGER PRIMARY KEY', false);
  const triggers = tables.map((table, index) => {
    const name = quoteName(table.name);
    const slot = `(SELECT count(*) FROM ${name}) % ${rng.range(3, 9)}`;
    return `CREATE TRIGGER audit_insert_${index} AFTER INSERT ON ${name} BEGIN
        INSERT INTO audit VALUES (${slot}, 1, 'i') ON CONFLICT(id) DO UPDATE SET hits = hits + 1, last = 'i'; END;
      CREATE TRIGGER audit_delete_${index} AFTER DELETE ON ${name} BEGIN
        DELETE FROM audit WHERE id = ${slot} AND hits > 2; UPDATE audit SET hits = hits - 1 WHERE id = ${slot}; END;`;
  });
  return { ...audit, afterSql: triggers.join('\n') };
}

function valueColumns(rng: Rng, count: number, prefix = 'c'): ColumnSpec[] {
  return Array.from({ length: count }, (_, index) => ({ name: `${prefix}${index}`, decl: rng.pick(VALUE_DECLS), pk: null }));
}

function randomTable(rng: Rng, name: string, shape: number): TableSpec {
  const values = valueColumns(rng, rng.range(1, 6));
  if (shape === 0) {
    return tableSpec(name, [{ name: 'id', decl: 'INTEGER', pk: 'integer' }, ...values], ['id'], 'INTEGER PRIMARY KEY', false);
  }
  if (shape === 1) {
    const keys = Array.from({ length: rng.range(2, 3) }, (_, index): ColumnSpec => ({
      name: `k${index}`, decl: rng.pick(['', 'TEXT', 'INTEGER', 'BLOB']), pk: rng.pick<PkKind>(['integer', 'text', 'any']),
    }));
    const columns = rng.shuffle([...keys, ...values]);
    return tableSpec(name, columns, rng.shuffle(keys.map((key) => key.name)), null, rng.chance(0.5));
  }
  const key: ColumnSpec = { name: 'key', decl: shape === 2 ? 'TEXT' : '', pk: shape === 2 ? 'text' : 'any' };
  const columns = rng.shuffle([key, ...values]);
  return tableSpec(name, columns, ['key'], null, rng.chance(0.5));
}

function wideTable(rng: Rng, name: string): TableSpec {
  const columns = [{ name: 'id', decl: 'INTEGER', pk: 'integer' as const }, ...valueColumns(rng, rng.range(100, 140))];
  return tableSpec(name, columns, ['id'], 'INTEGER PRIMARY KEY', false);
}

function tableSpec(name: string, columns: ColumnSpec[], pkOrder: string[], inlinePk: string | null, withoutRowid: boolean): TableSpec {
  const definitions = columns.map((column) => (inlinePk !== null && column.pk !== null
    ? `${quoteName(column.name)} ${inlinePk}`
    : `${quoteName(column.name)}${column.decl === '' ? '' : ` ${column.decl}`}`));
  if (inlinePk === null) definitions.push(`PRIMARY KEY (${pkOrder.map(quoteName).join(', ')})`);
  const createSql = `CREATE TABLE ${quoteName(name)} (${definitions.join(', ')})${withoutRowid ? ' WITHOUT ROWID' : ''}`;
  return { name, columns, pkOrder, createSql };
}

export interface ValueOptions {
  /** Generate 0.0 and -0.0 (SQLite does not capture 0.0 <-> -0.0 updates; reference §5). */
  signedZero: boolean;
  /** Chance of a text longer than 16383 bytes (a 3-byte length varint). */
  longText: number;
}

const UNICODE = ['é', 'ß', '日本語', '🙂', 'Ω', '\u{10FFFF}', 'a\u0301'];

/** A random non-PK value of any type. */
export function randomValue(rng: Rng, options: ValueOptions): SqlArg {
  const kind = rng.int(16);
  switch (kind) {
    case 0: case 1: return null;
    case 2: case 3: return BigInt(rng.range(-300, 300));
    case 4: return rng.pick([rng.int64(), -(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]);
    case 5: return rng.double();
    case 6: return (rng.next() - 0.5) * 10 ** rng.range(-12, 12);
    case 7: return rng.pick([Infinity, -Infinity, 1e-300, 5e-324, Number.MAX_VALUE, 0.1, 1.5, ...(options.signedZero ? [0, -0] : [2.5])]);
    case 8: case 9: return `s${rng.int(1000)}${rng.chance(0.3) ? "'q\"" : ''}`;
    case 10: return Array.from({ length: rng.range(1, 6) }, () => rng.pick(UNICODE)).join('');
    case 11: return rng.chance(options.longText) ? 'L'.repeat(rng.range(16384, 20000)) : 'x'.repeat(rng.range(100, 300));
    case 12: return rng.pick(['', 'line\nbreak', 'nul\u0000inside', 'tab\t', '\r\n']);
    case 13: return { castText: rng.pick([Uint8Array.of(0xff), Uint8Array.of(0xc3), Uint8Array.of(0x61, 0x80, 0x62), Uint8Array.of(0xed, 0xa0, 0x80)]) };
    case 14: return rng.bytes(rng.range(0, 40));
    default: return new Uint8Array(0);
  }
}

const TEXT_KEYS = ['a', 'b', 'B', 'ä', '日本', '🙂', 'key with space', "o'k", ''];

/** A random PK value; small pools so that later writes hit existing rows. Never NULL, never an integral REAL. */
export function randomPk(rng: Rng, kind: PkKind): SqlArg {
  if (kind === 'integer') return BigInt(rng.range(1, 40));
  if (kind === 'text') return `${rng.pick(TEXT_KEYS)}${rng.int(12)}`;
  switch (rng.int(5)) {
    case 0: return BigInt(rng.range(-5, 30));
    case 1: return rng.chance(0.1) ? rng.pick([-(2n ** 63n), 2n ** 63n - 1n]) : BigInt(rng.range(1, 20));
    case 2: return `k${rng.int(15)}`;
    case 3: return Uint8Array.of(rng.int(4), rng.int(4));
    default: return rng.range(0, 10) + 0.25;
  }
}

/** Runs SQL with values, preparing each distinct statement once per database. */
export class Writer {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  run(sql: string, args: SqlArg[]): void {
    this.#statement(sql).run(...args.map(bindable));
  }

  all(sql: string, args: SqlArg[] = []): unknown[][] {
    const statement = this.#statement(sql);
    statement.setReadBigInts(true);
    statement.setReturnArrays(true);
    return statement.all(...args.map(bindable)) as unknown as unknown[][];
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

function bindable(arg: SqlArg): null | bigint | number | string | Uint8Array {
  return arg !== null && typeof arg === 'object' && 'castText' in arg ? arg.castText : arg;
}

function placeholder(arg: SqlArg): string {
  return arg !== null && typeof arg === 'object' && 'castText' in arg ? 'CAST(? AS TEXT)' : '?';
}

/** One random INSERT (OR REPLACE / OR IGNORE), UPDATE (sometimes of a PK column) or DELETE. */
export function randomWrite(rng: Rng, writer: Writer, table: TableSpec, options: ValueOptions): void {
  const name = quoteName(table.name);
  const roll = rng.next();
  if (roll < 0.4) {
    const args = table.columns.map((column) => (column.pk === null ? randomValue(rng, options) : randomPk(rng, column.pk)));
    const verb = rng.chance(0.3) ? 'INSERT OR REPLACE' : 'INSERT OR IGNORE';
    writer.run(`${verb} INTO ${name} (${table.columns.map((column) => quoteName(column.name)).join(', ')}) VALUES (${args.map(placeholder).join(', ')})`, args);
    return;
  }
  const key = existingKey(rng, writer, table) ?? table.pkOrder.map((column) => randomPk(rng, pkKind(table, column)));
  const where = table.pkOrder.map((column) => `${quoteName(column)} = ?`).join(' AND ');
  if (roll < 0.8) {
    const targets = rng.shuffle([...table.columns]).slice(0, rng.range(1, 3));
    const args = targets.map((column) => (column.pk === null ? randomValue(rng, options) : randomPk(rng, column.pk)));
    const sets = targets.map((column, index) => `${quoteName(column.name)} = ${placeholder(args[index]!)}`).join(', ');
    writer.run(`UPDATE OR IGNORE ${name} SET ${sets} WHERE ${where}`, [...args, ...key]);
  } else {
    writer.run(`DELETE FROM ${name} WHERE ${where}`, key);
  }
}

function pkKind(table: TableSpec, column: string): PkKind {
  return table.columns.find((spec) => spec.name === column)!.pk!;
}

function existingKey(rng: Rng, writer: Writer, table: TableSpec): SqlArg[] | null {
  const name = quoteName(table.name);
  const count = Number(writer.all(`SELECT count(*) FROM ${name}`)[0]![0]);
  if (count === 0 || rng.chance(0.1)) return null;
  const order = table.pkOrder.map(quoteName).join(', ');
  const row = writer.all(`SELECT ${order} FROM ${name} ORDER BY ${order} LIMIT 1 OFFSET ?`, [BigInt(rng.int(count))])[0];
  return row === undefined ? null : (row as SqlArg[]);
}

/** Creates the tables and fills them with a few rows (outside any session). */
export function createTables(rng: Rng, db: DatabaseSync, writer: Writer, tables: TableSpec[], options: ValueOptions): void {
  for (const table of tables) db.exec(table.createSql);
  for (const table of tables) if (table.afterSql !== undefined) db.exec(table.afterSql);
  for (const table of tables) {
    const rows = rng.range(0, 12);
    for (let index = 0; index < rows; index++) randomWrite(rng, writer, table, options);
  }
}

/** Runs `count` random writes across the tables. */
export function randomWrites(rng: Rng, writer: Writer, tables: TableSpec[], count: number, options: ValueOptions): void {
  for (let index = 0; index < count; index++) randomWrite(rng, writer, rng.pick(tables), options);
}

/** Every row of every table, as comparable strings that keep storage types and exact bytes. */
export function dumpDatabase(db: DatabaseSync): string[] {
  const writer = new Writer(db);
  const lines: string[] = [];
  const tables = writer.all("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").map((row) => String(row[0]));
  for (const table of tables) {
    const columns = writer.all(`SELECT name FROM pragma_table_xinfo(?)`, [table]).map((row) => quoteName(String(row[0])));
    const select = columns.map((column) => `typeof(${column}), CASE WHEN typeof(${column}) = 'text' THEN hex(${column}) ELSE ${column} END`).join(', ');
    const rows = writer.all(`SELECT ${select} FROM ${quoteName(table)}`).map((row) => row.map(canonical).join('|'));
    rows.sort();
    lines.push(`table ${table}`, ...rows);
  }
  return lines;
}

function canonical(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return Object.is(value, -0) ? 'real:-0' : `real:${value}`;
  if (typeof value === 'bigint') return `int:${value}`;
  if (value instanceof Uint8Array) return `blob:${Buffer.from(value).toString('hex')}`;
  return `str:${String(value)}`;
}

/** Saves the database to `path` (VACUUM INTO), to open copies of this state later. */
export function saveSnapshot(db: DatabaseSync, path: string): void {
  db.exec(`VACUUM INTO '${path.replaceAll("'", "''")}'`);
}

/**
 * Opens a fresh copy of a snapshot as a target for applying changes. Triggers are dropped: on a
 * target they would fire again for rows the changeset already carries (reference §4.4).
 */
export function openCopy(DatabaseSyncClass: typeof DatabaseSync, snapshot: string, path: string): DatabaseSync {
  const source = new DatabaseSyncClass(snapshot);
  saveSnapshot(source, path);
  source.close();
  const db = new DatabaseSyncClass(path);
  const writer = new Writer(db);
  for (const [name] of writer.all("SELECT name FROM sqlite_schema WHERE type = 'trigger'")) db.exec(`DROP TRIGGER ${quoteName(String(name))}`);
  return db;
}
