/** Helpers for the apply and capture-guard tests: temp databases, exact dumps, a seeded PRNG. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync, type DatabaseSyncOptions } from 'node:sqlite';
import { mulberry32 } from '../helpers/random.js';

export function tempPath(name = 'db.sqlite'): string {
  return join(mkdtempSync(join(tmpdir(), 'ct-apply-')), name);
}

export function openDb(path: string, options: DatabaseSyncOptions = {}): DatabaseSync {
  return new DatabaseSync(path, options);
}

export function q(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A value made comparable: type tag plus an exact rendering (REAL by its IEEE bits, BLOB as hex). */
function render(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `i:${value}`;
  if (typeof value === 'number') {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, value);
    return `r:${view.getBigUint64(0).toString(16)}`;
  }
  if (typeof value === 'string') return `t:${JSON.stringify(value)}`;
  if (value instanceof Uint8Array) return `b:${Buffer.from(value).toString('hex')}`;
  return `?:${String(value)}`;
}

/**
 * Every table of `main` (user tables, shadow tables, trigger-filled tables, sqlite_stat1; not virtual
 * tables, whose rows live in their shadow tables), each row as the exact values and `typeof()` of every
 * stored column, sorted. Plus the schema's (type, name, tbl_name, sql), sorted. Rowids of tables whose key
 * is not the rowid are not compared: they are not part of any changeset.
 */
export function dumpDatabase(db: DatabaseSync): Record<string, string[]> {
  const dump: Record<string, string[]> = {};
  const schema = db.prepare(`SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY type, name`).all();
  dump['#schema'] = schema.map((row) => JSON.stringify(Object.values(row)));
  const tables = db.prepare(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow')
    AND name NOT IN ('sqlite_schema', 'sqlite_temp_schema') ORDER BY name`).all() as { name: string }[];
  for (const { name } of tables) {
    const columns = (db.prepare(`SELECT name FROM pragma_table_xinfo(?, 'main') WHERE hidden IN (0, 2, 3)`).all(name) as { name: string }[])
      .map((column) => q(column.name));
    const select = columns.map((column) => `${column}, typeof(${column})`).join(', ');
    const statement = db.prepare(`SELECT ${select} FROM main.${q(name)}`);
    statement.setReadBigInts(true);
    dump[name] = statement.all().map((row) => Object.values(row).map(render).join('|')).sort();
  }
  return dump;
}

/** mulberry32: a small, fast, seedable PRNG (deterministic across platforms). */
export function createRandom(seed: number): { next(): number; int(max: number): number; pick<T>(items: readonly T[]): T; chance(p: number): boolean } {
  const next = mulberry32(seed);
  return {
    next,
    int: (max) => Math.floor(next() * max),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    chance: (p) => next() < p,
  };
}

/** Runs `fn` like the write path does: BEGIN IMMEDIATE, one session, changeset before COMMIT. */
export function captureTransaction(db: DatabaseSync, fn: () => void): Uint8Array {
  db.exec('BEGIN IMMEDIATE');
  const session = db.createSession();
  try {
    fn();
    const changeset = session.changeset();
    db.exec('COMMIT');
    return changeset;
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  } finally {
    session.close();
  }
}

/** The database file copied with VACUUM INTO (a consistent copy of the committed state). */
export function copyDatabase(db: DatabaseSync): string {
  const path = tempPath('copy.sqlite');
  db.exec(`VACUUM INTO '${path.replaceAll("'", "''")}'`);
  return path;
}
